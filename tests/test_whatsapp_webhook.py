"""The WhatsApp webhook through the real Sanic blueprint: signatures, real payloads,
batches, duplicates, statuses, template and preference webhooks, store outage."""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from salon.config import Settings
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.storage.db import sync_url
from salon.webhook.inbox import inbox_table
from salon.whatsapp.signature import sign
from salon.window.redis_store import RedisSessionStore
from tests.whatsapp_support import (
    APP_SECRET,
    PNID,
    SHARED_FIXTURES,
    VERIFY_TOKEN,
    contact,
    envelope,
    gather_posts,
    messages_change,
    running_channel,
    status,
    text_message,
    wamid,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
TS = int(NOW.timestamp())


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=url, redis_url=None)


def count(url: str, table, *where) -> int:  # type: ignore[no-untyped-def]
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- handshake


async def test_verification_handshake(sqlite_url: str, tmp_path: Path) -> None:
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert ch.http is not None
        ok = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
        async with ch.http.get(ch.webhook, params=ok) as resp:
            assert resp.status == 200
            assert await resp.text() == "1158201444"
        bad = {**ok, "hub.verify_token": "guess"}
        async with ch.http.get(ch.webhook, params=bad) as resp:
            assert resp.status == 403
        async with ch.http.get(ch.webhook, params={"hub.challenge": "x"}) as resp:
            assert resp.status == 403
        async with ch.http.get(f"{ch.url}/webhooks/whatsapp/") as resp:
            assert resp.status == 200


# --------------------------------------------------------------------------- signatures and bodies


async def test_forged_missing_oversized_and_non_json_bodies_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    payload = envelope(messages_change([text_message("33600000001", "Bonjour", TS)],
                                       [contact("33600000001")]))
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(payload, signature=None))[0] == 401
        assert (await ch.post(payload, secret="not-the-secret"))[0] == 403
        assert (await ch.post(payload, signature="sha256=" + "0" * 64))[0] == 403
        assert (await ch.post(payload, signature="sha1=abc"))[0] == 403
        big = json.dumps({"object": "whatsapp_business_account", "entry": [],
                          "pad": "x" * (3 * 1024 * 1024)}).encode()
        assert (await ch.post(None, raw=big))[0] == 400
        assert (await ch.post(None, raw=b"not json at all"))[0] == 400
        assert (await ch.post(None, raw=b'{"object": "page", "entry": []}'))[0] == 400
        await ch.settle()
        assert ch.received == []
    assert count(sqlite_url, inbox_table) == 0


async def test_signature_is_checked_on_raw_bytes_with_escaped_unicode(sqlite_url: str, tmp_path: Path) -> None:
    # Meta escapes non-ASCII; the signature covers those exact bytes.
    message = text_message("33600000001", "Très élégant, merci ✨", TS)
    raw = json.dumps(envelope(messages_change([message], [contact("33600000001", "Hélène")])),
                     ensure_ascii=True, separators=(",", ":")).encode()
    assert b"\\u00e8" in raw
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(None, raw=raw))[0] == 200
        await ch.settle()
    assert [m.text for m in ch.received] == ["Très élégant, merci ✨"]
    assert ch.received[0].metadata["profile_name"] == "Hélène"


# --------------------------------------------------------------------------- real payloads

