"""The WhatsApp customer service window (CSW): pure rules, no I/O, injected time.

Every rule here is a function of its inputs. Nothing reads the wall clock; callers pass
``now`` (from a :class:`salon.clock.Clock`).

Rules (see ``../shared/reference/whatsapp-platform.md`` §1 and §7):

- The 24 h window opens, or is refreshed, when the *client* writes. The input is Meta's
  message ``timestamp`` of the latest inbound message, never our receipt time.
  ``is_open`` is ``now < last_inbound_at + 24 h``: at exactly 24:00:00 the window is
  closed. ``last_inbound_at=None`` (the client never wrote) means closed.
- Free-form messages (text, media, interactive) are only allowed while the window is
  open *and* at least ``margin`` is left, which covers queue, network and clock skew:
  ``can_send_free_form`` is ``now < last_inbound_at + 24 h - margin``.
- A ``131047`` (or legacy ``470``) failure tells us Meta considered the window closed at
  the failure's time ``T``. That knowledge overrides our own clock until an inbound
  message *later than* ``T`` arrives (``closed_by_failure_at``).
- Free entry point (FEP, §1.3). Our reading of Meta's pricing page: when a client writes
  from a Click-to-WhatsApp ad or a Facebook Page call-to-action (the "referral" message
  at ``referral_at``), a normal 24 h window opens; if the business replies *within 24 h
  of that message*, the reply is free and a 72 h FEP opens **starting at that reply**.
  The FEP is independent of the 24 h window: it only makes templates free, it never
  allows free-form after the 24 h window has closed.

  Inputs: ``entry_point`` (one of :data:`ENTRY_POINTS` or an alias), ``referral_at``
  (defaults to ``last_inbound_at``) and ``first_reply_at`` (our first reply after the
  referral, ``None`` when we have not replied yet):

  - ``first_reply_at`` within ``[referral_at, referral_at + 24 h)``: the FEP ends at
    ``first_reply_at + 72 h`` (``fep_started`` is True);
  - ``first_reply_at`` outside that range: no FEP (``None``);
  - ``first_reply_at=None`` while a reply is still possible (``now < referral_at + 24 h``):
    ``referral_at + 72 h``, the earliest end the FEP can have if we reply now (the
    bot replies within seconds, so this is also the practical value); ``fep_started``
    is False;
  - ``first_reply_at=None`` once ``referral_at + 24 h`` has passed: no FEP (``None``).

All datetimes must be timezone-aware (naive ones raise ``ValueError``); results are in
UTC. Arithmetic is done in UTC, so daylight-saving changes in the caller's zone never
shift the 24 h boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Final

__all__ = [
    "DAY",
    "DEFAULT_MARGIN",
    "ENTRY_POINTS",
    "FEP_DURATION",
    "FEP_ENTRY_POINTS",
    "REASON_CLOSED_BY_FAILURE",
    "REASON_CLOSING",
    "REASON_EXPIRED",
    "REASON_NEVER_WROTE",
    "REASON_OPEN",
    "WINDOW",
    "WindowState",
    "canonical_entry_point",
    "window_state",
]

UTC: Final = timezone.utc
WINDOW: Final = timedelta(hours=24)
DAY: Final = WINDOW
FEP_DURATION: Final = timedelta(hours=72)
DEFAULT_MARGIN: Final = timedelta(minutes=5)
_ZERO: Final = timedelta(0)

ENTRY_ORGANIC: Final = "organic"
ENTRY_CTWA_AD: Final = "ctwa_ad"
ENTRY_PAGE_CTA: Final = "page_cta"
ENTRY_POINTS: Final = frozenset({ENTRY_ORGANIC, ENTRY_CTWA_AD, ENTRY_PAGE_CTA})
#: Entry points that can open a free entry point window.
FEP_ENTRY_POINTS: Final = frozenset({ENTRY_CTWA_AD, ENTRY_PAGE_CTA})

_ENTRY_ALIASES: Final[dict[str, str]] = {
    "organic": ENTRY_ORGANIC,
    "ctwa_ad": ENTRY_CTWA_AD,
    "ctwa": ENTRY_CTWA_AD,
    "ad": ENTRY_CTWA_AD,
    "referral": ENTRY_CTWA_AD,
    "click_to_whatsapp": ENTRY_CTWA_AD,
    "click_to_whatsapp_ad": ENTRY_CTWA_AD,
    "page_cta": ENTRY_PAGE_CTA,
    "fb_page_cta": ENTRY_PAGE_CTA,
    "facebook_page_cta": ENTRY_PAGE_CTA,
}

REASON_NEVER_WROTE: Final = "never_wrote"
"""The client has never written: only templates (to opted-in clients)."""
REASON_OPEN: Final = "open"
"""The window is open with more than the margin left: free-form allowed."""
REASON_CLOSING: Final = "closing"
"""The window is open but less than the margin is left: templates only."""
REASON_EXPIRED: Final = "expired"
"""24 h have passed since the last inbound message: templates only."""
REASON_CLOSED_BY_FAILURE: Final = "closed_by_failure"
"""Meta answered 131047/470 after the last inbound message: templates only."""
_OPEN_REASONS: Final = frozenset({REASON_OPEN, REASON_CLOSING})


def canonical_entry_point(entry_point: str) -> str:
    """Map an entry point or one of its aliases (``ctwa``, ``ad``, ``referral`` …) to
    one of :data:`ENTRY_POINTS`; unknown values raise ``ValueError``.
    """
    try:
        return _ENTRY_ALIASES[entry_point]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown entry point {entry_point!r}; expected one of {sorted(_ENTRY_ALIASES)}"
        ) from None


def _utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC; naive datetimes raise ``ValueError``."""
    try:
        tz = value.tzinfo
    except AttributeError:
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}") from None
    if tz is UTC:
        return value
    if tz is None or tz.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class WindowState:
    """The window as seen at ``now``: an immutable value object.

    ``is_open``, ``can_send_free_form`` and ``remaining`` follow from ``reason``, ``closes_at``
    and ``now`` (properties: a decision is taken hundreds of thousands of times a second,
    and every stored field costs its construction).

    Attributes:
        reason: one of the ``REASON_*`` constants.
        closes_at: when the window closes (UTC), ``None`` if the client never wrote. When
            a 131047 closed it early, this is the failure time.
        free_form_until: ``closes_at - margin`` (``None`` if never wrote).
        free_entry_point_until: end of the 72 h FEP (see the module docstring) or None.
        fep_started: True when ``free_entry_point_until`` comes from a recorded reply.
        last_inbound_at, now: the (UTC) inputs.
    """

    reason: str
    closes_at: datetime | None
    free_form_until: datetime | None
    free_entry_point_until: datetime | None
    fep_started: bool
    last_inbound_at: datetime | None
    now: datetime

    @property
    def is_open(self) -> bool:
        """``now < closes_at`` and no known 131047 since the last inbound message."""
        return self.reason in _OPEN_REASONS

    @property
    def can_send_free_form(self) -> bool:
        """Open with more than the margin left."""
        return self.reason == REASON_OPEN

    @property
    def remaining(self) -> timedelta:
        """Time left until ``closes_at``, zero when closed."""
        closes_at = self.closes_at
        if closes_at is None or self.reason not in _OPEN_REASONS:
            return _ZERO
        return closes_at - self.now

    @property
    def fep_active(self) -> bool:
        """True while the free entry point window runs (templates are free)."""
        until = self.free_entry_point_until
        return until is not None and self.now < until

    @property
    def template_only(self) -> bool:
        """True when only templates may be sent (the opposite of free-form)."""
        return not self.can_send_free_form

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (datetimes as ISO strings, durations in seconds)."""
        out: dict[str, object] = {}
        names = ["is_open", "can_send_free_form", "remaining", *(item.name for item in fields(self))]
        for name in names:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            out[name] = value
        return out


def _fep_until(
    referral_at: datetime, first_reply_at: datetime | None, now: datetime
) -> tuple[datetime | None, bool]:
    if first_reply_at is None:
        if now < referral_at + WINDOW:
            return referral_at + FEP_DURATION, False
        return None, False
    if referral_at <= first_reply_at < referral_at + WINDOW:
        return first_reply_at + FEP_DURATION, True
    return None, False


def window_state(
    last_inbound_at: datetime | None,
    now: datetime,
    margin: timedelta = DEFAULT_MARGIN,
    entry_point: str = ENTRY_ORGANIC,
    *,
    referral_at: datetime | None = None,
    first_reply_at: datetime | None = None,
    closed_by_failure_at: datetime | None = None,
) -> WindowState:
    """The customer service window at ``now``.

    Args:
        last_inbound_at: Meta's timestamp of the client's latest message (None: never).
        now: the current time (aware).
        margin: safety margin before the close during which free-form is refused;
            ``0 <= margin < 24 h``.
        entry_point: how the client reached us (``organic``, ``ctwa_ad``, ``page_cta``
            or an alias such as ``ctwa``); only FEP entry points produce an FEP.
        referral_at: time of the ad/CTA referral message (defaults to ``last_inbound_at``).
        first_reply_at: our first reply after the referral (None: not yet).
        closed_by_failure_at: time of a known 131047/470 failure; it closes the window
            unless ``last_inbound_at`` is later.
    """
    now = _utc(now, "now")
    if margin is not DEFAULT_MARGIN and (margin < _ZERO or margin >= WINDOW):
        raise ValueError(f"margin must be within [0, 24 h), got {margin!r}")
    if entry_point == ENTRY_ORGANIC:
        fep_entry = False
    else:
        fep_entry = canonical_entry_point(entry_point) in FEP_ENTRY_POINTS
    if first_reply_at is not None:
        first_reply_at = _utc(first_reply_at, "first_reply_at")
    if referral_at is not None:
        referral_at = _utc(referral_at, "referral_at")

    if last_inbound_at is None:
        return _never_wrote(now, fep_entry, referral_at, first_reply_at, closed_by_failure_at)

    last = _utc(last_inbound_at, "last_inbound_at")
    if fep_entry:
        fep_until, fep_started = _fep_until(
            last if referral_at is None else referral_at, first_reply_at, now
        )
    else:
        fep_until = None
        fep_started = False
    if closed_by_failure_at is not None:
        failed_at = _utc(closed_by_failure_at, "closed_by_failure_at")
        if failed_at >= last:
            return _closed_by_failure(last, failed_at, margin, now, fep_until, fep_started)
    return _by_clock(last, margin, now, fep_until, fep_started)


def _never_wrote(
    now: datetime,
    fep_entry: bool,
    referral_at: datetime | None,
    first_reply_at: datetime | None,
    closed_by_failure_at: datetime | None,
) -> WindowState:
    """The window of a client who never wrote: closed, with an FEP only after a referral."""
    fep_until: datetime | None = None
    fep_started = False
    if fep_entry and referral_at is not None:
        fep_until, fep_started = _fep_until(referral_at, first_reply_at, now)
    if closed_by_failure_at is not None:
        _utc(closed_by_failure_at, "closed_by_failure_at")
    return WindowState(REASON_NEVER_WROTE, None, None, fep_until, fep_started, None, now)


def _closed_by_failure(
    last: datetime,
    failed_at: datetime,
    margin: timedelta,
    now: datetime,
    fep_until: datetime | None,
    fep_started: bool,
) -> WindowState:
    """The window after a 131047/470 at ``failed_at``, no earlier than the last inbound
    message: closed, whatever our own clock says, until a later inbound message reopens it.
    """
    closes_at = last + WINDOW
    free_form_until = closes_at - margin
    if failed_at < closes_at:
        closes_at = failed_at
    if closes_at < free_form_until:
        free_form_until = closes_at
    return WindowState(REASON_CLOSED_BY_FAILURE, closes_at, free_form_until, fep_until, fep_started, last, now)


def _by_clock(
    last: datetime,
    margin: timedelta,
    now: datetime,
    fep_until: datetime | None,
    fep_started: bool,
) -> WindowState:
    """The window 24 h from the last inbound message: open, closing (less than ``margin``
    left) or expired at ``now``.
    """
    closes_at = last + WINDOW
    free_form_until = closes_at - margin
    if now < free_form_until:
        return WindowState(REASON_OPEN, closes_at, free_form_until, fep_until, fep_started, last, now)
    if now < closes_at:
        return WindowState(REASON_CLOSING, closes_at, free_form_until, fep_until, fep_started, last, now)
    return WindowState(REASON_EXPIRED, closes_at, free_form_until, fep_until, fep_started, last, now)
