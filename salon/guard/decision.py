"""The send decision every sender uses (connector output channel, actions, dispatcher).

``decide(...)`` answers, for one message to one client at ``now``:

- :class:`SendFreeForm`: the window is open with more than the safety margin left;
- :class:`SendTemplate`: the window is closed (or closing) and an APPROVED template
  carries this purpose in the client's language, or the sender has template content only;
- :class:`ParkAndNudge`: the window is closed and no template carries the content: park
  it and send one branded re-engagement template (``nudge_payload`` is None when a nudge
  is already waiting for the client's answer, or when none may be sent);
- :class:`Refuse`: consent, purpose or content forbid sending.

With a rate card, each decision that sends something carries its :class:`~salon.pricing.charge.Charge`:
Meta's billing category, whether it is free (service or utility inside the window on a card
that makes them free, or a free entry point) and the estimated cost in the recipient's
market (``charge`` of the free-form message or template; for a park, of its nudge).

Consent rules: an opt-out (STOP) refuses everything the business initiates; marketing
purposes need a marketing opt-in (and no marketing stop); utility purposes need the basic
messaging opt-in when they go out as templates. A reply inside the open window to a
client who just wrote (purpose ``service_reply``) needs no prior opt-in, and is sent even
after a STOP (it answers her own message); a reply that crossed the window's end waits
for her next message, with no re-engagement template when she has not opted in or has
opted out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final

from salon.pricing.card import RateCard
from salon.pricing.charge import Charge, charge_for
from salon.purposes import MARKETING, NUDGE_PURPOSE, PURPOSE_CATEGORY, SERVICE_REPLY, is_marketing
from salon.templates.registry import NoTemplate, TemplateChoice, TemplateRegistry
from salon.whatsapp.addressing import Recipient
from salon.window.rules import DEFAULT_MARGIN, WindowState, window_state
from salon.window.state import SessionState

__all__ = [
    "Consent",
    "Content",
    "Decision",
    "ParkAndNudge",
    "Refuse",
    "SendFreeForm",
    "SendTemplate",
    "decide",
    "template_refusal",
]

MAX_TEXT: Final = 4096
MAX_BUTTONS: Final = 3
MAX_BUTTON_TITLE: Final = 20


@dataclass(frozen=True, slots=True)
class Consent:
    """What the client agreed to (:meth:`salon.consent.book.ConsentBook.consent_for`).

    ``messaging``: opted in to receive WhatsApp messages from the maison;
    ``marketing``: opted in to marketing; ``opted_out``: her latest STOP/START was a STOP
    (nothing the maison starts goes to her); ``marketing_stopped``: stopped marketing
    (``user_preferences`` stop / 131050).
    """

    messaging: bool = False
    marketing: bool = False
    opted_out: bool = False
    marketing_stopped: bool = False

    @property
    def marketing_allowed(self) -> bool:
        return self.messaging and self.marketing and not self.marketing_stopped and not self.opted_out


Consent.ALL = Consent(messaging=True, marketing=True)  # type: ignore[attr-defined]
Consent.UTILITY_ONLY = Consent(messaging=True)  # type: ignore[attr-defined]
Consent.NONE = Consent()  # type: ignore[attr-defined]


def template_refusal(category: str, consent: Consent, *, window_open: bool,
                     purpose: str = SERVICE_REPLY) -> str | None:
    """Why a template asked for by name (an advisor's pick, ``wa_template``) may not go to
    this client, or None. Her latest STOP/START being a STOP refuses it, unless it answers
    her in her open window (as :func:`decide` treats a free-form reply); a marketing
    template needs her marketing opt-in; any other her messaging opt-in, unless her window
    is still open.
    """
    if consent.opted_out and not (purpose == SERVICE_REPLY and window_open):
        return "opted_out"
    if category == MARKETING and not consent.marketing_allowed:
        return "no_marketing_consent"
    if category != MARKETING and not consent.messaging and not window_open:
        return "no_opt_in"
    return None


@dataclass(frozen=True, slots=True)
class Content:
    """Free-form content: text and up to three reply buttons, or a raw Cloud API message
    object (``interactive``, media …) in ``raw``.
    """

    text: str | None = None
    buttons: tuple[str, ...] = ()
    raw: Mapping[str, Any] | None = None

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.text is None and self.raw is None:
            out.append("empty")
        if self.text is not None:
            if not self.text.strip():
                out.append("empty_text")
            if len(self.text) > MAX_TEXT:
                out.append(f"text longer than {MAX_TEXT}")
        if len(self.buttons) > MAX_BUTTONS:
            out.append(f"more than {MAX_BUTTONS} buttons")
        for title in self.buttons:
            if not title or len(title) > MAX_BUTTON_TITLE:
                out.append(f"button title {title!r} must be 1-{MAX_BUTTON_TITLE} chars")
        if len(set(self.buttons)) != len(self.buttons):
            out.append("duplicate button titles")
        return out


@dataclass(frozen=True, slots=True)
class SendFreeForm:
    """Send ``content`` as it is: the window is open with more than the margin left."""

    content: Content
    window: WindowState
    charge: Charge | None = None
    kind: str = field(default="send_free_form", init=False)


@dataclass(frozen=True, slots=True)
class SendTemplate:
    """Send the approved template in ``choice`` (the window is closed or closing, or there
    is no free-form content).
    """

    choice: TemplateChoice
    window: WindowState | None
    charge: Charge | None = None
    kind: str = field(default="send_template", init=False)

    @property
    def payload(self) -> dict[str, Any]:
        """The Cloud API ``template`` object."""
        return self.choice.payload

    def message(self, recipient: Recipient, **kwargs: Any) -> dict[str, Any]:
        return self.choice.message(recipient, **kwargs)


@dataclass(frozen=True, slots=True)
class ParkAndNudge:
    """Park ``content`` until the client writes, and send the re-engagement template in
    ``nudge`` when there is one; ``reason`` says why (or why there is no nudge).
    """

    content: Content | None
    nudge: TemplateChoice | None
    window: WindowState | None
    reason: str = ""
    charge: Charge | None = None
    """The nudge's charge (None: no nudge, or no rate card)."""
    kind: str = field(default="park_and_nudge", init=False)

    @property
    def nudge_payload(self) -> dict[str, Any] | None:
        """The re-engagement ``template`` object, None if no nudge is to be sent."""
        return self.nudge.payload if self.nudge is not None else None


@dataclass(frozen=True, slots=True)
class Refuse:
    """Send nothing: ``reason`` is a short code, ``detail`` says more when it helps."""

    reason: str
    detail: str = ""
    kind: str = field(default="refuse", init=False)


Decision = SendFreeForm | SendTemplate | ParkAndNudge | Refuse


def decide(
    state: SessionState | WindowState | None,
    purpose: str,
    content: Content | None,
    consent: Consent,
    now: datetime,
    *,
    registry: TemplateRegistry,
    params: Mapping[str, Any] | None = None,
    language: str | None = None,
    margin: timedelta = DEFAULT_MARGIN,
    card: RateCard | None = None,
    market: str | None = None,
) -> Decision:
    """Decide how (and whether) to send one message; see the module docstring.

    ``state`` is the client's session state (or an already computed window; None: never
    wrote). ``params`` are the template parameters at hand (``first_name`` …). With a
    rate ``card`` and the recipient's ``market``, decisions carry their charge.
    """
    decision = _decide(state, purpose, content, consent, now, registry=registry, params=params or {},
                       language=language, margin=margin)
    if card is None or market is None:
        return decision
    if isinstance(decision, SendFreeForm):
        return replace(decision, charge=charge_for(template_category=None, window=decision.window,
                                                   market=market, at=now, card=card))
    if isinstance(decision, SendTemplate):
        return replace(decision, charge=charge_for(template_category=decision.choice.category,
                                                   window=decision.window, market=market, at=now, card=card))
    if isinstance(decision, ParkAndNudge) and decision.nudge is not None:
        return replace(decision, charge=charge_for(template_category=decision.nudge.category,
                                                   window=decision.window, market=market, at=now, card=card))
    return decision


def _decide(
    state: SessionState | WindowState | None,
    purpose: str,
    content: Content | None,
    consent: Consent,
    now: datetime,
    *,
    registry: TemplateRegistry,
    params: Mapping[str, Any],
    language: str | None,
    margin: timedelta,
) -> Decision:
    refused = _refusal(purpose, content, consent)
    if refused is not None:
        return refused
    window, session = _window_of(state, now, margin)

    if content is not None and window.can_send_free_form:
        return SendFreeForm(content, window)

    if purpose == SERVICE_REPLY:
        if content is None:
            return Refuse("no_content")
        # A reply that crossed the window boundary: park it and knock on the door.
        if consent.opted_out:
            return ParkAndNudge(content, None, window, "opted_out")
        if not consent.messaging:
            return ParkAndNudge(content, None, window, "no_opt_in_for_nudge")
        return _park(content, window, session, consent, registry, params, language, now, False)

    choice = registry.select(
        purpose,
        language,
        params,
        marketing_allowed=consent.marketing_allowed,
        now=now,
    )
    if isinstance(choice, TemplateChoice):
        return SendTemplate(choice, window)
    if content is None:
        return Refuse(f"no_template:{choice.reason.value}", choice.detail)
    return _park(content, window, session, consent, registry, params, language, now,
                 is_marketing(purpose))


def _refusal(purpose: str, content: Content | None, consent: Consent) -> Refuse | None:
    """Why the purpose, the content or the client's consent forbid sending at all; None
    when nothing does.
    """
    if purpose != SERVICE_REPLY and purpose not in PURPOSE_CATEGORY:
        return Refuse("unknown_purpose", purpose)
    if content is not None:
        problems = content.problems()
        if problems:
            return Refuse("invalid_content", "; ".join(problems))
    if consent.opted_out and purpose != SERVICE_REPLY:
        return Refuse("opted_out")
    if is_marketing(purpose):
        if consent.marketing_stopped:
            return Refuse("marketing_stopped")
        if not (consent.marketing and consent.messaging):
            return Refuse("no_marketing_opt_in")
    elif purpose != SERVICE_REPLY and not consent.messaging:
        return Refuse("no_opt_in")
    return None


def _window_of(
    state: SessionState | WindowState | None, now: datetime, margin: timedelta
) -> tuple[WindowState, SessionState | None]:
    """The client's window at ``now``, and her session state when ``state`` is one."""
    if isinstance(state, WindowState):
        return state, None
    if state is not None:
        return state.window(now, margin), state
    return window_state(None, now, margin), None


def _park(
    content: Content,
    window: WindowState,
    session: SessionState | None,
    consent: Consent,
    registry: TemplateRegistry,
    params: Mapping[str, Any],
    language: str | None,
    now: datetime,
    marketing: bool,
) -> ParkAndNudge:
    if session is not None and session.nudge_pending:
        return ParkAndNudge(content, None, window, "nudge_already_pending")
    nudge = registry.select(
        NUDGE_PURPOSE[marketing],
        language,
        params,
        marketing_allowed=consent.marketing_allowed,
        now=now,
    )
    if isinstance(nudge, NoTemplate):
        return ParkAndNudge(content, None, window, f"no_nudge_template:{nudge.reason.value}")
    return ParkAndNudge(content, nudge, window, "window_closed")
