"""The durable queue on SQLite and PostgreSQL: validation, idempotency, claims with
leases, a dead worker's rows coming back, the attempt trace, cancel, metrics; the
appointment reminders scan and the restock trigger; the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import insert, select, update

from salon.access.tokens import TokenBook
from salon.clock import ManualClock
from salon.guard.sent import SentLog
from salon.identity import ClientRef
from salon.integrations.schema import appointments, variant_stock
from salon.outbound.api import create_app
from salon.outbound.queue import (
    CANCELLED,
    QUEUED,
    SENT_FREE_FORM,
    InvalidRequest,
    OutboundQueue,
    origin_of,
    parse_request,
)
from salon.outbound.reminders import AppointmentReminders
from salon.outbound.restock import RestockBook, StockError
from tests.seeding import seed_maison
from tests.whatsapp_support import free_port

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
PNID = "100000000000001"


def spec(key: str, now: datetime = T0, **body: Any) -> Any:
    body.setdefault("client", {"wa_id": "33600000001"})
    body.setdefault("purpose", "order_update")
    body.setdefault("content", {"text": "Your order has left the atelier."})
    return parse_request({**body, "idempotency_key": key}, requested_by="system:test", now=now,
                         default_phone_number_id=PNID)


def test_validation_lists_every_problem() -> None:
    with pytest.raises(InvalidRequest) as bad:
        parse_request({"client": {"wa_id": "abc"}, "purpose": "spam", "content": {"text": "", "buttons": ["x"] * 4},
                       "deadline": "2026-11-25T08:00:00", "extra": 1},
                      requested_by="t", now=T0, default_phone_number_id=PNID)
    problems = " | ".join(bad.value.problems)
    for fragment in ("unknown field(s) ['extra']", "client.wa_id", "purpose: one of", "content.text",
                     "content.buttons", "deadline: '2026-11-25T08:00:00' has no time zone"):
        assert fragment in problems
    with pytest.raises(InvalidRequest, match="nothing to send"):
        parse_request({"client": {"wa_id": "33600000001"}, "purpose": "order_update"},
                      requested_by="t", now=T0, default_phone_number_id=PNID)
    with pytest.raises(InvalidRequest, match="deadline: already passed"):
        spec("k", deadline="2026-11-25T08:00:00+00:00")
    with pytest.raises(InvalidRequest, match="text or media, not both"):
        spec("k", content={"text": "x", "media": {"type": "image", "link": "https://x.example/a.jpg"}})
    ok = spec("k", content={"text": "Shall we hold it?", "buttons": ["Yes please", "Not now"]},
              not_before="2026-11-26T10:00:00+01:00")
    assert ok.not_before == datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert ok.client == ClientRef(PNID, wa_id="33600000001")


async def test_idempotency_claims_leases_and_recovery(database_url: str) -> None:
    queue = OutboundQueue(database_url)
    await queue.initialize()
    try:
        results = await asyncio.gather(*(queue.enqueue(spec("same"), T0) for _ in range(4)))
        assert sum(new for _, new in results) == 1
        later, _ = await queue.enqueue(spec("later", not_before="2026-11-25T10:00:00+00:00"), T0)
        first = results[0][0]

        claimed = await queue.claim("w1", T0, lease=timedelta(seconds=30))
        assert [c.request.id for c in claimed] == [first.id]  # "later" is not due
        assert claimed[0].attempt == 1 and not claimed[0].previous_attempt_unfinished
        assert await queue.claim("w2", T0 + timedelta(seconds=10)) == []  # leased to w1

        # w1 dies: once its lease has run out the request comes back, flagged.
        again = await queue.claim("w2", T0 + timedelta(seconds=31))
        assert [c.request.id for c in again] == [first.id]
        assert again[0].attempt == 2 and again[0].previous_attempt_unfinished
        assert await queue.attempt_trace(first.id, 1) is None
        # A late answer from the dead worker changes nothing.
        assert not await queue.finish(first.id, SENT_FREE_FORM, T0, worker="w1")

        # The guard's record of an attempt is its trace.
        records = SentLog(engine=queue.engine)
        await records.record_outbound(phone_number_id=PNID, recipient="33600000001", kind="free_form",
                                      status="accepted", at=T0, wamid="wamid.A2",
                                      payload={"message": {}, "origin": origin_of(first.id, 2)})
        trace = await queue.attempt_trace(first.id, 2)
        assert trace is not None and trace["wamid"] == "wamid.A2" and trace["kind"] == "free_form"
        # … and so is a status webhook that came back before the send was recorded.
        await records.apply_status(wamid="wamid.B1", status="sent", at=T0, phone_number_id=PNID,
                                   recipient="33600000001", callback=origin_of(later.id, 1) + "#template")
        trace = await queue.attempt_trace(later.id, 1)
        assert trace is not None and trace["wamid"] == "wamid.B1" and trace["kind"] == "template"

        assert await queue.finish(first.id, SENT_FREE_FORM, T0, worker="w2", wamid="wamid.A2")
        shown = await queue.get(first.id)
        assert shown is not None and shown.state == SENT_FREE_FORM and shown.delivery == "accepted"
        assert [e["state"] for e in await queue.events(first.id)] == ["queued", SENT_FREE_FORM]

        assert await queue.cancel(later.id, T0, "changed our mind")
        assert (await queue.get(later.id)).state == CANCELLED  # type: ignore[union-attr]
        metrics = await queue.metrics()
        assert metrics["requests"] == 2 and metrics["states"][CANCELLED] == 1
        assert metrics["delivery"] == {"accepted": 1}
    finally:
        await queue.close()


async def test_concurrent_claims_never_share_a_request(database_url: str) -> None:
    queue = OutboundQueue(database_url)
    await queue.initialize()
    others = [OutboundQueue(database_url) for _ in range(3)]
    try:
        await queue.enqueue_many([spec(f"k{i}") for i in range(120)], T0)
        for other in others:
            await other.initialize()
        batches = await asyncio.gather(*(
            q.claim(f"w{n}", T0, limit=25) for n, q in enumerate(others) for _ in range(2)))
        ids = [c.request.id for batch in batches for c in batch]
        assert len(ids) == len(set(ids)) == 120
    finally:
        for other in others:
            await other.close()
        await queue.close()


@pytest.fixture()
def seeded_url(database_url: str) -> str:
    seed_maison(database_url)
    return database_url


async def test_appointment_reminders_24h_and_2h_idempotently(seeded_url: str) -> None:
    queue = OutboundQueue(seeded_url)
    await queue.initialize()
    try:
        now = datetime(2026, 12, 10, 9, 0, tzinfo=timezone.utc)
        starts = now + timedelta(hours=23)
        async with queue.engine.begin() as conn:
            await conn.execute(insert(appointments).values(
                id="APT-TEST-1", boutique_id="paris", salon_number=3, starts_at=starts,
                ends_at=starts + timedelta(hours=1), service="fitting", client_id="C-001",
                status="booked", created_at=now))
        reminders = AppointmentReminders(queue, queue.engine, PNID)
        assert await reminders.scan(now) == 1  # the 24 h one (its moment has come)
        assert await reminders.scan(now) == 0  # idempotent
        [day_before] = [r for r in await queue.list() if r.idempotency_key.startswith("appt:APT-TEST-1:")]
        assert day_before.purpose == "appointment_reminder" and day_before.deadline == starts
        assert day_before.params["time"] == "9 h" and day_before.params["boutique"] == "Paris"
        assert day_before.params["date"] == "vendredi 11 décembre"  # the maison's French: "le vendredi 11 décembre à 9 h"
        assert "rendez-vous" in day_before.content["text"]  # type: ignore[index]  # Claire reads French
        two_hours = starts - timedelta(hours=2)
        assert await reminders.scan(two_hours - timedelta(minutes=30)) == 1
        [last] = [r for r in await queue.list() if ":2h:" in r.idempotency_key]
        assert last.not_before == two_hours
        # Moved: the queued reminders are cancelled and new ones follow the new time.
        async with queue.engine.begin() as conn:
            await conn.execute(update(appointments).where(appointments.c.id == "APT-TEST-1")
                               .values(starts_at=starts + timedelta(hours=1), ends_at=starts + timedelta(hours=2)))
        await reminders.scan(two_hours - timedelta(minutes=30))
        assert await reminders.scan(starts - timedelta(hours=1)) == 1  # 2 h before the new time
        states = {r.idempotency_key: r.state for r in await queue.list()
                  if r.idempotency_key.startswith("appt:APT-TEST-1:")}
        assert states[last.idempotency_key] == CANCELLED and states[day_before.idempotency_key] == CANCELLED
        assert list(states.values()).count(QUEUED) == 1  # the new 2 h reminder
    finally:
        await queue.close()


async def test_restock_fires_once_when_stock_comes_back(seeded_url: str) -> None:
    book = RestockBook(seeded_url, phone_number_id=PNID)
    await book.initialize()
    try:
        async with book.engine.connect() as conn:
            sku, boutique = (await conn.execute(
                select(variant_stock.c.sku, variant_stock.c.boutique_id).where(variant_stock.c.quantity == 0)
                .order_by(variant_stock.c.sku).limit(1))).one()
        product_id = sku.split("-")[0] + "-" + sku.split("-")[1]
        claire = ClientRef(PNID, wa_id="33600000001")
        waiting, new = await book.add(claire, product_id, T0, boutique_id=boutique)
        assert new and not (await book.add(claire, product_id, T0, boutique_id=boutique))[1]
        assert await book.scan_stock(T0) == 0  # nothing changed yet
        with pytest.raises(StockError):
            await book.set_stock("NO-SUCH-SKU", boutique, 2, T0)
        assert await book.set_stock(sku, boutique, 2, T0) == 1
        assert await book.set_stock(sku, boutique, 3, T0) == 0  # 2 -> 3 is no restock
        assert await book.scan_stock(T0) == 0
        notified = await book.get(waiting.id)
        assert notified is not None and notified.state == "notified" and notified.outbound_id
        alert = await book.queue.get(notified.outbound_id)
        assert alert is not None and alert.purpose == "restock_alert" and alert.state == QUEUED
        assert alert.params["first_name"] == "Claire" and "de nouveau disponible" in alert.content["text"]  # type: ignore[index]
        # A direct write to the stock table (another system) is seen by the next scan.
        await book.add(claire, product_id, T0, boutique_id=boutique)
        async with book.engine.begin() as conn:
            await conn.execute(update(variant_stock).where(variant_stock.c.sku == sku,
                                                           variant_stock.c.boutique_id == boutique).values(quantity=0))
        assert await book.scan_stock(T0) == 0
        async with book.engine.begin() as conn:
            await conn.execute(update(variant_stock).where(variant_stock.c.sku == sku,
                                                           variant_stock.c.boutique_id == boutique).values(quantity=1))
        assert await book.scan_stock(T0) == 1
    finally:
        await book.close()


# --------------------------------------------------------------------------- API

TOKENS = [{"name": "crm", "token": "crm-token-0123456789", "scopes": ["outbound"]},
          {"name": "sophie", "token": "sophie-token-0123456789", "scopes": ["advisor"],
           "advisor_id": "sophie-marchand"}]


async def test_http_api(sqlite_url: str) -> None:
    queue = OutboundQueue(sqlite_url)
    await queue.initialize()
    clock = ManualClock(T0)
    app = create_app(queue, TokenBook.from_config(TOKENS), clock, phone_number_id=PNID)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    good = {"Authorization": "Bearer crm-token-0123456789"}
    body = {"client": {"wa_id": "33600000001"}, "purpose": "order_update",
            "content": {"text": "Your coat has left the atelier."}, "params": {"order_ref": "SOL-104233"},
            "idempotency_key": "api-1"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/outbound", json=body) as r:
                assert r.status == 401
            async with http.post(f"{base}/outbound", json=body, headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401
            async with http.post(f"{base}/outbound", json=body,
                                 headers={"Authorization": "Bearer sophie-token-0123456789"}) as r:
                assert r.status == 403
            async with http.post(f"{base}/outbound", data=b"{not json", headers=good) as r:
                assert r.status == 400 and "not JSON" in (await r.json())["problems"][0]
            async with http.post(f"{base}/outbound", json={**body, "purpose": "spam"}, headers=good) as r:
                assert r.status == 400 and any("purpose" in p for p in (await r.json())["problems"])
            async with http.post(f"{base}/outbound", json=body, headers=good) as r:
                assert r.status == 201
                created = await r.json()
            async with http.post(f"{base}/outbound", json=body, headers=good) as r:
                assert r.status == 200 and (await r.json())["id"] == created["id"]
            assert created["state"] == QUEUED and created["requested_by"] == "system:crm"
            async with http.get(f"{base}/outbound/{created['id']}", headers=good) as r:
                shown = await r.json()
                assert r.status == 200 and shown["events"][0]["state"] == "queued"
            async with http.get(f"{base}/outbound/{'0' * 32}", headers=good) as r:
                assert r.status == 404
            campaign = {"campaign_id": "winter-preview", "purpose": "order_update",
                        "content": {"text": "A private word about your order."},
                        "clients": [{"wa_id": "33600000001", "params": {"order_ref": "SOL-1"}},
                                    {"wa_id": "33600000002"}, {"wa_id": "33600000001"}]}
            async with http.post(f"{base}/outbound/campaigns", json=campaign, headers=good) as r:
                assert r.status == 400 and "listed twice" in " ".join((await r.json())["problems"])
            campaign["clients"] = campaign["clients"][:2]
            async with http.post(f"{base}/outbound/campaigns", json=campaign, headers=good) as r:
                assert r.status == 201 and (await r.json())["created"] == 2
            async with http.post(f"{base}/outbound/campaigns", json=campaign, headers=good) as r:
                assert r.status == 200 and (await r.json())["created"] == 0
            async with http.get(f"{base}/outbound/metrics", headers=good) as r:
                metrics = await r.json()
                assert metrics["requests"] == 3 and metrics["states"]["queued"] == 3
    finally:
        await runner.cleanup()
        await queue.close()


def test_reminder_parameters_in_each_language() -> None:
    from zoneinfo import ZoneInfo

    from salon.outbound.reminders import reminder_params

    milan = datetime(2026, 12, 5, 15, 30, tzinfo=ZoneInfo("Europe/Rome"))
    assert reminder_params("Francesca", "Milan", milan, "it") == {
        "first_name": "Francesca", "boutique": "Milano", "date": "sabato 5 dicembre", "time": "15:30"}
    assert reminder_params("Claire", "London", milan.astimezone(ZoneInfo("Europe/London")), "fr") == {
        "first_name": "Claire", "boutique": "Londres", "date": "samedi 5 décembre", "time": "14 h 30"}
    assert reminder_params("Henry", "London", milan, "en")["date"] == "Saturday 5 December"


@pytest.mark.parametrize("language", ["en", "fr", "it"])
def test_the_free_form_reminder_says_the_template_words(language: str) -> None:
    """Inside the window the reminder goes free-form: the same words as the approved
    ``appointment_reminder`` template, filled with the same parameters."""
    from zoneinfo import ZoneInfo

    from salon.outbound.reminders import _TEXT, reminder_params
    from salon.templates.registry import TemplateChoice, TemplateRegistry

    local = datetime(2026, 12, 5, 15, 30, tzinfo=ZoneInfo("Europe/Paris"))
    params = reminder_params("Claire", "Paris", local, language)
    choice = TemplateRegistry.load_default().build("appointment_reminder", language, params)
    assert isinstance(choice, TemplateChoice), choice
    assert _TEXT[language].format(**params) == choice.rendered["body"]