EXPECTED_TURNS = {
    "01_inbound_text__bindambc.json": lambda m: m.text and m.metadata["type"] == "text",
    "02_interactive_button_reply__pywa.json": lambda m: m.text == "title"
    and m.metadata["reply"]["id"] == "callback_data",
    "03_interactive_list_reply__pywa.json": lambda m: m.metadata["reply"]["kind"] == "list_reply",
    "04_template_quick_reply_button__bindambc.json": lambda m: m.metadata["reply"]["kind"] == "template_button",
    "04b_template_quick_reply_button__pywa.json": lambda m: m.metadata["reply"]["kind"] == "template_button",
    "05_inbound_image__bindambc.json": lambda m: m.text == "/share_media"
    and m.metadata["attachment"]["type"] == "image",
    "06_inbound_location__bindambc.json": lambda m: m.text == "/share_location"
    and "latitude" in m.metadata["location"],
    "17_inbound_unsupported_131051__pywa.json": lambda m: m.text == "/unsupported_message"
    and m.metadata["errors"][0]["code"] == 131051,
    "18_inbound_text_ctwa_referral__meta_docs.json": lambda m: m.metadata["referral"]["source_type"] == "ad",
    "19_inbound_text_reply_with_context__pywa.json": lambda m: m.metadata["context"]["id"],
    "21_inbound_text_message_business_button_referred_product__meta_docs.json": lambda m: "referred_product"
    in m.metadata["context"],
    "25_inbound_order__pywa.json": lambda m: m.text == "/place_order" and m.metadata["order"]["product_items"],
}
NO_TURN = {
    "07_inbound_reaction__bindambc.json", "08_reaction_removed_no_emoji__pywa.json",
    "09_status_delivered_legacy_cbp__bindambc.json", "10_status_read__bindambc.json",
    "11_status_failed_131047_reengagement__bindambc.json", "12_status_failed_131049__meta_docs.json",
    "13_template_status_rejected_scam__bindambc.json", "14_template_status_approved__meta_docs.json",
    "14b_template_status_rejected_invalid_format__meta_docs.json", "15_template_quality_update__pywa.json",
    "16_template_category_update_impending__meta_docs.json",
    "16b_template_category_update_completed__meta_docs.json", "20_status_sent_marketing_pmp__meta_docs.json",
    "23_user_preferences_marketing_stop__meta_docs.json", "24_status_failed_130472__pywa.json",
}
NOT_WEBHOOKS = {
    "22_send_response_error_130429__meta_docs.json",  # a Graph API response body
    "26_onprem_status_failed_470__360dialog_apidog.json",  # a bare On-Premises status
}


def _shared_fixtures() -> list[Path]:
    if not SHARED_FIXTURES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_FIXTURES} is missing in CI")
        pytest.skip(f"real payloads not found at {SHARED_FIXTURES}")
    return sorted(SHARED_FIXTURES.glob("*.json"))


def test_every_real_payload_is_classified() -> None:
    names = {p.name for p in _shared_fixtures()}
    assert names == set(EXPECTED_TURNS) | NO_TURN | NOT_WEBHOOKS


def _value(path: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text())["entry"][0]["changes"][0]["value"]


async def _check_state(name: str, path: Path, ch) -> None:  # type: ignore[no-untyped-def]
    service = ch.runtime.service
    value = _value(path)
    pnid = value.get("metadata", {}).get("phone_number_id")
    if name.startswith("18_"):
        # A Click-to-WhatsApp referral marks the free entry point.
        state = await service.sessions.get(ClientRef(pnid, wa_id=value["messages"][0]["from"]))
        assert state is not None and state.referral_at is not None and state.entry_point == "ctwa_ad"
    if name.startswith(("07_", "08_")):
        # A reaction does not open or refresh the window.
        assert await service.sessions.get(ClientRef(pnid, wa_id=value["messages"][0]["from"])) is None
    if name.startswith("11_"):
        state = await service.sessions.get(ClientRef(pnid, wa_id=value["statuses"][0]["recipient_id"]))
        assert state is not None and state.window_closed_code == 131047
    if "statuses" in value:
        first = value["statuses"][0]
        record = await service.sent.outbound_by_wamid(first["id"])
        assert record is not None and record.status == first["status"]
        if first.get("errors"):
            assert record.error_code == first["errors"][0]["code"]
    if name.startswith("23_"):
        pref = value["user_preferences"][0]
        history = await service.consents.preference_history(ClientRef(pnid, wa_id=pref["wa_id"]))
        assert [h[0] for h in history] == [pref["value"]]


