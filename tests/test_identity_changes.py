"""Meta's identity changes (``system`` messages ``user_changed_user_id`` and
``user_changed_number``, with ``previous_user_id``): the client's window, conversation,
consent, client book record, queued messages, open handoff and restock wish follow her to
her new ids, once, whatever the retries. Through the real channel on SQLite (the seeded
maison), with the project's fixtures written from Meta's reference."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from salon.advisors.handoff import HandoffBook, handoffs_table
from salon.config import Settings
from salon.consent.ledger import ledger_table
from salon.identity import ClientRef, conversation_id
from salon.integrations.schema import clients as clients_table
from salon.outbound.queue import OutboundQueue, RequestSpec, requests_table
from salon.outbound.restock import RestockBook, restock_table
from salon.storage.db import make_async_engine
from salon.whatsapp.updates import parse_webhook
from tests.whatsapp_support import (
    PNID,
    contact,
    envelope,
    messages_change,
    running_channel,
    text_message,
)

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())
OLD, NEW = "FR.40213376198812340001", "FR.73330012948120017762"  # Inès (not in the book)
CLAIRE_PHONE, CLAIRE_BSUID = "33600000001", "FR.4820193746581029374"  # C-001 in the book


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def system_message(payload: dict[str, Any], *, ts: int, **system: str | None) -> dict[str, Any]:
    """The fixture's webhook with its ids and time replaced (``None`` removes a key)."""
    body = copy.deepcopy(payload)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["timestamp"] = str(ts)
    message["id"] = f"{message['id'][:-6]}{ts % 1000000:06d}"
    for key, value in system.items():
        target = message if key in ("from", "from_user_id") else message["system"]
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return body


# --------------------------------------------------------------------------- parsing


def test_both_identity_changes_are_read_from_meta_payloads() -> None:
    [by_id] = parse_webhook(fixture("emulator_system_user_changed_user_id.json")).messages
    change = by_id.identity_change
    assert change is not None and change.kind == "user_changed_user_id"
    assert (change.before.user_id, change.before.wa_id) == ("FR.40213376198812340001", None)
    assert (change.after.user_id, change.after.wa_id) == ("FR.73330012948120017762", None)
    assert change.parent_user_id == "FR.ENT.52019384756102938475"
    assert not by_id.starts_turn and not by_id.extends_window

    [by_number] = parse_webhook(fixture("emulator_system_user_changed_number.json")).messages
    change = by_number.identity_change
    assert change is not None and change.kind == "user_changed_number"
    assert (change.before.user_id, change.before.wa_id) == ("FR.40213376198812340002", "33612345678")
    assert (change.after.user_id, change.after.wa_id) == ("FR.61827364519283746501", "33687654321")


@pytest.mark.parametrize(("system", "why"), [
    ({"user_id": None}, "without the new BSUID"),
    ({"user_id": "33612345678"}, "not a BSUID"),
    ({"previous_user_id": None, "from_user_id": None}, "names no previous id"),
])
def test_a_change_that_cannot_be_followed_is_rejected_with_its_reason(system: dict[str, Any], why: str) -> None:
    batch = parse_webhook(system_message(fixture("emulator_system_user_changed_user_id.json"), ts=TS,
                                         **system))
    assert batch.messages == []
    [(where, reason)] = batch.rejected
    assert where.endswith("messages[0]") and why in reason


def test_other_system_messages_change_no_identity() -> None:
    payload = system_message(fixture("emulator_system_user_changed_user_id.json"), ts=TS,
                             type="customer_identity_changed", from_user_id=OLD)
    [message] = parse_webhook(payload).messages
    assert message.identity_change is None and not message.starts_turn


# --------------------------------------------------------------------------- following


