"""Marketing caps: when the next marketing template may go to a client.

Meta limits how many marketing templates one person receives from all businesses: past
that, it answers 131049 ("healthy ecosystem engagement"), synchronously or in a
``failed`` status, and a template sent again within 24 hours is refused the same way
(``../shared/reference/whatsapp-platform.md`` §1.4): the message never reaches her, and
each one sent into the cap is a wasted send. The maison also wants a gap of its own between two marketing templates to one client, so a
busy week of campaigns never reads as pressure. Two rules, then, for a marketing
template to a client:

1. **after a 131049** for her (the guard's record of a synchronous error, or a
   ``failed`` status with 131049 in ``wa_outbound``): none for :data:`META_HOLD` after it;
2. **the maison's gap**: none within ``SALON_MARKETING_GAP_HOURS`` (default 24; 0 turns
   the rule off) of the last marketing template that left for her.

A request they hold is deferred, not failed: it goes back in the queue, due when the
later of the two holds ends. Marketing sent free-form inside a window the client opened
is not a template: Meta does not count it, it does not count here, and it is never held.
Nudges of marketing content (``reengage_marketing``) are marketing templates and count.

Both rules read ``wa_outbound``, so every worker and process sees the same history; the
sends and 131049s of this process that are still waiting in the guard's write buffer are
noted in memory (:meth:`MarketingCaps.note_sent`, :meth:`MarketingCaps.note_refused`)
until they are written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.clock import from_us, to_us
from salon.guard.sent import STATUS_RANK, outbound_table
from salon.purposes import PURPOSE_CATEGORY, is_marketing

__all__ = [
    "CAP_ERROR",
    "ENV_GAP",
    "META_HOLD",
    "CapHistory",
    "CapHold",
    "CapsConfig",
    "MarketingCaps",
    "cap_hold",
    "client_ids",
]

CAP_ERROR: Final = 131049
META_HOLD: Final = timedelta(hours=24)
"""How long after a 131049 no marketing template goes to the client (Meta: at least 24 h)."""
ENV_GAP: Final = "SALON_MARKETING_GAP_HOURS"
DEFAULT_GAP_HOURS: Final = 24.0

MARKETING_PURPOSES: Final = tuple(sorted(p for p in PURPOSE_CATEGORY if is_marketing(p)))
"""The purposes whose templates are marketing templates (nudges of marketing included)."""
_TEMPLATE_KINDS: Final = ("template", "nudge")
_LEFT: Final = (STATUS_RANK["accepted"], STATUS_RANK["played"])
"""Status ranks of a message Meta took (accepted … played): not failed, parked or refused."""
_MEMORY_LIMIT: Final = 100_000

_O = outbound_table.c


@dataclass(frozen=True)
class CapsConfig:
    """The maison's gap between two marketing templates to one client (zero: no gap)."""

    gap: timedelta = timedelta(hours=DEFAULT_GAP_HOURS)

    def __post_init__(self) -> None:
        if self.gap < timedelta(0):
            raise ValueError(f"{ENV_GAP} must be 0 or more hours")

    @classmethod
    def from_env(cls) -> CapsConfig:
        raw = os.environ.get(ENV_GAP, "").strip()
        if not raw:
            return cls()
        try:
            hours = float(raw)
        except ValueError:
            raise ValueError(f"{ENV_GAP} must be a number of hours, not {raw!r}") from None
        return cls(gap=timedelta(hours=hours))


@dataclass(frozen=True, slots=True)
class CapHistory:
    """What the record says of one client: her latest 131049 and the latest marketing
    template that left for her (None: none that still matters).
    """

    last_refusal: datetime | None = None
    last_template: datetime | None = None

    def merged(self, other: CapHistory) -> CapHistory:
        return CapHistory(_latest(self.last_refusal, other.last_refusal),
                          _latest(self.last_template, other.last_template))


@dataclass(frozen=True, slots=True)
class CapHold:
    """No marketing template to the client before ``until``; ``rule`` is the one that
    holds longest (``131049`` or ``maison_gap``) and ``since`` the event it counts from.
    """

    until: datetime
    rule: str
    since: datetime

    @property
    def reason(self) -> str:
        """The reason a deferred request records."""
        return f"marketing_cap:{self.rule}"


