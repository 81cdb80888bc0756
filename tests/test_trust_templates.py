"""H6: a template's lifecycle (PAUSED, DISABLED, back to APPROVED) is shared by every
process through ``wa_template_state`` and survives a restart.

- A ``message_template_status_update`` webhook handled by the channel (one process) is
  honoured, at most :data:`salon.templates.lifecycle.STATE_TTL` later, by the outbound worker (another
  process: its own registry, same database), and by any registry built after a restart.
- A synchronous 132015 / 132016 from the Graph API marks the template unusable for every
  process, and the same message is decided again (another template, or parked + nudge).
- The reconciliation with ``GET /{waba_id}/message_templates`` (at start, then
  periodically) records what no webhook said, and never overwrites a webhook event more
  recent than the listing.

Everything runs against the Cloud API emulator on the real database (SQLite file and
PostgreSQL); time moves only through the injected clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from salon.clock import Clock, ManualClock
from salon.config import Settings
from salon.emulator.testing import WebhookReceiver
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import NUDGED, PARKED, SENT_TEMPLATE, OutboundRequest, parse_request
from salon.outbound.worker import OutboundWorker, WorkerConfig
from salon.templates.lifecycle import STATE_TTL, TemplateStates
from salon.templates.registry import TemplateRegistry
from salon.templates.sync import GraphTemplatePageFetcher, keep_in_sync
from salon.webhook.runtime import SenderParts, open_sender
from tests.outbound_support import PNID, Stack, emulator_graph, outbound_stack
from tests.seeding import seed_maison
from tests.whatsapp_support import APP_SECRET

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"  # in the maison's book: French, utility opt-in
ORDER_PARAMS = {"order_ref": "SOL-104233", "boutique": "Paris Faubourg"}
FetchPage = Callable[[str | None], Awaitable[Mapping[str, Any]]]


@pytest.fixture(autouse=True)
def no_background_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """``make test`` exports ``WA_WABA_ID``: the channel would then reconcile with the
    emulator in the background, at moments of its own. Here the tests run each
    reconciliation themselves."""
    monkeypatch.delenv("WA_WABA_ID", raising=False)


@pytest.fixture()
def maison(database_url: str, tmp_path: Path) -> Settings:
    """The seeded demo maison on each backend (SQLite file, then PostgreSQL)."""
    seed_maison(database_url)
    return Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)


# --------------------------------------------------------------------------- helpers


def order_request(now: datetime, key: str, purpose: str = "order_update") -> Any:
    return parse_request({"client": {"wa_id": CLAIRE}, "purpose": purpose,
                          "content": {"text": "Your coat has left the atelier."},
                          "params": ORDER_PARAMS, "idempotency_key": key},
                         requested_by="system:test", now=now, default_phone_number_id=PNID)


async def dispatch(stack: Stack, worker: OutboundWorker, spec: Any, clock: Clock) -> OutboundRequest:
    """Enqueue ``spec``, let ``worker`` run until nothing is due; the request as it ended."""
    stored, created = await stack.queue.enqueue(spec, clock.now())
    assert created
    for _ in range(20):
        if await worker.run_once() == 0:
            break
    await stack.idle()
    await stack.channel.settle()
    done = await stack.queue.get(stored.id)
    assert done is not None
    return done


async def set_status(stack: Stack, name: str, status: str, language: str | None = None) -> None:
    """Meta changes a template's status; its webhook goes wherever the emulator points."""
    body = {"status": status, **({"language": language} if language else {})}
    async with stack.admin.post(f"/_emulator/templates/{name}/status", json=body) as r:
        assert r.status == 200, await r.text()
    await stack.idle()
    await stack.channel.settle()


async def set_status_unheard(stack: Stack, name: str, status: str, language: str | None = None) -> None:
    """Meta changes a template's status and its webhook never reaches Salon (it goes to
    another receiver): no process of ours hears of it."""
    async with WebhookReceiver(app_secret=APP_SECRET) as elsewhere:
        await point_webhooks(stack.admin, elsewhere.url)
        try:
            await set_status(stack, name, status, language)
            updates = elsewhere.changes("message_template_status_update")
            assert updates and all(c["value"]["event"] == status for c in updates)
        finally:
            await point_webhooks(stack.admin, stack.channel.webhook)


