"""The advisor console for tests: the WhatsApp channel (its blueprint carries the console
under ``/webhooks/whatsapp/console``) on a real Sanic server with Rasa's in-memory
tracker and lock stores, against the Cloud API emulator, on free ports. No trained model:
a small scripted assistant plays Rasa's part (it logs each message in the tracker, as
Rasa does, and answers a few known lines through the channel's own output, so its
answers go through the send-time guard like any turn).

One clock for both sides: the channel runs on the emulator's clock (a fixed instant plus
the offset the emulator's admin API moves), so ``POST /_emulator/clock`` (the phone
page's "+24 h", or :meth:`Console.advance`) closes a window for the emulator and for
Salon at once.

Credentials (``SALON_API_TOKENS``, set while the channel starts): Sophie and Camille,
two advisors of the Paris boutique, and a manager.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    SlotSet,
    UserUttered,
)

from connectors.advisor_api import SanicRateLimit
from salon.access.ratelimit import RateLimitSettings
from salon.advisors.audit import AdvisorAudit, AuditRecord
from salon.advisors.handoff import Handoff, HandoffBook
from salon.clock import ManualClock
from salon.config import PROJECT_ROOT, Settings
from salon.emulator.clock import EmulatorClock
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from tests.whatsapp_support import APP_SECRET, PNID, Channel, running_channel

__all__ = [
    "CAMILLE",
    "CAMILLE_CLIENT",
    "CLAIRE",
    "HELENE",
    "INES",
    "MANAGER",
    "SOPHIE",
    "T0",
    "TOKENS",
    "Console",
    "running_console",
    "tokens_in_environment",
]

T0: Final = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
"""Wednesday 25 November 2026, 10:00 in Paris: the seeded maison's week."""

SOPHIE: Final = "sophie-console-credential-4f2a9c"
CAMILLE: Final = "camille-console-credential-8d31e7"
MANAGER: Final = "manager-console-credential-b05c62"
TOKENS: Final = (
    {"name": "sophie", "token": SOPHIE, "scopes": ["advisor"], "advisor_id": "sophie-marchand"},
    {"name": "camille", "token": CAMILLE, "scopes": ["advisor"], "advisor_id": "camille-roux"},
    {"name": "direction", "token": MANAGER, "scopes": ["manager"]},
)

# Clients of the maison's book (data/maison/clients.yml), by WhatsApp number.
CLAIRE: Final = "33600000001"  # C-001 Claire Laurent, VIC, Sophie's
HELENE: Final = "33600000003"  # C-003 Hélène Vasseur, Gold, Sophie's
INES: Final = "33600000006"  # C-006 Inès Benali, Platinum, Sophie's
SACHA: Final = "33600000008"  # C-008 Sacha Lemaire, Gold, Sophie's (writes in English)
CAMILLE_CLIENT: Final = "33600000002"  # C-002 Antoine Delacroix, Platinum, Camille's

BOOK: Final = {
    CLAIRE: ("C-001", "Claire Laurent", "sophie-marchand", "fr"),
    HELENE: ("C-003", "Hélène Vasseur", "sophie-marchand", "fr"),
    INES: ("C-006", "Inès Benali", "sophie-marchand", "fr"),
    SACHA: ("C-008", "Sacha Lemaire", "sophie-marchand", "en"),
    CAMILLE_CLIENT: ("C-002", "Antoine Delacroix", "camille-roux", "fr"),
}

ADVISORS: Final = {"sophie-marchand": "Sophie", "camille-roux": "Camille"}

CONSOLE_PATH: Final = "/webhooks/whatsapp/console"


@contextmanager
def tokens_in_environment(tokens: Sequence[Mapping[str, Any]]) -> Iterator[None]:
    """``SALON_API_TOKENS`` while the channel starts (the desk reads it then)."""
    saved = os.environ.get("SALON_API_TOKENS")
    os.environ["SALON_API_TOKENS"] = json.dumps(list(tokens))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SALON_API_TOKENS", None)
        else:
            os.environ["SALON_API_TOKENS"] = saved