async def test_real_payloads_replayed_through_the_blueprint(tmp_path: Path) -> None:
    fixtures = [p for p in _shared_fixtures() if p.name not in NOT_WEBHOOKS]
    for index, path in enumerate(fixtures):
        # One database per sample: the samples come from different sources and some
        # reuse the same wamid, which a real number never does.
        url = f"sqlite:///{tmp_path / f'{index}.db'}"
        # The channel serves the sample's number (another number's webhooks are ignored).
        pnid = _value(path).get("metadata", {}).get("phone_number_id")
        async with running_channel(settings_for(url, tmp_path),
                                   options={"phone_number_id": pnid} if pnid else None) as ch:
            code, _ = await ch.post(None, raw=path.read_bytes())
            assert code == 200, path.name
            await ch.settle()
            if path.name in EXPECTED_TURNS:
                assert len(ch.received) == 1, path.name
                message = ch.received[0]
                assert message.input_channel == "whatsapp"
                assert message.output_channel.name() == "whatsapp"
                assert message.message_id == message.metadata["wamid"]
                assert EXPECTED_TURNS[path.name](message), (path.name, message.text, message.metadata)
            else:
                assert ch.received == [], path.name
            await _check_state(path.name, path, ch)
            # A retried delivery of the same payload changes nothing.
            assert (await ch.post(None, raw=path.read_bytes()))[0] == 200
            await ch.settle()
            assert len(ch.received) == (1 if path.name in EXPECTED_TURNS else 0), path.name


async def test_template_lifecycle_webhook_reaches_the_registry(sqlite_url: str, tmp_path: Path) -> None:
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        registry = ch.runtime.service.registry  # type: ignore[union-attr]
        template = registry.get("advisor_update_nudge", "fr")
        assert template is not None and template.status == "APPROVED"
        payload = {"object": "whatsapp_business_account", "entry": [{
            "id": "200000000000001", "time": TS,
            "changes": [{"field": "message_template_status_update", "value": {
                "event": "PAUSED", "message_template_id": int(template.template_id),
                "message_template_name": "advisor_update_nudge", "message_template_language": "fr",
                "reason": None, "other_info": {"title": "FIRST_PAUSE", "description": "low quality"}}}]}]}
        assert (await ch.post(payload))[0] == 200
        assert registry.get("advisor_update_nudge", "fr").status == "PAUSED"


# --------------------------------------------------------------------------- batches and identities


async def test_batched_payload_every_entry_change_message_and_status(sqlite_url: str, tmp_path: Path) -> None:
    clients = [f"3360000{n:04d}" for n in range(6)]
    changes = []
    expected: dict[str, list[str]] = {c: [] for c in clients}
    status_ids = []
    for round_ in range(3):
        msgs, contacts, statuses = [], [], []
        for index, wa_id in enumerate(clients):
            ts = TS + round_ * 10 + index
            body = f"message {round_} from {wa_id}"
            msgs.append(text_message(wa_id, body, ts))
            contacts.append(contact(wa_id, f"Client {index}"))
            expected[wa_id].append(body)
            sid = wamid()
            status_ids.append(sid)
            statuses.append(status(sid, "delivered", ts, wa_id))
        random.Random(round_).shuffle(msgs)
        changes.append(messages_change(msgs, contacts))
        changes.append(messages_change([], None, statuses))
    payload = envelope(*changes, entries=3)
    assert len(payload["entry"]) == 3
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        got: dict[str, list[str]] = {c: [] for c in clients}
        for message in ch.received:
            got[message.sender_id].append(message.text)
        assert got == expected  # every message, per client in timestamp order
    assert count(sqlite_url, outbound_table, outbound_table.c.wamid.in_(status_ids)) == len(status_ids)


async def test_bsuid_only_contact_and_unknown_type(sqlite_url: str, tmp_path: Path) -> None:
    bsuid = "FR.40917265830192837465"
    message = {"id": wamid(), "timestamp": str(TS), "type": "text", "text": {"body": "Hello"}}
    novel = {"id": wamid(), "timestamp": str(TS + 1), "type": "hologram", "hologram": {"x": 1}}
    parent = "FR.ENT.11815799212886844830"
    payload = envelope(messages_change([message, novel], [{"profile": {"name": "Ines"}, "user_id": bsuid,
                                                           "parent_user_id": parent}]))
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert [m.sender_id for m in ch.received] == [bsuid, bsuid]
        assert [m.text for m in ch.received] == ["Hello", "/unsupported_message"]
        assert ch.received[0].metadata["user_id"] == bsuid and ch.received[0].metadata["wa_id"] is None
        assert ch.received[0].metadata["parent_user_id"] == parent
        state = await ch.runtime.service.sessions.get(ClientRef(PNID, user_id=bsuid))  # type: ignore[union-attr]
        assert state is not None and state.last_inbound_at == datetime.fromtimestamp(TS + 1, timezone.utc)


