"""Campaign budgets against the emulator and real databases: the plan by market and
category before anything is stored, the pause when the next message would go past the
budget (nothing lost, nothing sent twice after the resume), several workers racing on
one budget without ever reserving more than it, and the API and CLI around them."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from salon.clock import ManualClock
from salon.config import Settings
from salon.guard.sent import SentLog, outbound_table
from salon.identity import ClientRef
from salon.integrations.synthetic import add_synthetic_clients
from salon.outbound.budgets import PAUSED, RUNNING, BudgetError, Budgets, parse_amount, parse_budget
from salon.outbound.caps import CapsConfig, MarketingCaps
from salon.outbound.cli import plan_table
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import QUEUED, SENT_TEMPLATE, OutboundQueue, RequestSpec
from salon.outbound.worker import OutboundWorker, WorkerConfig
from salon.pricing.charge import Charge, default_card
from salon.webhook.runtime import open_sender
from tests.outbound_support import (
    API_AUTH,
    PNID,
    GraphStandIn,
    drain,
    emulator_graph,
    outbound_stack,
    running_api,
    worker_through,
)
from tests.seeding import seed_maison

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)  # the 2026-10-01 card: every message billed
CLAIRE, ANTOINE, HELENE, MARGAUX = "33600000001", "33600000002", "33600000003", "33600000004"
INES = "33600000006"
ELEANOR, FRANCESCA, DANIEL = "447700900101", "393470001001", "12125550142"
FRENCH_MARKETING = ["33600000002", "33600000004", "33600000006", "33600000008", "33600000009",
                    "33600000010", "33600000011"]  # marketing opt-ins, never wrote

INVITATION: dict[str, Any] = {
    "purpose": "event_invitation", "content": {"text": "You are invited to our winter salon."},
    "params": {"event_name": "Winter salon", "date": "12 December"},
}


def rate(market: str, category: str) -> int:
    return default_card().rate(market, category, T0)


def campaign(campaign_id: str, wa_ids: list[str], **extra: Any) -> dict[str, Any]:
    return {"campaign_id": campaign_id, **INVITATION, "clients": [{"wa_id": w} for w in wa_ids], **extra}


# --------------------------------------------------------------------------- money


def test_budgets_are_decimal_strings_in_the_card_currency() -> None:
    assert parse_budget({"amount": "250.00", "currency": "USD"}, "USD") == 250_000_000
    assert parse_amount("0.0794", "x") == 79_400
    for bad in ({"amount": 250.0, "currency": "USD"}, {"amount": "250", "currency": "EUR"},
                {"amount": "-1", "currency": "USD"}, {"amount": "0", "currency": "USD"},
                {"amount": "1.0000001", "currency": "USD"}, {"amount": "1e3", "currency": "USD"},
                {"amount": "10", "currency": "USD", "cap": 1}, "250.00"):
        with pytest.raises(BudgetError):
            parse_budget(bad, "USD")
    with pytest.raises(BudgetError) as both:
        parse_budget({"amount": "abc", "currency": "EUR"}, "USD")
    assert len(both.value.problems) == 2  # every problem at once


# --------------------------------------------------------------------------- the plan


async def test_plan_sums_the_routes_by_market_and_category_and_stores_nothing(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})  # her window is open
        # Margaux received a marketing template three hours ago: the maison's gap holds her.
        await SentLog(engine=stack.queue.engine).record_outbound(
            phone_number_id=PNID, recipient=MARGAUX, kind="template", status="delivered",
            at=T0 - timedelta(hours=3), wamid="wamid.EARLIER", purpose="new_collection",
            template="new_collection_preview")
        body = campaign("winter-plan", [CLAIRE, ANTOINE, HELENE, MARGAUX, ELEANOR, FRANCESCA, DANIEL],
                        budget={"amount": "0.30", "currency": "USD"})
        caps = MarketingCaps(stack.queue.engine, CapsConfig())
        async with running_api(stack.queue, clock, planner=stack.parts.sender, caps=caps) as http:
            async with http.post("/outbound/campaigns/plan", json=body, headers=API_AUTH) as r:
                assert r.status == 200, await r.text()
                plan = await r.json()
            async with http.post("/outbound/campaigns/plan", json={**body, "budget": {"amount": 1}},
                                 headers=API_AUTH) as r:
                assert r.status == 400 and "budget.amount" in " ".join((await r.json())["problems"])
            async with http.get("/outbound/campaigns/winter-plan", headers=API_AUTH) as r:
                assert r.status == 404  # a plan stores nothing
        expected = {("FR", "marketing"): 2, ("FR", "service"): 1, ("GB", "marketing"): 1,
                    ("IT", "marketing"): 1, ("NA", "marketing"): 1}
        assert {(line["market"], line["category"]): line["count"] for line in plan["routes"]} == expected
        for line in plan["routes"]:
            assert line["cost"]["micros"] == line["count"] * rate(line["market"], line["category"])
            assert line["cost"]["currency"] == "USD"
        total = sum(n * rate(market, category) for (market, category), n in expected.items())
        assert plan["total"] == {"count": 6, "cost": {"micros": total, "amount": "0.3358", "currency": "USD",
                                                      "text": "$0.3358"}}
        assert plan["clients"] == 7 and plan["card"] == "2026-10-01"
        assert [(x["client"], x["reason"]) for x in plan["refused"]] == [(HELENE, "no_marketing_opt_in")]
        assert plan["held_by_caps"] == [{"client": MARGAUX, "until": (T0 + timedelta(hours=21)).isoformat(),
                                         "rule": "maison_gap"}]
        assert plan["budget"]["micros"] == 300_000 and plan["within_budget"] is False
        # Nothing was queued nor sent.
        assert await stack.queue.list() == [] and await stack.outbox(ANTOINE) == []
        table = plan_table(plan, {"FR": "France", "NA": "North America"})
        assert "FR France" in table and "NA North America" in table and "$0.3358" in table
        assert "OVER IT" in table and HELENE in table and "maison_gap" in table


# --------------------------------------------------------------------------- pause and resume


async def test_the_campaign_pauses_before_its_budget_and_resumes_without_losing_or_doubling(
    settings: Settings,
) -> None:
    clock = ManualClock(T0)
    cost = rate("FR", "marketing")
    async with outbound_stack(settings, clock) as stack:
        async with running_api(stack.queue, clock, planner=stack.parts.sender) as http:
            body = campaign("winter-budget", FRENCH_MARKETING, budget={"amount": "0.25", "currency": "USD"})
            async with http.post("/outbound/campaigns", json=body, headers=API_AUTH) as r:
                assert r.status == 201, await r.text()
                created = await r.json()
            assert created["campaign"]["budget"]["micros"] == 250_000
            assert created["campaign"]["state"] == RUNNING and created["campaign"]["spent"]["micros"] == 0

            # Three invitations fit in $0.25 at $0.0794; the fourth would not.
            await drain(stack)
            sent = [m for m in await stack.delivered() if m["type"] == "template"]
            assert len(sent) == 3 and len({m["to"] for m in sent}) == 3
            async with http.get("/outbound/campaigns/winter-budget", headers=API_AUTH) as r:
                shown = await r.json()
            assert shown["state"] == PAUSED and shown["spent"]["micros"] == 3 * cost
            assert "$0.25" in shown["reason"] and "$0.2382 spent" in shown["reason"]
            assert "$0.0794" in shown["reason"] and "FR marketing" in shown["reason"]
            assert shown["requests"] == {SENT_TEMPLATE: 3, QUEUED: 4}
            waiting = [r for r in await stack.queue.list(campaign_id="winter-budget") if r.state == QUEUED]
            assert all(r.attempts == 0 and r.reason == "campaign_paused" for r in waiting)
            # Paused: nothing is claimed however often the worker looks.
            clock.advance(timedelta(minutes=5))
            assert await stack.worker.run_once() == 0

            async with http.post("/outbound/campaigns/winter-budget/resume",
                                 json={"budget": {"amount": "0.10", "currency": "USD"}}, headers=API_AUTH) as r:
                assert r.status == 400 and "already spent" in " ".join((await r.json())["problems"])
            async with http.post("/outbound/campaigns/nobody/resume", headers=API_AUTH) as r:
                assert r.status == 404
            async with http.post("/outbound/campaigns/winter-budget/resume",
                                 json={"budget": {"amount": "1.00", "currency": "USD"}}, headers=API_AUTH) as r:
                assert r.status == 200
                resumed = await r.json()
            assert resumed["state"] == RUNNING and resumed["reason"] is None
            assert resumed["remaining"]["micros"] == 1_000_000 - 3 * cost
            await drain(stack)
            async with http.get("/outbound/campaigns/winter-budget", headers=API_AUTH) as r:
                final = await r.json()
        # Everyone got exactly one invitation; the estimate is what the guard recorded.
        sent = [m for m in await stack.delivered() if m["type"] == "template"]
        assert Counter(m["to"] for m in sent) == Counter(FRENCH_MARKETING)
        assert final["state"] == RUNNING and final["requests"] == {SENT_TEMPLATE: 7}
        assert final["spent"]["micros"] == 7 * cost
        async with stack.queue.engine.connect() as conn:
            recorded = (await conn.execute(select(func.sum(outbound_table.c.cost_micros)).where(
                outbound_table.c.kind == "template"))).scalar_one()
        assert recorded == final["spent"]["micros"]


async def test_sends_that_leave_nothing_give_their_reservation_back_and_one_in_doubt_keeps_it(
    settings: Settings,
) -> None:
    clock = ManualClock(T0)
    cost = rate("FR", "marketing")
    async with outbound_stack(settings, clock) as stack, GraphStandIn(stack.emulator.base_url) as graph:
        async with worker_through(settings, stack, graph.url, clock, timeout_s=0.5) as worker:
            budgets = Budgets(engine=stack.queue.engine)
            body = campaign("leftovers", [ANTOINE, MARGAUX, INES, HELENE],
                            budget={"amount": "5.00", "currency": "USD"})
            async with running_api(stack.queue, clock) as http:
                async with http.post("/outbound/campaigns", json=body, headers=API_AUTH) as r:
                    assert r.status == 201
            # Of the three invitations that leave: Meta refuses one at once (131026, not
            # retried), accepts one whose answer never comes back (in doubt), takes one.
            # Hélène stopped marketing: the guard refuses hers.
            graph.refuse_next(131026, "template", "Message undeliverable")
            graph.withhold(1)
            assert await worker.run_once() == 4
            await stack.idle()
            await stack.channel.settle()
            states = Counter(r.state for r in await stack.queue.list(campaign_id="leftovers"))
            assert states == {"failed": 1, "refused": 1, SENT_TEMPLATE: 1, QUEUED: 1}
            # The refused and failed ones cost nothing; the one in doubt may have left.
            found = await budgets.get("leftovers")
            assert found is not None and found.spent_micros == 2 * cost
            # Its trace shows Meta took it: adopted, not sent again, not counted twice.
            clock.advance(timedelta(seconds=6))
            assert await worker.run_once() == 1
            await stack.idle()
        states = Counter(r.state for r in await stack.queue.list(campaign_id="leftovers"))
        assert states == {"failed": 1, "refused": 1, SENT_TEMPLATE: 2}
        assert len([m for m in await stack.delivered() if m["type"] == "template"]) == 2
        found = await budgets.get("leftovers")
        assert found is not None and found.spent_micros == 2 * cost


async def test_a_campaign_without_a_budget_counts_what_left(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
        async with running_api(stack.queue, clock) as http:
            body = campaign("open-ended", [CLAIRE, ANTOINE, ELEANOR, HELENE])
            async with http.post("/outbound/campaigns", json=body, headers=API_AUTH) as r:
                assert r.status == 201
                assert (await r.json())["campaign"]["budget"] is None
            await drain(stack)
            async with http.get("/outbound/campaigns/open-ended", headers=API_AUTH) as r:
                shown = await r.json()
        assert shown["state"] == RUNNING and shown["budget"] is None and shown["remaining"] is None
        assert shown["spent"]["micros"] == rate("FR", "service") + rate("FR", "marketing") + rate("GB", "marketing")
        assert shown["requests"] == {"sent_free_form": 1, SENT_TEMPLATE: 2, "refused": 1}


# --------------------------------------------------------------------------- races


async def test_reservations_racing_from_two_pools_never_exceed_the_budget(database_url: str) -> None:
    first, second = Budgets(database_url), Budgets(database_url)
    await first.initialize()
    await second.initialize()
    cost = 79_400
    charge = Charge("marketing", "regular", True, "FR", cost, "USD")
    try:
        async with first.engine.begin() as conn:
            await first.register(conn, "race", "USD", T0, budget_micros=10 * cost + cost // 2)
        answers = await asyncio.gather(*(
            (first if n % 2 else second).reserve("race", f"{n:032x}", 1, charge, T0) for n in range(40)))
        allowed = [a for a in answers if a.allowed]
        assert len(allowed) == 10
        found = await first.get("race")
        assert found is not None and found.state == PAUSED and found.spent_micros == 10 * cost
        assert found.reason is not None and "would cost $0.0794" in found.reason
        # Reserving again for a request that holds a reservation only takes the difference;
        # a paused campaign reserves nothing more.
        held = f"{next(n for n, a in enumerate(answers) if a.allowed):032x}"
        assert not (await first.reserve("race", held, 2, charge, T0)).allowed
        await first.resume("race", T0)
        assert (await second.reserve("race", held, 2, charge, T0)).allowed
        assert (await first.get("race")).spent_micros == 10 * cost  # type: ignore[union-attr]
        # Corrections: one message left nothing, another cost less than quoted.
        assert await second.settle_many([(held, 2, 0), (f"{99:032x}", 1, 0)], T0) == [-cost, None]
        # A late correction of an attempt a later one replaced changes nothing.
        assert await second.settle(held, 1, cost, T0) is None
        assert (await first.get("race")).spent_micros == 9 * cost  # type: ignore[union-attr]
        # An unknown campaign is not counted at all.
        assert (await first.reserve("unknown", "0" * 32, 1, charge, T0)).tracked is False
        assert [c.campaign_id if c else None for c in await first.get_many(["unknown", "race"])] == [None, "race"]
    finally:
        await first.close()
        await second.close()


async def test_two_workers_on_postgresql_share_one_budget_and_never_overspend(
    postgres_url: str, tmp_path: Path,
) -> None:
    seed_maison(postgres_url)
    wa_ids = add_synthetic_clients(postgres_url, 12)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=postgres_url, redis_url=None)
    clock = ManualClock(T0)
    cost = rate("FR", "utility")  # an order update outside the window: a utility template
    pacing = PacingConfig(business_rate=1000, business_burst=1000, quiet=None)
    small = WorkerConfig(lease=timedelta(seconds=5), batch=3)  # several rounds, both workers in each
    async with outbound_stack(settings, clock, pacing=pacing, worker_config=small) as stack:
        other = await open_sender(settings, emulator_graph(stack.emulator), clock, many_clients=True)
        try:
            workers = [stack.worker, OutboundWorker(other.outbound, other.sender, clock, pacing=pacing,
                                                    config=small)]
            budgets = Budgets(engine=stack.queue.engine)
            specs = [RequestSpec(client=ClientRef(PNID, wa_id=w), purpose="order_update",
                                 idempotency_key=f"race:{w}", requested_by="system:test",
                                 content={"text": "Your order has left the atelier."},
                                 params={"order_ref": f"SOL-{n:06d}"}, campaign_id="race")
                     for n, w in enumerate(wa_ids)]

            async def register(conn: Any) -> None:
                await budgets.register(conn, "race", "USD", T0, budget_micros=7 * cost + cost // 3)

            await stack.queue.enqueue_many(specs, T0, within=register)
            await drain(stack, *workers)
            found = await budgets.get("race")
            assert found is not None and found.state == PAUSED and found.spent_micros == 7 * cost
            assert len(await stack.delivered()) == 7
            await budgets.resume("race", clock.now(), budget_micros=12 * cost)
            await drain(stack, *workers)
            found = await budgets.get("race")
            assert found is not None and found.spent_micros == 12 * cost <= found.budget_micros  # type: ignore[operator]
            assert Counter(m["to"] for m in await stack.delivered()) == Counter(wa_ids)
            assert Counter(r.state for r in await stack.queue.list(campaign_id="race")) == {SENT_TEMPLATE: 12}
            assert workers[0].stats["claimed"] and workers[1].stats["claimed"]
        finally:
            await other.close()


# --------------------------------------------------------------------------- the CLI


def test_cli_campaign_and_resume(sqlite_url: str, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from salon.cli import main

    async def prepare() -> None:
        queue = OutboundQueue(sqlite_url)
        await queue.initialize()
        budgets = Budgets(engine=queue.engine)
        try:
            async with queue.engine.begin() as conn:
                await budgets.register(conn, "spring", "USD", T0, budget_micros=100_000)
            await budgets.pause("spring", T0, "budget $0.10 reached")
        finally:
            await queue.close()

    asyncio.run(prepare())
    monkeypatch.delenv("SALON_CLOCK_FILE", raising=False)
    assert main(["outbound", "campaign", "spring", "--database-url", sqlite_url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == PAUSED and shown["reason"] == "budget $0.10 reached"
    assert main(["outbound", "resume", "spring", "--budget", "abc", "--database-url", sqlite_url]) == 2
    assert "--budget" in capsys.readouterr().err
    assert main(["outbound", "resume", "spring", "--budget", "2.50", "--database-url", sqlite_url]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["state"] == RUNNING and resumed["budget"]["micros"] == 2_500_000
    assert main(["outbound", "resume", "autumn", "--database-url", sqlite_url]) == 1
    assert main(["outbound", "campaign", "autumn", "--database-url", sqlite_url]) == 1


def test_cli_plan_prints_the_table(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from salon.cli import main
    from salon.clock import SystemClock

    # Every process of a run reads its "now" from the clock file: T0 here.
    clock_file = tmp_path / "clock.json"
    clock_file.write_text(json.dumps({"offset_seconds": (T0 - SystemClock().now()).total_seconds()}))
    monkeypatch.setenv("SALON_CLOCK_FILE", str(clock_file))
    monkeypatch.setenv("WA_ACCESS_TOKEN", "plan-only-token")
    monkeypatch.setenv("WA_PHONE_NUMBER_ID", PNID)
    body = tmp_path / "winter.json"
    body.write_text(json.dumps(campaign("winter-cli", [ANTOINE, ELEANOR, HELENE])))
    assert main(["outbound", "plan", str(body), "--database-url", settings.database_url]) == 0
    table = capsys.readouterr().out
    assert table.startswith("Campaign winter-cli: 3 client(s), 2 message(s), estimated $0.1323")
    assert "FR France" in table and "GB United Kingdom" in table and "no_marketing_opt_in" in table
    assert main(["outbound", "plan", str(body), "--json", "--database-url", settings.database_url]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["total"]["cost"]["micros"] == rate("FR", "marketing") + rate("GB", "marketing")
    body.write_text(json.dumps({**campaign("bad id!", [ANTOINE])}))
    assert main(["outbound", "plan", str(body), "--database-url", settings.database_url]) == 2
    assert "campaign_id" in capsys.readouterr().err