async def point_webhooks(admin: aiohttp.ClientSession, url: str) -> None:
    async with admin.post("/_emulator/config", json={"webhook_url": url}) as r:
        assert r.status == 200, await r.text()


async def shared_rows(url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """``wa_template_state`` as any process reads it."""
    states = TemplateStates(url)
    try:
        await states.initialize()
        return {(row["name"], row["language"]): row for row in await states.load()}
    finally:
        await states.close()


@asynccontextmanager
async def process_registry(url: str, clock: Clock) -> AsyncIterator[TemplateRegistry]:
    """The registry a process starting now builds: ``templates.yml`` (everything APPROVED)
    with the shared state read over it."""
    states = TemplateStates(url)
    registry = TemplateRegistry.load_default()
    registry.attach(states, clock)
    try:
        await registry.refresh()
        yield registry
    finally:
        await states.close()


def status_of(registry: TemplateRegistry, name: str, language: str) -> str:
    template = registry.get(name, language)
    assert template is not None
    return template.status


@asynccontextmanager
async def worker_process(settings: Settings, stack: Stack, clock: Clock) -> AsyncIterator[tuple[SenderParts, OutboundWorker]]:
    """An outbound worker as ``salon outbound-worker`` builds it after a (re)start: its
    own pool, its own registry loaded from ``templates.yml``."""
    parts = await open_sender(settings, emulator_graph(stack.emulator), clock, many_clients=True)
    worker = OutboundWorker(parts.outbound, parts.sender, clock,
                            pacing=PacingConfig(business_rate=1000, business_burst=1000, quiet=None),
                            config=WorkerConfig(lease=timedelta(seconds=5)))
    try:
        yield parts, worker
    finally:
        await parts.close()


async def templates_sent(stack: Stack) -> list[tuple[str | None, str, int | None]]:
    """(template, status, error code) of every send to Claire, refused ones included."""
    return [(m["template"], m["status"], m["error_code"]) for m in await stack.outbox(CLAIRE)]


async def window_closed(stack: Stack, clock: ManualClock) -> None:
    await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
    clock.advance(timedelta(hours=30))


# --------------------------------------------------------------------------- 1. webhooks reach every process


async def test_a_pause_heard_by_the_channel_is_honoured_by_the_worker_and_after_a_restart(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(maison, clock) as stack:
        channel_registry = stack.channel.runtime.service.registry  # type: ignore[union-attr]
        worker_registry = stack.parts.registry
        assert channel_registry is not worker_registry  # two processes' registries, one database
        await window_closed(stack, clock)

        # The worker has read the shared state already (its copy is fresh) and sends.
        first = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1"), clock)
        assert first.state == SENT_TEMPLATE and first.template == "order_shipped"

        # Meta pauses order_shipped; only the channel's process receives the webhook.
        await set_status(stack, "order_shipped", "PAUSED")
        assert status_of(channel_registry, "order_shipped", "fr") == "PAUSED"

        # Once its copy is STATE_TTL old, the worker decides without it: the other
        # template of the purpose, never a send Meta refuses …
        clock.advance(STATE_TTL)
        second = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-2"), clock)
        assert second.state == SENT_TEMPLATE and second.template == "order_ready_for_collection"
        assert status_of(worker_registry, "order_shipped", "fr") == "PAUSED"

        # … and a purpose the paused template alone carries is parked, with one nudge.
        clock.advance(STATE_TTL)
        parked = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-3", "order_shipped"), clock)
        assert parked.state == NUDGED
        assert await templates_sent(stack) == [
            ("order_shipped", "read", None),
            ("order_ready_for_collection", "read", None),
            ("advisor_update_nudge", "read", None),
        ]  # no send was refused with 132015
        rows = await shared_rows(maison.effective_database_url)
        assert rows[("order_shipped", "fr")]["status"] == rows[("order_shipped", "en")]["status"] == "PAUSED"

        # Restart: a new worker process, its registry loaded from templates.yml (where
        # order_shipped is APPROVED), knows the pause from its first decision.
        async with worker_process(maison, stack, clock) as (parts, restarted):
            assert status_of(parts.registry, "order_shipped", "fr") == "APPROVED"  # before its first read
            again = await dispatch(stack, restarted, order_request(clock.now(), "ship-4"), clock)
            assert again.state == SENT_TEMPLATE and again.template == "order_ready_for_collection"
        assert not [m for m in await stack.outbox(CLAIRE) if m["status"] == "rejected"]

    async with process_registry(maison.effective_database_url, clock) as after_restart:
        assert status_of(after_restart, "order_shipped", "fr") == "PAUSED"
        assert status_of(after_restart, "order_shipped", "en") == "PAUSED"
        assert status_of(after_restart, "order_ready_for_collection", "fr") == "APPROVED"


async def test_an_unpause_heard_by_the_channel_reaches_the_worker(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(maison, clock) as stack:
        await window_closed(stack, clock)
        await set_status(stack, "order_shipped", "PAUSED")
        paused = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1"), clock)
        assert paused.template == "order_ready_for_collection"

        clock.advance(timedelta(hours=3))  # Meta's first pause lasts three hours
        await set_status(stack, "order_shipped", "APPROVED")
        clock.advance(STATE_TTL)
        back = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-2"), clock)
        assert back.state == SENT_TEMPLATE and back.template == "order_shipped"
        assert all(status != "rejected" for _, status, _ in await templates_sent(stack))


# --------------------------------------------------------------------------- 2. 132015 / 132016


async def test_a_synchronous_132015_marks_the_template_for_every_process_and_another_is_sent(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(maison, clock) as stack:
        await window_closed(stack, clock)
        # Meta paused it, and no webhook told any process of ours.
        await set_status_unheard(stack, "order_shipped", "PAUSED", "fr")
        assert ("order_shipped", "fr") not in await shared_rows(maison.effective_database_url)
        channel_registry = stack.channel.runtime.service.registry  # type: ignore[union-attr]
        await channel_registry.refresh()  # the channel's copy, read before the refusal
        assert status_of(channel_registry, "order_shipped", "fr") == "APPROVED"

        done = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1"), clock)
        # Meta refused the paused template; the same message was decided again.
        assert await templates_sent(stack) == [
            ("order_shipped", "rejected", 132015),
            ("order_ready_for_collection", "read", None),
        ]
        assert done.state == SENT_TEMPLATE and done.template == "order_ready_for_collection"
        refused_at = clock.now()

        row = (await shared_rows(maison.effective_database_url))[("order_shipped", "fr")]
        assert row["status"] == "PAUSED"
        assert row["status_us"] == (refused_at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        assert ("order_shipped", "en") not in await shared_rows(maison.effective_database_url)

        # The channel (another process) honours it once its copy is STATE_TTL old …
        clock.advance(STATE_TTL)
        await channel_registry.refresh()
        assert status_of(channel_registry, "order_shipped", "fr") == "PAUSED"
        assert status_of(channel_registry, "order_shipped", "en") == "APPROVED"
        # … the worker never tries it again …
        again = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-2"), clock)
        assert again.template == "order_ready_for_collection"
        assert [s for s in await templates_sent(stack) if s[1] == "rejected"] == [("order_shipped", "rejected", 132015)]

    # … and neither does any process after a restart.
    async with process_registry(maison.effective_database_url, clock) as after_restart:
        assert status_of(after_restart, "order_shipped", "fr") == "PAUSED"


async def test_a_synchronous_132016_marks_the_template_disabled_and_the_message_is_parked(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(maison, clock) as stack:
        await window_closed(stack, clock)
        await set_status_unheard(stack, "order_shipped", "DISABLED")  # every language

        # order_shipped alone carries this purpose: refused in her language, then in the
        # fallback one, the message waits for her and one nudge knocks.
        done = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1", "order_shipped"), clock)
        assert await templates_sent(stack) == [
            ("order_shipped", "rejected", 132016),
            ("order_shipped", "rejected", 132016),
            ("advisor_update_nudge", "read", None),
        ]
        assert [m["language"] for m in await stack.outbox(CLAIRE)][:2] == ["fr", "en"]
        assert done.state == NUDGED
        rows = await shared_rows(maison.effective_database_url)
        assert rows[("order_shipped", "fr")]["status"] == rows[("order_shipped", "en")]["status"] == "DISABLED"

    async with process_registry(maison.effective_database_url, clock) as other:
        assert status_of(other, "order_shipped", "fr") == "DISABLED"
        assert status_of(other, "advisor_update_nudge", "fr") == "APPROVED"


async def test_a_nudge_template_refused_with_132015_is_marked_and_the_message_stays_parked(maison: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(maison, clock) as stack:
        await window_closed(stack, clock)
        await set_status_unheard(stack, "order_shipped", "PAUSED")
        await set_status_unheard(stack, "advisor_update_nudge", "PAUSED")

        done = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1", "order_shipped"), clock)
        # Each template Meta refuses is marked and the next one tried (her language,
        # then the fallback); no nudge template is left, so the message waits without one.
        assert await templates_sent(stack) == [
            ("order_shipped", "rejected", 132015),
            ("order_shipped", "rejected", 132015),
            ("advisor_update_nudge", "rejected", 132015),
            ("advisor_update_nudge", "rejected", 132015),
        ]
        assert done.state == PARKED
        rows = await shared_rows(maison.effective_database_url)
        assert {key: rows[key]["status"] for key in rows} == {
            ("order_shipped", "fr"): "PAUSED", ("order_shipped", "en"): "PAUSED",
            ("advisor_update_nudge", "fr"): "PAUSED", ("advisor_update_nudge", "en"): "PAUSED"}

        # The next message for her is parked without any send Meta would refuse.
        clock.advance(STATE_TTL)
        second = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-2", "order_shipped"), clock)
        assert second.state == PARKED
        assert len(await stack.outbox(CLAIRE)) == 4


# --------------------------------------------------------------------------- 3. reconciliation


def one_turn(fetch: FetchPage, stop: asyncio.Event, *, before: Callable[[], Awaitable[None]] | None = None,
             after: Callable[[], Awaitable[None]] | None = None) -> FetchPage:
    """``fetch`` for one turn of :func:`keep_in_sync`: asks it to stop after this
    reconciliation; ``before`` / ``after`` run around the first page's request (what Meta
    does meanwhile)."""
    calls = 0

    async def page(after_cursor: str | None) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        stop.set()
        if calls == 1 and before is not None:
            await before()
        listing = await fetch(after_cursor)
        if calls == 1 and after is not None:
            await after()
        return listing

    return page


async def reconcile(registry: TemplateRegistry, fetcher: GraphTemplatePageFetcher, **around: Any) -> None:
    """One reconciliation as a process runs it at start (and then every SYNC_EVERY)."""
    stop = asyncio.Event()
    await keep_in_sync(registry, one_turn(fetcher, stop, **around), stop, every=timedelta(0))


@asynccontextmanager
async def listing(stack: Stack, limit: int) -> AsyncIterator[GraphTemplatePageFetcher]:
    """``GET /{waba_id}/message_templates`` on the emulator, as the worker and the channel
    call it, ``limit`` templates a page."""
    config = stack.emulator.config
    async with GraphTemplatePageFetcher(config.waba_id, config.access_token,
                                        base_url=stack.emulator.base_url, limit=limit) as fetcher:
        yield fetcher


async def test_sync_at_start_and_periodically_records_what_no_webhook_said(maison: Settings) -> None:
    clock = ManualClock(T0)
    url = maison.effective_database_url
    async with outbound_stack(maison, clock) as stack, listing(stack, limit=3) as fetcher:
        channel_registry = stack.channel.runtime.service.registry  # type: ignore[union-attr]
        await window_closed(stack, clock)
        first = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-1"), clock)
        assert first.template == "order_shipped"  # the worker's copy is read

        # Meta pauses (every language) and disables templates; no webhook reaches any
        # process of ours.
        await set_status_unheard(stack, "order_shipped", "PAUSED")
        await set_status_unheard(stack, "restock_alert", "DISABLED", "en")

        # The channel's reconciliation at its start (several pages: limit=3).
        await reconcile(channel_registry, fetcher)
        assert status_of(channel_registry, "order_shipped", "fr") == "PAUSED"
        rows = await shared_rows(url)
        assert {(k, r["status"]) for k, r in rows.items() if r["status"] != "APPROVED"} == {
            (("order_shipped", "fr"), "PAUSED"), (("order_shipped", "en"), "PAUSED"),
            (("order_shipped", "it"), "PAUSED"), (("restock_alert", "en"), "DISABLED")}
        async with process_registry(url, clock) as other:
            assert status_of(other, "order_shipped", "fr") == "PAUSED"
            assert status_of(other, "restock_alert", "en") == "DISABLED"
            assert status_of(other, "restock_alert", "fr") == "APPROVED"

        # The worker (another process) honours it once its copy is STATE_TTL old.
        clock.advance(STATE_TTL)
        second = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-2"), clock)
        assert second.template == "order_ready_for_collection"

        # Later, Meta lifts the pause and that webhook is lost too: the worker's next
        # periodic reconciliation (more recent than the pause recorded) brings it back.
        clock.advance(timedelta(hours=3))
        await set_status_unheard(stack, "order_shipped", "APPROVED")
        await reconcile(stack.parts.registry, fetcher)
        assert (await shared_rows(url))[("order_shipped", "fr")]["status"] == "APPROVED"
        clock.advance(STATE_TTL)
        await channel_registry.refresh()
        assert status_of(channel_registry, "order_shipped", "fr") == "APPROVED"
        back = await dispatch(stack, stack.worker, order_request(clock.now(), "ship-3"), clock)
        assert back.template == "order_shipped"
        assert all(status != "rejected" for _, status, _ in await templates_sent(stack))


@pytest.mark.parametrize(("listed_after", "webhook_after"), [
    (timedelta(0), timedelta(0)),
    (timedelta(0), timedelta(seconds=1)),
    # Meta stamps webhooks to the second: a pause 0.3 s after a listing asked for at
    # x.4 s is stamped x, before the listing by our clock, yet it came after it.
    (timedelta(milliseconds=400), timedelta(milliseconds=300)),
], ids=["same_second", "a_second_later", "later_within_the_second"])
async def test_sync_never_overwrites_a_webhook_more_recent_than_its_listing(
    maison: Settings, listed_after: timedelta, webhook_after: timedelta
) -> None:
    clock = ManualClock(T0)
    url = maison.effective_database_url
    # One page: Meta answers the whole listing before it pauses the template again.
    async with outbound_stack(maison, clock) as stack, listing(stack, limit=100) as fetcher:
        # order_shipped was paused (heard), then lifted (that webhook lost).
        await set_status(stack, "order_shipped", "PAUSED", "fr")
        clock.advance(timedelta(hours=3))
        await set_status_unheard(stack, "order_shipped", "APPROVED", "fr")
        clock.advance(timedelta(minutes=10) + listed_after)
        paused_at = (clock.now() + webhook_after).replace(microsecond=0)  # as Meta stamps it

        async def paused_again_meanwhile() -> None:
            # Meta answered the listing (APPROVED), then paused it again; the channel
            # heard that webhook before the reconciliation wrote what it had listed.
            clock.advance(webhook_after)
            await set_status(stack, "order_shipped", "PAUSED", "fr")

        syncing = stack.parts.registry
        await reconcile(syncing, fetcher, after=paused_again_meanwhile)
        row = (await shared_rows(url))[("order_shipped", "fr")]
        assert row["status"] == "PAUSED"
        assert row["status_us"] == (paused_at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
        assert status_of(syncing, "order_shipped", "fr") == "PAUSED"
        async with process_registry(url, clock) as other:
            assert status_of(other, "order_shipped", "fr") == "PAUSED"

        # The next reconciliation lists PAUSED too; nothing moves.
        clock.advance(timedelta(minutes=15))
        await reconcile(syncing, fetcher)
        assert (await shared_rows(url))[("order_shipped", "fr")]["status"] == "PAUSED"
