"""M3: parked content is forgotten only once it is delivered. A delivery whose send fails
keeps the content (in order) for the client's next message."""

from __future__ import annotations

from datetime import timedelta

import pytest

from salon.clock import ManualClock
from salon.config import Settings
from salon.dev.stack import free_port
from salon.identity import ClientRef
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.messages import OutgoingMessage
from tests.test_whatsapp_sender import CLAIRE, T0, outbox, say, settle, wired
from tests.whatsapp_support import PNID


@pytest.mark.parametrize("merge", ["on", "off"])
async def test_parked_content_survives_a_failed_delivery(settings: Settings, merge: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALON_MERGE_REPLIES", merge)
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        await ch.settle()
        clock.advance(timedelta(hours=25))
        sender, sessions = ch.runtime.sender, ch.runtime.sessions
        assert sender is not None and sessions is not None
        ref = ClientRef(PNID, wa_id=CLAIRE)
        for text in ("Your alteration is ready for fitting.", "We also kept the scarf you liked."):
            outcome = await sender.send(ref, OutgoingMessage({"type": "text", "text": {"body": text}}))
            assert outcome.action == "parked"
        [nudge] = await settle(ch, admin, CLAIRE, 1)
        assert nudge["template"] == "advisor_update_nudge"

        # The Graph API cannot be reached when Claire answers: nothing can be delivered.
        working = sender.graph
        sender.graph = GraphClient(GraphConfig(access_token=emu.config.access_token, phone_number_id=PNID,
                                               base_url=f"http://127.0.0.1:{free_port()}", max_attempts=1))
        try:
            clock.advance(timedelta(minutes=5))
            await say(admin, **{"from": CLAIRE, "reply_to": nudge["wamid"], "button": "0"})
            await ch.settle()
        finally:
            await sender.graph.close()
            sender.graph = working
        assert len(await outbox(admin, CLAIRE)) == 1  # still only the nudge
        state = await sessions.get(ref)
        assert state is not None and state.parked_count == 2, "the undelivered content is kept"
        assert [p.payload["message"]["text"]["body"] for p in await sessions.parked(ref)] == [
            "Your alteration is ready for fitting.", "We also kept the scarf you liked."]

        # Her next message brings both, in order, once: as one message when merging is on.
        clock.advance(timedelta(minutes=5))
        await say(admin, **{"from": CLAIRE, "text": "Hello?", "name": "Claire Laurent"})
        if merge == "on":
            box = await settle(ch, admin, CLAIRE, 2)
            assert [m["body"] for m in box[1:]] == [
                "Your alteration is ready for fitting.\n\nWe also kept the scarf you liked."]
        else:
            box = await settle(ch, admin, CLAIRE, 3)
            assert [m["body"] for m in box[1:]] == ["Your alteration is ready for fitting.",
                                                   "We also kept the scarf you liked."]
        state = await sessions.get(ref)
        assert state is not None and state.parked_count == 0
