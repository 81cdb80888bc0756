"""A client's call opens or refreshes her customer service window as a message does
(Meta, 2026), answered or not, from a phone or a username; it starts no turn. Against the
emulator's `POST /_emulator/call`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.whatsapp import WhatsAppOutput
from salon.clock import ManualClock
from salon.config import Settings
from salon.identity import ClientRef
from tests.test_whatsapp_sender import CLAIRE, T0, outbox, settle, wired

BSUID = "FR.5772156649015328606"


@pytest.mark.parametrize(("client", "answered"), [(CLAIRE, True), (BSUID, False)])
async def test_a_call_opens_the_window_for_a_free_form_reply(settings: Settings, client: str,
                                                             answered: bool) -> None:
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        body = {"client": client, "answered": answered}
        async with admin.post("/_emulator/call", json=body) as r:
            assert r.status == 200, await r.text()
            call = await r.json()
        async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]
        await ch.settle()
        pnid = ch.runtime.config.phone_number_id
        ref = ClientRef(pnid, user_id=client) if client == BSUID else ClientRef(pnid, wa_id=client)
        state = await ch.runtime.service.sessions.get(ref)  # type: ignore[union-attr]
        assert state is not None and state.window(clock.now()).can_send_free_form
        assert ch.received == []  # no turn for a call
        clock.advance(timedelta(hours=2))
        await WhatsAppOutput(ch.runtime).send_response(client, {"text": "Sorry we missed you."})
        [sent] = await settle(ch, admin, client, 1)
        assert sent["type"] == "text" and sent["template"] is None  # free-form: the window is open
        assert call["status"] == ("COMPLETED" if answered else "FAILED")


async def test_a_call_after_the_window_closed_reopens_it(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": "Bonjour"}) as r:
            assert r.status == 200
        await ch.settle()
        clock.advance(timedelta(hours=30))
        async with admin.post("/_emulator/call", json={"client": CLAIRE}) as r:
            assert r.status == 200
        async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]
        await ch.settle()
        state = await ch.runtime.service.sessions.get(  # type: ignore[union-attr]
            ClientRef(ch.runtime.config.phone_number_id, wa_id=CLAIRE))
        # connect at the call's time, terminate when it ended: the window counts from there
        assert state is not None and state.last_inbound_at is not None
        assert clock.now() <= state.last_inbound_at <= clock.now() + timedelta(minutes=5)
        assert state.window(clock.now()).can_send_free_form
        assert await outbox(admin, CLAIRE) == []  # nothing was said to her