def cap_hold(history: CapHistory, now: datetime, config: CapsConfig) -> CapHold | None:
    """The hold ``history`` puts on a marketing template at ``now``, or None (the core
    rule; see the module docstring). Both rules apply: the later end wins.
    """
    holds: list[CapHold] = []
    if history.last_refusal is not None and now < history.last_refusal + META_HOLD:
        holds.append(CapHold(history.last_refusal + META_HOLD, str(CAP_ERROR), history.last_refusal))
    if config.gap and history.last_template is not None and now < history.last_template + config.gap:
        holds.append(CapHold(history.last_template + config.gap, "maison_gap", history.last_template))
    return max(holds, key=lambda hold: hold.until, default=None)


ClientIds = tuple[str, tuple[str, ...]]
"""``(phone_number_id, every id the client is known by)``: the record names her by the id
Meta answered with, her phone number or her business-scoped user id."""


class MarketingCaps:
    """The two caps over ``wa_outbound`` (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, config: CapsConfig | None = None) -> None:
        self.engine = engine
        self.config = config or CapsConfig()
        self._noted: dict[tuple[str, str], CapHistory] = {}

    @property
    def lookback(self) -> timedelta:
        """How far back the record matters: the longer of the two rules."""
        return max(META_HOLD, self.config.gap)

    async def hold(self, client: ClientIds, now: datetime) -> CapHold | None:
        """The hold on a marketing template to ``client`` at ``now``, or None."""
        [history] = await self.histories([client], now)
        return cap_hold(history, now, self.config)

    async def histories(self, clients: Sequence[ClientIds], now: datetime) -> list[CapHistory]:
        """Each client's history within :attr:`lookback` of ``now``, in one query for
        all of them (the record's and this process's notes merged).
        """
        since_us = to_us(now - self.lookback, "now")
        numbers = sorted({pnid for pnid, _ in clients})
        ids = sorted({i for _, known in clients for i in known})
        found: dict[tuple[str, str], CapHistory] = {}
        if numbers and ids:
            refusal = case((_O.error_code == CAP_ERROR, _O.status_us))
            template = case((and_(_O.kind.in_(_TEMPLATE_KINDS), _O.purpose.in_(MARKETING_PURPOSES),
                                  _O.status_rank.between(*_LEFT)), _O.created_us))
            query = (
                select(_O.phone_number_id, _O.recipient, func.max(refusal), func.max(template))
                .where(_O.phone_number_id.in_(numbers), _O.recipient.in_(ids),
                       or_(and_(_O.error_code == CAP_ERROR, _O.status_us >= since_us),
                           and_(_O.kind.in_(_TEMPLATE_KINDS), _O.purpose.in_(MARKETING_PURPOSES),
                                _O.status_rank.between(*_LEFT), _O.created_us >= since_us)))
                .group_by(_O.phone_number_id, _O.recipient)
            )
            async with self.engine.connect() as conn:
                for pnid, recipient, refused_us, sent_us in (await conn.execute(query)).all():
                    found[(pnid, recipient)] = CapHistory(from_us(refused_us), from_us(sent_us))
        out: list[CapHistory] = []
        for pnid, known in clients:
            history = CapHistory()
            for one in known:
                history = history.merged(found.get((pnid, one), CapHistory()))
                history = history.merged(self._noted.get((pnid, one), CapHistory()))
            out.append(history)
        return out

    def note_sent(self, client: ClientIds, at: datetime) -> None:
        """A marketing template left for ``client`` at ``at`` (its record may not be
        written yet).
        """
        self._note(client, CapHistory(last_template=at), at)

    def note_refused(self, client: ClientIds, at: datetime) -> None:
        """Meta answered 131049 for ``client`` at ``at``."""
        self._note(client, CapHistory(last_refusal=at), at)

    def _note(self, client: ClientIds, event: CapHistory, at: datetime) -> None:
        if len(self._noted) >= _MEMORY_LIMIT:
            self._forget_before(at - self.lookback)
        pnid, known = client
        for one in known:
            key = (pnid, one)
            self._noted[key] = self._noted.get(key, CapHistory()).merged(event)

    def _forget_before(self, horizon: datetime) -> None:
        """Drop the notes too old to hold anything (the record has them by now)."""
        for key, history in list(self._noted.items()):
            if all(t is None or t < horizon for t in (history.last_refusal, history.last_template)):
                del self._noted[key]
        if len(self._noted) >= _MEMORY_LIMIT:
            self._noted.clear()


def client_ids(phone_number_id: str, ids: Iterable[str | None]) -> ClientIds:
    """The key :class:`MarketingCaps` reads a client by: her number's id and her ids."""
    return phone_number_id, tuple(sorted({i for i in ids if i}))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