async def test_a_new_bsuid_keeps_her_window_conversation_stop_and_pending_items(settings: Settings) -> None:
    engine = make_async_engine(settings.effective_database_url)
    queue, handoffs = OutboundQueue(engine=engine), HandoffBook(engine=engine)
    restock = RestockBook(engine=engine, queue=queue, phone_number_id=PNID)
    for store in (queue, handoffs, restock):
        await store.initialize()
    old = ClientRef(PNID, user_id=OLD)
    async with running_channel(settings) as ch:
        # She writes from her username, then says STOP.
        hello = messages_change([text_message(None, "Bonjour", TS) | {"from_user_id": OLD}],
                                [contact(None, "Inès Moreau", OLD)])
        stop = messages_change([text_message(None, "STOP", TS + 60) | {"from_user_id": OLD}],
                               [contact(None, "Inès Moreau", OLD)])
        # and stops marketing in WhatsApp's own settings (Meta's user_preferences)
        preference = {"field": "user_preferences", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "33100000000", "phone_number_id": PNID},
            "contacts": [contact(None, "Inès Moreau", OLD)],
            "user_preferences": [{"user_id": OLD, "detail": "User requested to stop marketing messages",
                                  "category": "marketing_messages", "value": "stop",
                                  "timestamp": TS + 30}]}}
        for payload in (envelope(hello), envelope(preference), envelope(stop)):
            assert (await ch.post(payload))[0] == 200
        await ch.settle()
        service = ch.runtime.service
        assert service is not None
        stopped = await service.consents.decisions(old, None)
        assert stopped and not any(granted for granted, _ in stopped.values())  # STOP: nothing
        assert await service.consents.marketing_stopped(old)
        first = ch.received[0].sender_id
        assert first == OLD
        # What waits for her under her old id.
        await queue.enqueue(RequestSpec(client=old, purpose="order_update", idempotency_key="k-1",
                                        requested_by="crm", content={"text": "Your order is ready."},
                                        not_before=NOW + timedelta(days=1)), NOW)
        await handoffs.open(conversation_id=first, reason="talk_to_advisor", note="call me",
                            language="fr", now=NOW, phone_number_id=PNID, user_id=OLD)
        await restock.add(old, "BG-001", NOW, colour="Noir")

        change = system_message(fixture("emulator_system_user_changed_user_id.json"), ts=TS + 120,
                                from_user_id=None, previous_user_id=OLD, user_id=NEW)
        assert (await ch.post(change))[0] == 200
        assert (await ch.post(change))[0] == 200  # Meta's retry: a duplicate, nothing twice
        # A message from her new id is the same conversation, in her open window.
        again = messages_change([text_message(None, "Vous êtes là ?", TS + 180) | {"from_user_id": NEW}],
                                [contact(None, "Inès Moreau", NEW)])
        assert (await ch.post(envelope(again)))[0] == 200
        await ch.settle()
        assert ch.received[-1].sender_id == first
        new = ClientRef(PNID, user_id=NEW)
        state = await service.sessions.get(new)
        assert state is not None and state.user_id == NEW
        assert conversation_id(state.client_key) == first
        assert state.window(NOW + timedelta(minutes=5)).is_open
        assert await service.sessions.get(old) == state  # late statuses for the old id find her
        assert await service.consents.decisions(new, None) == stopped  # her STOP holds
        assert await service.consents.marketing_stopped(new)  # and her marketing stop

    async with engine.connect() as conn:
        ledger = (await conn.execute(select(ledger_table))).mappings().all()
        request = (await conn.execute(select(requests_table))).mappings().one()
        handoff = (await conn.execute(select(handoffs_table))).mappings().one()
        wish = (await conn.execute(select(restock_table))).mappings().one()
    decisions = {r["decision"] for r in ledger}
    by_subject = {s: {r["decision"] for r in ledger if r["subject"] == s} for s in (f"u:{OLD}", f"u:{NEW}")}
    assert by_subject[f"u:{OLD}"] == by_subject[f"u:{NEW}"] == decisions  # copied once, not rewritten
    assert len(ledger) == 2 * len(decisions)
    assert (request["user_id"], request["state"]) == (NEW, "queued")
    assert (handoff["user_id"], handoff["conversation_id"], handoff["status"]) == (NEW, first, "open")
    assert wish["user_id"] == NEW and NEW in wish["open_key"] and OLD not in wish["open_key"]
    await engine.dispose()


async def test_a_new_number_moves_her_client_book_record(settings: Settings) -> None:
    new_phone, new_bsuid = "33687654321", "FR.61827364519283746501"
    async with running_channel(settings) as ch:
        hello = messages_change([text_message(CLAIRE_PHONE, "Bonjour", TS)],
                                [contact(CLAIRE_PHONE, "Claire Laurent", CLAIRE_BSUID)])
        assert (await ch.post(envelope(hello)))[0] == 200
        await ch.settle()
        change = system_message(fixture("emulator_system_user_changed_number.json"), ts=TS + 60,
                                **{"from": CLAIRE_PHONE, "previous_user_id": CLAIRE_BSUID,
                                   "wa_id": new_phone, "user_id": new_bsuid})
        assert (await ch.post(change))[0] == 200
        await ch.settle()
        service = ch.runtime.service
        assert service is not None
        profile = await service.consents.profile(ClientRef(PNID, user_id=new_bsuid, wa_id=new_phone))
        assert profile is not None and profile.first_name == "Claire"  # the book knows her new ids
        state = await service.sessions.get(ClientRef(PNID, wa_id=new_phone))
        assert state is not None and (state.wa_id, state.user_id) == (new_phone, new_bsuid)
        assert conversation_id(state.client_key) == ch.received[0].sender_id
    engine = make_async_engine(settings.effective_database_url)
    async with engine.connect() as conn:
        row = (await conn.execute(select(clients_table).where(clients_table.c.id == "C-001"))).mappings().one()
    await engine.dispose()
    assert (row["phone"], row["wa_id"], row["user_id"]) == (f"+{new_phone}", new_phone, new_bsuid)