class RunningClock:
    """A server's clock that starts at ``start`` and runs with real time (the emulator
    adds the offset its admin API moves)."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._at = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._at)


class ScriptedAssistant:
    """Rasa's part without a model: every message is logged in the conversation's
    tracker (a paused conversation only logs, as Rasa does); a message found in
    ``answers`` is answered through the channel's output (the send-time guard).
    """

    def __init__(self, agent: Any, answers: Mapping[str, str] | None = None) -> None:
        self.agent = agent
        self.answers = dict(answers or {})

    async def __call__(self, message: UserMessage) -> None:
        tracker = await self.agent.tracker_store.get_or_create_tracker(message.sender_id)
        if tracker.get_slot("language") is None and message.sender_id in BOOK:
            # What action_session_start sets from the client book.
            _, _, advisor, language = BOOK[message.sender_id]
            tracker.update(SlotSet("language", language))
            tracker.update(SlotSet("advisor_name", ADVISORS[advisor]))
            tracker.update(SlotSet("advisor_gender", "f"))
        paused = tracker.is_paused()
        text = message.text or ""
        intent = "thank" if text.lower().startswith(("thank", "merci")) else "inform"
        tracker.update(UserUttered(text, intent={"name": intent}, metadata=message.metadata))
        answer = None if paused else self.answers.get(text)
        if answer is not None:
            tracker.update(BotUttered(answer))
        tracker.update(ActionExecuted("action_listen"))
        await self.agent.tracker_store.save(tracker)
        if answer is not None and message.output_channel is not None:
            await message.output_channel.send_text_message(message.sender_id, answer)


@dataclass
class Console:
    """A running console and the emulator it talks to."""

    channel: Channel
    emulator_url: str
    clock: EmulatorClock
    settings: Settings
    agent: Any
    admin: aiohttp.ClientSession
    assistant: ScriptedAssistant

    @property
    def url(self) -> str:
        """The console's base URL (``…/webhooks/whatsapp/console``)."""
        return f"{self.channel.url}{CONSOLE_PATH}"

    def phone_url(self, client: str, name: str | None = None) -> str:
        """The emulator's phone page for ``client`` (a number: the page's ``client``)."""
        query = f"?client={client}"
        if name is None and client in BOOK:
            name = BOOK[client][1]
        if name:
            query += "&name=" + name.replace(" ", "%20")
        return f"{self.emulator_url}/_emulator/phone{query}"

    # ------------------------------------------------------------------ time
    def now(self) -> datetime:
        return self.clock.now()

    async def advance(self, delta: timedelta) -> datetime:
        """Move both clocks through the emulator's admin API, as the phone page does."""
        async with self.admin.post("/_emulator/clock",
                                   json={"advance_seconds": delta.total_seconds()}) as r:
            assert r.status == 200, await r.text()
        return self.clock.now()

    # ------------------------------------------------------------------ the client's side
    async def client_writes(self, client: str, text: str, *, name: str | None = None) -> str:
        """``client`` writes ``text`` on WhatsApp (the emulator's inbound); returns once the
        channel has handled it (window recorded, turn run). The message's wamid.
        """
        if name is None and client in BOOK:
            name = BOOK[client][1]
        body: dict[str, Any] = {"from": client, "text": text}
        if name:
            body["name"] = name
        async with self.admin.post("/_emulator/inbound", json=body) as r:
            assert r.status == 200, await r.text()
            sent = await r.json()
        await self.settle()
        return str(sent["wamid"])

    async def settle(self) -> None:
        """Every webhook delivered and every turn of the channel done."""
        async with self.admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]
        await self.channel.settle()

    async def outbox(self, to: str | None = None, *, idle: bool = True) -> list[dict[str, Any]]:
        """What the maison sent (the emulator's outbox), in send order; with ``idle``, once
        every status due has been reported.
        """
        if idle:
            async with self.admin.post("/_emulator/wait_idle", json={"timeout": 10}):
                pass
        async with self.admin.get("/_emulator/outbox", params={"to": to} if to else None) as r:
            return list(await r.json())

    # ------------------------------------------------------------------ the assistant's side
    async def open_handoff(self, client: str, *, reason: str = "talk_to_advisor",
                           note: str = "Asked for her advisor") -> Handoff:
        """What ``action_handoff`` does in the action server: the handoff's record, then
        the pause in the conversation's tracker.
        """
        client_id, name, advisor, language = BOOK[client]
        book = HandoffBook(self.settings.effective_database_url)
        await book.initialize()
        try:
            handoff, _ = await book.open(
                conversation_id=client, reason=reason, note=note, language=language, now=self.now(),
                client_id=client_id, client_name=name, advisor_id=advisor, boutique_id="paris",
                phone_number_id=PNID, wa_id=client)
        finally:
            await book.close()
        tracker = await self.agent.tracker_store.get_or_create_tracker(client)
        tracker.update(ActionExecuted("action_handoff"))
        tracker.update(ConversationPaused())
        await self.agent.tracker_store.save(tracker)
        return handoff

    async def audit(self, limit: int = 200) -> list[AuditRecord]:
        """The advisors' acts, newest first (``salon_advisor_audit``)."""
        trail = AdvisorAudit(self.settings.effective_database_url, clock=self.clock)
        try:
            return await trail.recent(limit)
        finally:
            await trail.close()


@asynccontextmanager
async def running_console(
    settings: Settings,
    *,
    tokens: Sequence[Mapping[str, Any]] = TOKENS,
    start: datetime = T0,
    answers: Mapping[str, str] | None = None,
    status_delays: tuple[float, float, float] = (0.05, 0.1, 0.2),
    frozen: bool = False,
) -> AsyncIterator[Console]:
    """The emulator and the channel (with its console) on free ports, sharing one clock
    that starts at ``start`` and runs with real time (stands still with ``frozen``: only
    the emulator's admin API moves it); ``settings`` point at a seeded maison.
    ``answers``: what the scripted assistant says to which message. ``status_delays``:
    seconds before the emulator reports sent, delivered and read.
    """
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    agent = SimpleNamespace(tracker_store=InMemoryTrackerStore(domain), lock_store=InMemoryLockStore())
    assistant = ScriptedAssistant(agent, answers)
    sent, delivered, read = status_delays
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=sent, status_delivered_delay=delivered,
                            status_read_delay=read)
    # Browsers and live pages make more requests than the API's default limit expects.
    limit = SanicRateLimit(RateLimitSettings(per_minute=100_000, burst=100_000))
    base = ManualClock(start) if frozen else RunningClock(start)
    async with running_emulator(config, clock=base) as emu:
        assert emu.emulator is not None
        clock = emu.emulator.clock
        with tokens_in_environment(tokens):
            async with (
                running_channel(settings, api_base_url=emu.base_url, clock=clock, reply=assistant,
                                access_token=config.access_token, agent=agent, rate_limit=limit) as ch,
                aiohttp.ClientSession(base_url=emu.base_url) as admin,
            ):
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200
                console = Console(ch, emu.base_url, clock, settings, agent, admin, assistant)
                await _wait_ready(console)
                yield console


async def _wait_ready(console: Console) -> None:
    """The console answers 503 until the channel and the desk are up."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(f"{console.url}/inbox", allow_redirects=False) as r:
                if r.status != 503:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("the console never came up")
