"""L10: a synchronous 131047 closes the window as of the client's last message that the
send was decided on (Meta's timestamp), not as of our own clock: with our clock ahead of
Meta's, the client's next message still reopens her window."""

from __future__ import annotations

from datetime import timedelta

import aiohttp

from salon.clock import ManualClock
from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.identity import ClientRef
from salon.whatsapp.messages import OutgoingMessage
from tests.outbound_support import GraphStandIn
from tests.test_whatsapp_sender import CLAIRE, T0, outbox, say
from tests.whatsapp_support import APP_SECRET, PNID, running_channel


async def test_a_sync_131047_does_not_close_a_window_the_client_reopens(settings: Settings) -> None:
    meta_clock = ManualClock(T0)
    salon_clock = ManualClock(T0 + timedelta(minutes=10))  # ours runs ten minutes ahead
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config, clock=meta_clock) as emu, GraphStandIn(emu.base_url) as graph:
        async with running_channel(settings, api_base_url=graph.url, clock=salon_clock,
                                   access_token=config.access_token) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200
                await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
                await ch.settle()
                sender, sessions = ch.runtime.sender, ch.runtime.sessions
                assert sender is not None and sessions is not None
                ref = ClientRef(PNID, wa_id=CLAIRE)

                # Meta answers our reply with a synchronous 131047: it is decided again.
                graph.refuse_next(131047, "text")
                outcome = await sender.send(ref, OutgoingMessage({"type": "text", "text": {"body": "One moment."}}))
                assert outcome.action == "parked"
                state = await sessions.get(ref)
                assert state is not None and state.window_closed_code == 131047
                assert not state.window(salon_clock.now()).can_send_free_form

                # Two minutes later (Meta's time, still before our clock) Claire writes again.
                meta_clock.advance(timedelta(minutes=2))
                salon_clock.advance(timedelta(minutes=2))
                await say(admin, **{"from": CLAIRE, "text": "Are you there?", "name": "Claire Laurent"})
                await ch.settle()
                state = await sessions.get(ref)
                assert state is not None and state.window(salon_clock.now()).can_send_free_form, state
                outcome = await sender.send(ref, OutgoingMessage({"type": "text", "text": {"body": "Yes, Claire."}}))
                assert outcome.action == "free_form"
                bodies = [m["body"] for m in await outbox(admin, CLAIRE) if m["type"] == "text"]
                assert bodies == ["One moment.", "Yes, Claire."]  # the parked reply, then this one