async def test_malformed_items_are_rejected_and_the_rest_kept(sqlite_url: str, tmp_path: Path) -> None:
    good = text_message("33600000001", "Still here", TS)
    no_sender = {"id": wamid(), "timestamp": str(TS), "type": "text", "text": {"body": "?"}}
    no_time = {"id": wamid(), "type": "text", "from": "33600000002", "text": {"body": "?"}}
    payload = envelope(messages_change([no_sender, good, no_time, "junk"], []))  # type: ignore[list-item]
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert [m.text for m in ch.received] == ["Still here"]
        assert ch.runtime.service.stats["rejected"] == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(("options", "limit"), [({}, 4), ({"concurrent_turns": "2"}, 2)])
async def test_turns_of_different_clients_overlap_up_to_the_limit(
    options: dict[str, str], limit: int, sqlite_url: str, tmp_path: Path
) -> None:
    """Four turns run at once by default (the assistant is kept busy while one waits on
    the action server), or as many as ``concurrent_turns`` says, never one more; the rest
    wait their turn and none is lost."""
    lock = threading.Lock()
    running = peak = 0
    release, all_running = threading.Event(), threading.Event()

    async def slow_assistant(message: object) -> None:  # runs in the assistant's thread
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == limit:
                all_running.set()
        await asyncio.to_thread(release.wait, 20)
        with lock:
            running -= 1

    senders = [f"3360000010{n}" for n in range(7)]
    payload = envelope(messages_change([text_message(wa, f"Hello from {wa}", TS) for wa in senders],
                                       [contact(wa) for wa in senders]))
    async with running_channel(settings_for(sqlite_url, tmp_path), reply=slow_assistant, options=options) as ch:
        assert (await ch.post(payload))[0] == 200
        assert await asyncio.to_thread(all_running.wait, 10)
        await asyncio.sleep(0.2)  # room for one more turn to start, if the limit let it
        assert (peak, running) == (limit, limit)
        release.set()
        await ch.settle()
        assert sorted(m.sender_id for m in ch.received) == senders
    assert peak == limit


