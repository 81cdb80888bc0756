"""The outbound worker's ``trigger_intent`` path: the request's purpose and consent are
checked as the send-time guard checks them before Rasa is asked for anything (H4); Rasa
is called with a short-lived JWT in a header, the purpose and origin as parameters, and
nothing secret (the secret, the token, a URL) ever reaches a log line, a stored reason or
an API answer (H5)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web

from salon.access.tokens import TokenBook
from salon.clock import ManualClock
from salon.config import Settings
from salon.dev.stack import free_port
from salon.outbound.api import create_app
from salon.outbound.pacing import PacingConfig
from salon.outbound.queue import FAILED, QUEUED, REFUSED, TRIGGERED, origin_of, parse_request
from salon.outbound.worker import MAX_TRIGGER_ATTEMPTS, OutboundWorker, RasaTrigger
from tests.outbound_support import PNID, Stack, outbound_stack

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"  # in the maison's book: utility and marketing opt-ins
SECRET = "rasa-jwt-secret-for-the-test-0123456789"
TOKENS = [{"name": "crm", "token": "crm-token-0123456789", "scopes": ["outbound"]}]


@dataclass
class RasaStandIn:
    """Rasa's HTTP API as far as the worker uses it."""

    status: int = 200
    calls: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def trigger(self, request: web.Request) -> web.Response:
        self.calls.append({"path": request.path, "query": dict(request.query),
                           "authorization": request.headers.get("Authorization", ""),
                           "body": await request.json()})
        if self.status != 200:
            # A verbose server: its error text quotes the request, as aiohttp's did.
            return web.Response(status=self.status, text=f"boom at {request.url}")
        return web.json_response({"tracker": {}, "messages": []})


@asynccontextmanager
async def rasa_stand_in(status: int = 200) -> AsyncIterator[RasaStandIn]:
    rasa = RasaStandIn(status)
    app = web.Application()
    app.router.add_post("/conversations/{cid}/trigger_intent", rasa.trigger)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rasa.url = f"http://127.0.0.1:{port}"
    try:
        yield rasa
    finally:
        await runner.cleanup()


def trigger_request(now: datetime, key: str, purpose: str, intent: str) -> Any:
    return parse_request({"client": {"wa_id": CLAIRE}, "purpose": purpose, "idempotency_key": key,
                          "trigger_intent": {"name": intent, "entities": {"product": "Aurore tote"}}},
                         requested_by="system:test", now=now, default_phone_number_id=PNID)


def worker_for(stack: Stack, clock: ManualClock, rasa: RasaStandIn) -> OutboundWorker:
    # A roomy client bucket: the retries below come seconds apart on the wall clock.
    pacing = PacingConfig(business_rate=1000, business_burst=1000, client_burst=50, quiet=None)
    return OutboundWorker(stack.queue, stack.parts.sender, clock, pacing=pacing, rasa=RasaTrigger(rasa.url, SECRET))


async def test_trigger_intent_is_checked_for_consent_before_rasa_is_asked(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack, rasa_stand_in() as rasa:
        worker = worker_for(stack, clock, rasa)
        try:
            await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
            # With her marketing opt-in, a marketing turn is asked for, with its purpose
            # and origin, and a signed token in the header.
            before, _ = await stack.queue.enqueue(
                trigger_request(clock.now(), "t-before", "new_collection", "new_collection"), clock.now())
            assert await worker.run_once() == 1
            done = await stack.queue.get(before.id)
            assert done is not None and done.state == TRIGGERED
            [call] = rasa.calls
            assert call["path"] == f"/conversations/{CLAIRE}/trigger_intent"
            assert call["query"] == {"output_channel": "whatsapp", "purpose": "new_collection",
                                     "origin": origin_of(before.id, 1)}
            scheme, _, token = call["authorization"].partition(" ")
            assert scheme == "Bearer" and jwt.decode(token, SECRET, algorithms=["HS256"])["user"]["role"] == "admin"

            # Claire says STOP: nothing the maison starts reaches her through Rasa.
            await stack.say(**{"from": CLAIRE, "text": "STOP", "name": "Claire Laurent"})
            marketing, _ = await stack.queue.enqueue(
                trigger_request(clock.now(), "t-after", "new_collection", "new_collection"), clock.now())
            utility, _ = await stack.queue.enqueue(
                trigger_request(clock.now(), "t-follow", "advisor_followup", "advisor_followup"), clock.now())
            assert await worker.run_once() == 2
            for refused in (marketing, utility):
                now = await stack.queue.get(refused.id)
                assert now is not None and now.state == REFUSED, now
                assert now.reason in ("opted_out", "marketing_stopped", "no_marketing_opt_in", "no_opt_in")
            assert len(rasa.calls) == 1, "Rasa is never asked for a turn the client refused"
        finally:
            assert worker.rasa is not None
            await worker.rasa.close()


async def test_a_failing_rasa_leaks_no_secret_url_or_token(settings: Settings,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack, rasa_stand_in(status=500) as rasa:
        worker = worker_for(stack, clock, rasa)
        api = web.AppRunner(create_app(stack.queue, TokenBook.from_config(TOKENS), clock, phone_number_id=PNID))
        await api.setup()
        port = free_port()
        await web.TCPSite(api, "127.0.0.1", port).start()
        try:
            await stack.say(**{"from": CLAIRE, "text": "Bonjour", "name": "Claire Laurent"})
            stored, _ = await stack.queue.enqueue(
                trigger_request(clock.now(), "t-500", "advisor_followup", "advisor_followup"), clock.now())
            assert await worker.run_once() == 1
            retried = await stack.queue.get(stored.id)
            assert retried is not None and retried.state == QUEUED and retried.reason == "rasa: HTTP 500"
            for _ in range(MAX_TRIGGER_ATTEMPTS - 1):
                clock.advance(timedelta(hours=1))
                assert await worker.run_once() == 1
            final = await stack.queue.get(stored.id)
            assert final is not None and final.state == FAILED and final.reason == "rasa: HTTP 500"
            assert len(rasa.calls) == MAX_TRIGGER_ATTEMPTS
            tokens = {c["authorization"].partition(" ")[2] for c in rasa.calls}

            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/outbound/{stored.id}",
                                    headers={"Authorization": "Bearer crm-token-0123456789"}) as r:
                    assert r.status == 200
                    answer = await r.text()
            events = str(await stack.queue.events(stored.id))
            # Our own logs (the stand-in's access log is Rasa's side, not ours).
            logs = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records
                             if not r.name.startswith("aiohttp."))
            for where, text in (("API answer", answer), ("events", events), ("logs", logs)):
                for secret in (SECRET, *tokens, "token=", "Bearer ", "?output_channel", rasa.url, "trigger_intent?"):
                    assert secret not in text, f"{secret!r} in the {where}"
        finally:
            await api.cleanup()
            assert worker.rasa is not None
            await worker.rasa.close()


def test_the_worker_refuses_an_empty_rasa_secret() -> None:
    with pytest.raises(ValueError, match="SALON_RASA_JWT_SECRET"):
        RasaTrigger("http://127.0.0.1:5005", "")
    assert SECRET not in repr(RasaTrigger("http://127.0.0.1:5005", SECRET))