# --------------------------------------------------------------------------- duplicates and statuses


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_duplicates_posted_five_times_concurrently_give_one_turn(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    message = text_message("33600000001", "Is my order on its way?", TS)
    payload = envelope(messages_change([message], [contact("33600000001")]))
    async with running_channel(settings_for(url, tmp_path)) as ch:
        replies = await gather_posts(ch, payload, 5)
        assert [r[0] for r in replies] == [200] * 5
        await ch.settle()
        assert [m.text for m in ch.received] == ["Is my order on its way?"]
        assert ch.runtime.service.stats["duplicates"] == 4  # type: ignore[union-attr]
    assert count(url, inbox_table) == 1


async def test_out_of_order_and_duplicate_statuses_stay_monotonic(database_url: str, tmp_path: Path) -> None:
    sid = wamid()
    async with running_channel(settings_for(database_url, tmp_path)) as ch:
        for state, offset in [("read", 3), ("delivered", 2), ("sent", 1), ("read", 3), ("delivered", 2)]:
            payload = envelope(messages_change([], None, [status(sid, state, TS + offset, "33600000001")]))
            assert (await ch.post(payload))[0] == 200
        record = await ch.runtime.service.sent.outbound_by_wamid(sid)  # type: ignore[union-attr]
        assert record is not None and record.status == "read"
        failed = status(sid, "failed", TS + 4, "33600000001",
                        [{"code": 131026, "title": "Message undeliverable"}])
        assert (await ch.post(envelope(messages_change([], None, [failed]))))[0] == 200
        late = status(sid, "delivered", TS + 5, "33600000001")
        assert (await ch.post(envelope(messages_change([], None, [late]))))[0] == 200
        record = await ch.runtime.service.sent.outbound_by_wamid(sid)  # type: ignore[union-attr]
        assert record is not None and record.status == "failed" and record.error_code == 131026


# --------------------------------------------------------------------------- group commit


def signed_bodies(senders: list[str], text: str = "Bonjour") -> list[bytes]:
    return [json.dumps(envelope(messages_change([text_message(wa, f"{text} {n}", TS + n)], [contact(wa)])),
                       separators=(",", ":")).encode() for n, wa in enumerate(senders)]


async def test_a_burst_of_webhooks_is_stored_in_one_commit(database_url: str, tmp_path: Path) -> None:
    """Webhooks read together are stored together: one commit for the burst, every
    client's window recorded, every turn run."""
    senders = [f"3360000020{n:02d}" for n in range(24)]
    bodies = signed_bodies(senders)
    async with running_channel(settings_for(database_url, tmp_path)) as ch:
        service = ch.runtime.service
        assert service is not None
        before = service.stats["commits"]
        replies = await asyncio.gather(*(service.handle(b, sign(b, APP_SECRET)) for b in bodies))
        assert [r.status for r in replies] == [200] * 24
        assert service.stats["commits"] == before + 1
        await ch.settle()
        assert sorted(m.sender_id for m in ch.received) == senders
        states = await service.sessions.get_many([ClientRef(PNID, wa_id=wa) for wa in senders])
        assert [s.last_inbound_at if s else None for s in states] == [
            datetime.fromtimestamp(TS + n, timezone.utc) for n in range(24)]
        # The next webhook, alone, is its own commit.
        [late] = signed_bodies(["33600000299"], "Encore")
        assert (await service.handle(late, sign(late, APP_SECRET))).status == 200
        assert service.stats["commits"] == before + 2
    assert count(database_url, inbox_table) == 25


async def test_a_failed_group_answers_503_to_each_webhook_and_keeps_none(
    sqlite_url: str, redis_url: str, tmp_path: Path
) -> None:
    senders = [f"3360000030{n:02d}" for n in range(5)]
    bodies = signed_bodies(senders)
    healthy = RedisSessionStore(redis_url, prefix=f"test:{wamid()}")
    async with running_channel(settings_for(sqlite_url, tmp_path), sessions=healthy) as ch:
        service = ch.runtime.service
        assert service is not None
        service.sessions = RedisSessionStore("redis://127.0.0.1:1/0", prefix="test:down")  # nothing listens
        replies = await asyncio.gather(*(service.handle(b, sign(b, APP_SECRET)) for b in bodies))
        assert [r.status for r in replies] == [503] * 5
        assert count(sqlite_url, inbox_table) == 0
        service.sessions = healthy  # back; Meta retries every one of them
        replies = await asyncio.gather(*(service.handle(b, sign(b, APP_SECRET)) for b in bodies))
        assert [r.status for r in replies] == [200] * 5
        await ch.settle()
        assert sorted(m.sender_id for m in ch.received) == senders
        await healthy.clear()


async def test_a_webhook_whose_caller_left_is_stored_and_answered(sqlite_url: str, tmp_path: Path) -> None:
    [body] = signed_bodies(["33600000401"])
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        service = ch.runtime.service
        assert service is not None
        task = asyncio.ensure_future(service.handle(body, sign(body, APP_SECRET)))
        await asyncio.sleep(0)  # joined the commit
        task.cancel()
        await ch.settle()
        await asyncio.sleep(0.05)
        await ch.settle()
        assert [m.sender_id for m in ch.received] == ["33600000401"]
        # Meta's retry of it is a duplicate.
        assert (await service.handle(body, sign(body, APP_SECRET))).status == 200
        await ch.settle()
        assert len(ch.received) == 1 and service.stats["duplicates"] == 1
    assert count(sqlite_url, inbox_table) == 1


# --------------------------------------------------------------------------- outage


async def test_store_outage_answers_503_and_loses_nothing(sqlite_url: str, redis_url: str, tmp_path: Path) -> None:
    message = text_message("33600000001", "Bonsoir", TS)
    payload = envelope(messages_change([message], [contact("33600000001")]))
    healthy = RedisSessionStore(redis_url, prefix=f"test:{wamid()}")
    async with running_channel(settings_for(sqlite_url, tmp_path), sessions=healthy) as ch:
        service = ch.runtime.service
        assert service is not None
        service.sessions = RedisSessionStore("redis://127.0.0.1:1/0", prefix="test:down")  # nothing listens
        assert (await ch.post(payload))[0] == 503
        await ch.settle()
        assert ch.received == []
        assert count(sqlite_url, inbox_table) == 0  # the claim was released
        service.sessions = healthy  # the store is back; Meta retries
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert [m.text for m in ch.received] == ["Bonsoir"]
        state = await healthy.get(ClientRef(PNID, wa_id="33600000001"))
        assert state is not None and state.last_inbound_id == message["id"]
        await healthy.clear()


async def test_pending_messages_are_replayed_on_start(sqlite_url: str, tmp_path: Path) -> None:
    message = text_message("33600000001", "Are you there?", TS)
    payload = envelope(messages_change([message], [contact("33600000001")]))

    settings = settings_for(sqlite_url, tmp_path)
    async with running_channel(settings, reply=None) as ch:
        service = ch.runtime.service
        assert service is not None
        # Acknowledge without running the turn, as if the server stopped right after the 200.
        service._schedule = lambda turns, statuses: None  # type: ignore[method-assign]
        assert (await ch.post(payload))[0] == 200
    async with running_channel(settings) as ch2:
        await ch2.settle()
        assert [m.text for m in ch2.received] == ["Are you there?"]
    assert count(sqlite_url, inbox_table, inbox_table.c.state == "done") == 1


def test_secret_never_optional() -> None:
    from rasa.shared.exceptions import RasaException

    from connectors.whatsapp import WhatsAppInput

    base = {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": "t",
            "phone_number_id": PNID}
    assert WhatsAppInput.from_credentials(base).name() == "whatsapp"
    for key in ("app_secret", "verify_token", "access_token", "phone_number_id"):
        with pytest.raises(RasaException, match=key):
            WhatsAppInput.from_credentials({**base, key: ""})
    with pytest.raises(RasaException):
        WhatsAppInput.from_credentials(None)
    with pytest.raises(RasaException, match="auth_mode"):
        WhatsAppInput.from_credentials({**base, "auth_mode": "basic"})


def test_concurrent_turns_is_a_whole_number_from_1_to_256() -> None:
    from rasa.shared.exceptions import RasaException

    from connectors.whatsapp import WhatsAppInput

    base = {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": "t",
            "phone_number_id": PNID}
    assert WhatsAppInput.from_credentials(base).config.concurrent_turns == 4
    assert WhatsAppInput.from_credentials({**base, "concurrent_turns": ""}).config.concurrent_turns == 4
    assert WhatsAppInput.from_credentials({**base, "concurrent_turns": "12"}).config.concurrent_turns == 12
    assert WhatsAppInput.from_credentials({**base, "concurrent_turns": 1}).config.concurrent_turns == 1
    for bad in (0, "0", "-2", "many", "2.5", 257):
        with pytest.raises(RasaException, match="concurrent_turns"):
            WhatsAppInput.from_credentials({**base, "concurrent_turns": bad})


def test_webhook_port_is_a_port_for_the_companion_process_and_turns_leave_their_thread() -> None:
    from rasa.shared.exceptions import RasaException

    from connectors.whatsapp import WhatsAppInput

    base = {"verify_token": VERIFY_TOKEN, "app_secret": APP_SECRET, "access_token": "t",
            "phone_number_id": PNID}
    plain = WhatsAppInput.from_credentials(base).config
    assert (plain.webhook_port, plain.assistant_thread) == (None, True)
    assert WhatsAppInput.from_credentials({**base, "webhook_port": ""}).config.webhook_port is None
    own = WhatsAppInput.from_credentials({**base, "webhook_port": "5006", "webhook_host": "127.0.0.1"}).config
    # Webhooks no longer reach the server's loop: its turns need no thread of their own.
    assert (own.webhook_port, own.webhook_host, own.assistant_thread) == (5006, "127.0.0.1", False)
    forced = WhatsAppInput.from_credentials({**base, "webhook_port": 5006, "assistant_thread": "true"}).config
    assert forced.assistant_thread is True
    for bad in (0, "-1", "http", 65536, "50.6"):
        with pytest.raises(RasaException, match="webhook_port"):
            WhatsAppInput.from_credentials({**base, "webhook_port": bad})
    with pytest.raises(RasaException, match="io_process"):
        WhatsAppInput.from_credentials({**base, "webhook_port": "5006", "io_process": "false"})



async def test_handled_messages_leave_the_inbox_after_the_dedup_window(sqlite_url: str, tmp_path: Path) -> None:
    from datetime import timedelta

    from salon.clock import ManualClock

    clock = ManualClock(NOW)
    message = text_message("33600000001", "Bonjour", TS)
    payload = envelope(messages_change([message], [contact("33600000001")]))
    async with running_channel(settings_for(sqlite_url, tmp_path), clock=clock) as ch:
        service = ch.runtime.service
        assert service is not None
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        clock.advance(timedelta(days=7))
        assert await service.prune() == 0  # Meta may still retry: keep the claim
        assert (await ch.post(payload))[0] == 200
        await ch.settle()
        assert len(ch.received) == 1  # still a duplicate
        clock.advance(timedelta(days=1, seconds=1))
        assert await service.prune() == 1
    assert count(sqlite_url, inbox_table) == 0


async def test_a_message_after_the_window_closed_starts_a_new_assistant_session(sqlite_url: str, tmp_path: Path) -> None:
    client = [contact("33600000001")]
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        for body, ts in (("Bonjour", TS), ("Still there?", TS + 3600), ("Back again", TS + 25 * 3600)):
            assert (await ch.post(envelope(messages_change([text_message("33600000001", body, ts)], client))))[0] == 200
            await ch.settle()
    # The first message opens the first session (Rasa starts it by itself); within the
    # window nothing more; after the window closed the channel asks for a new session first.
    assert [m.text for m in ch.received] == ["Bonjour", "Still there?", "/session_start", "Back again"]
    assert ch.received[2].sender_id == ch.received[3].sender_id == "33600000001"


# --------------------------------------------------------------------------- typed intents (review M7)


def _rasa_reads(text: str) -> tuple[str | None, list[dict]]:  # type: ignore[type-arg]
    """What Rasa's own regex reader makes of a message: (intent, entities) when it reads
    ``/intent{...}``, else (None, [])."""
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.training_data.message import Message

    parsed = YAMLStoryReader.unpack_regex_message(Message({"text": text}))
    intent = (parsed.get("intent") or {}).get("name")
    return intent, list(parsed.get("entities") or [])


async def test_typed_intent_payloads_reach_the_assistant_as_words_only_our_buttons_as_payloads(
        sqlite_url: str, tmp_path: Path) -> None:
    client = "33600000099"
    injected = '/affirm{"appointment_id": "APT-20261127-PAR-02"}'
    typed = [injected, '  / /opt_in', "/restart"]
    messages = [text_message(client, body, TS + i) for i, body in enumerate(typed)]
    messages.append({"id": wamid(), "timestamp": str(TS + 10), "from": client, "type": "image",
                     "image": {"id": "1046573827461", "mime_type": "image/jpeg", "sha256": "abc",
                               "caption": '/share_media{"repair_item": "someone else"}'}})
    messages.append({"id": wamid(), "timestamp": str(TS + 11), "from": client, "type": "interactive",
                     "interactive": {"type": "button_reply", "button_reply": {"id": "/affirm", "title": "Yes"}}})
    messages.append({"id": wamid(), "timestamp": str(TS + 12), "from": client, "type": "button",
                     "button": {"payload": "/book_appointment", "text": "Book a visit"}})
    async with running_channel(settings_for(sqlite_url, tmp_path)) as ch:
        for message in messages:
            assert (await ch.post(envelope(messages_change([message], [contact(client)]))))[0] == 200
            await ch.settle()
    texts = [m.text for m in ch.received]
    assert texts == ['affirm{"appointment_id": "APT-20261127-PAR-02"}', "opt_in", "restart",
                     'share_media{"repair_item": "someone else"}', "/affirm", "/book_appointment"]
    # Rasa reads no intent and no entity from what the client typed; our payloads still work.
    assert [_rasa_reads(text) for text in texts[:4]] == [(None, [])] * 4
    intent, entities = _rasa_reads(injected)  # as typed, Rasa would have set the slot
    assert intent == "affirm" and [(e["entity"], e["value"]) for e in entities] == [
        ("appointment_id", "APT-20261127-PAR-02")]
    assert [_rasa_reads(text)[0] for text in texts[4:]] == ["affirm", "book_appointment"]
