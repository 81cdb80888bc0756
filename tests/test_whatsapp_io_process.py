"""The channel's I/O in its companion process: the call protocol between the two
processes, and the whole channel (real Sanic blueprint, real child process, the Cloud
API emulator) with that process killed in the middle of a conversation."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sqlalchemy import create_engine, select

from salon.config import Settings
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.guard.sent import outbound_table
from salon.identity import ClientRef
from salon.storage.db import sync_url
from salon.webhook.companion import IoProcessRuntime
from salon.webhook.inbox import inbox_table
from salon.webhook.rpc import PeerClosed, RemoteError, RpcPeer
from salon.webhook.runtime import ChannelConfigError
from salon.whatsapp.messages import OutgoingMessage
from tests.whatsapp_support import (
    APP_SECRET,
    PNID,
    Channel,
    contact,
    envelope,
    free_port,
    messages_change,
    running_channel,
    text_message,
)

CLAIRE = "33600000001"

# --------------------------------------------------------------------------- the protocol


@asynccontextmanager
async def peers(left: dict[str, Any], right: dict[str, Any]) -> AsyncIterator[tuple[RpcPeer, RpcPeer]]:
    a, b = socket.socketpair()
    one = await RpcPeer.connect(a, left, name="left")
    two = await RpcPeer.connect(b, right, name="right")
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_calls_go_both_ways_and_a_slow_call_does_not_hold_a_quick_one() -> None:
    release = asyncio.Event()
    order: list[str] = []

    async def slow() -> str:
        await release.wait()
        order.append("slow")
        return "slow done"

    async def quick(value: bytes) -> bytes:
        order.append("quick")
        return value[::-1]

    async def echo(*args: Any) -> tuple[Any, ...]:
        return args

    async with peers({"echo": echo}, {"slow": slow, "quick": quick}) as (left, right):
        slow_call = asyncio.ensure_future(left.call("slow"))
        assert await left.call("quick", b"abc") == b"cba"
        assert await right.call("echo", 1, "two", {"three": 3}) == (1, "two", {"three": 3})
        release.set()
        assert await slow_call == "slow done"
    assert order == ["quick", "slow"]


async def test_errors_come_back_typed_and_unknown_methods_are_refused() -> None:
    async def fails() -> None:
        raise KeyError("no such client")

    async with peers({}, {"fails": fails}) as (left, _right):
        with pytest.raises(RemoteError) as caught:
            await left.call("fails")
        assert caught.value.type_name == "KeyError" and "no such client" in str(caught.value)
        with pytest.raises(RemoteError) as unknown:
            await left.call("nothing")
        assert unknown.value.type_name == "LookupError"


async def test_a_closed_peer_fails_pending_and_later_calls() -> None:
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()

    async with peers({}, {"hang": hang}) as (left, right):
        pending = asyncio.ensure_future(left.call("hang"))
        await asyncio.sleep(0.05)
        assert right.transport is not None
        right.transport.close()
        with pytest.raises(PeerClosed):
            await pending
        await asyncio.wait_for(left.closed.wait(), 2)
        with pytest.raises(PeerClosed):
            await left.call("hang")


async def test_a_call_can_time_out_and_its_late_answer_is_dropped() -> None:
    async def late() -> str:
        await asyncio.sleep(0.2)
        return "late"

    async def quick() -> str:
        return "quick"

    async with peers({}, {"late": late, "quick": quick}) as (left, _right):
        with pytest.raises(asyncio.TimeoutError):
            await left.call("late", timeout=0.05)
        await asyncio.sleep(0.3)
        assert await left.call("quick") == "quick"


# --------------------------------------------------------------------------- the channel


@asynccontextmanager
async def wired(settings: Settings, reply: Any,
                options: dict[str, str] | None = None) -> AsyncIterator[tuple[Channel, aiohttp.ClientSession]]:
    config = EmulatorConfig(app_secret=APP_SECRET, status_sent_delay=0.01, status_delivered_delay=0.02,
                            status_read_delay=0.03)
    async with running_emulator(config) as emu:
        async with running_channel(settings, api_base_url=emu.base_url, reply=reply,
                                   access_token=config.access_token, io_process=True,
                                   options=options) as ch:
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={"webhook_url": ch.webhook}) as r:
                    assert r.status == 200, await r.text()
                yield ch, admin


async def wait_until(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        await asyncio.sleep(0.05)


async def outbox(admin: aiohttp.ClientSession, to: str) -> list[dict[str, Any]]:
    async with admin.get("/_emulator/outbox", params={"to": to}) as r:
        return list(await r.json())


async def say(admin: aiohttp.ClientSession, text: str) -> str:
    async with admin.post("/_emulator/inbound", json={"from": CLAIRE, "text": text, "name": "Claire"}) as r:
        assert r.status == 200, await r.text()
        return str((await r.json())["wamid"])


def rows(settings: Settings, table: Any) -> list[Any]:
    engine = create_engine(sync_url(settings.effective_database_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(table)).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("own_port", [False, True], ids=["server-route", "companion-port"])
async def test_a_conversation_runs_through_the_companion_process(settings: Settings, own_port: bool) -> None:
    async def reply(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, {"text": f"Noted: {message.text}"})

    options = {"webhook_port": str(free_port()), "webhook_host": "127.0.0.1"} if own_port else None
    async with wired(settings, reply, options) as (ch, admin):
        runtime = ch.runtime
        assert isinstance(runtime, IoProcessRuntime) and runtime.child_pid not in (None, os.getpid())
        wamid = await say(admin, "Bonjour")

        async def read_reply() -> list[dict[str, Any]]:
            box = await outbox(admin, CLAIRE)
            return box if box and box[-1]["status"] == "read" else []

        box = await wait_until(read_reply)
        assert [m["body"] for m in box] == ["Noted: Bonjour"]
        assert [m.text for m in ch.received] == ["Bonjour"]
        # Turn metadata crossed the process boundary intact.
        assert ch.received[0].metadata["wamid"] == wamid and ch.received[0].input_channel == "whatsapp"

        # The child recorded the inbox row and kept the outbound record in step with
        # the status webhooks the emulator posted to this server.
        async def recorded() -> bool:
            outbound = rows(settings, outbound_table)
            return bool(outbound) and outbound[-1].status == "read"

        await wait_until(recorded)
        assert [(r.wamid, r.state) for r in rows(settings, inbox_table)] == [(wamid, "done")]

        # Senders in the server's process (the advisor API) reach the child's guard, and
        # read the window the child recorded.
        ref = ClientRef(PNID, wa_id=CLAIRE)
        state = await runtime.sessions.get(ref)  # type: ignore[union-attr]
        assert state is not None and state.last_inbound_id == wamid
        outcome = await runtime.sender.send(ref, OutgoingMessage({"type": "text", "text": {"body": "From Sophie."}}))
        assert outcome.action == "free_form" and outcome.wamid

        async def advisor_read() -> list[dict[str, Any]]:
            box = await outbox(admin, CLAIRE)
            return box if len(box) == 2 and box[-1]["status"] == "read" else []

        assert (await wait_until(advisor_read))[-1]["body"] == "From Sophie."

        # Signature and handshake are judged as in one process.
        status, _ = await ch.post({"object": "whatsapp_business_account", "entry": []}, secret="forged")
        assert status == 403
        async with ch.http.get(ch.webhook, params={"hub.mode": "subscribe", "hub.verify_token": "test-verify-token",  # type: ignore[union-attr]
                                                   "hub.challenge": "42"}) as r:
            assert (r.status, await r.text()) == (200, "42")
        if own_port:
            # Meta's traffic went to the companion's port; the server's route still works.
            assert ch.webhook != ch.server_webhook
            assert ch.webhook.startswith(f"http://127.0.0.1:{runtime.config.webhook_port}/")
            async with ch.http.post(ch.server_webhook, data=b"{}", headers={"X-Hub-Signature-256": "sha256=00"}) as r:  # type: ignore[union-attr]
                assert r.status == 403
            async with ch.http.get(ch.webhook.removesuffix("webhook")) as r:  # type: ignore[union-attr]
                assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_duplicates_posted_concurrently_give_one_turn(settings: Settings) -> None:
    async with wired(settings, None) as (ch, _admin):
        message = text_message(CLAIRE, "Once only", 1_764_000_000)
        payload = envelope(messages_change([message], [contact(CLAIRE)]))
        answers = await asyncio.gather(*(ch.post(payload) for _ in range(5)))
        assert [status for status, _ in answers] == [200] * 5

        async def turned() -> bool:
            return len(ch.received) >= 1

        await wait_until(turned)
        await asyncio.sleep(0.3)
        assert [m.text for m in ch.received] == ["Once only"]


async def test_the_companion_port_judges_every_body_as_the_server_route_does(settings: Settings) -> None:
    options = {"webhook_port": str(free_port()), "webhook_host": "127.0.0.1"}
    async with wired(settings, None, options) as (ch, _admin):
        payload = envelope(messages_change([text_message(CLAIRE, "Once only", 1_764_000_000)], [contact(CLAIRE)]))
        assert (await ch.post(payload, signature=None))[0] == 401
        assert (await ch.post(payload, secret="forged"))[0] == 403
        assert (await ch.post(None, raw=b"not json"))[0] == 400
        huge = b'{"object":"whatsapp_business_account","entry":[],"pad":"' + b"x" * (3 * 1024 * 1024) + b'"}'
        assert (await ch.post(None, raw=huge))[0] == 400
        async with ch.http.get(ch.webhook, params={"hub.mode": "subscribe", "hub.verify_token": "wrong",  # type: ignore[union-attr]
                                                   "hub.challenge": "42"}) as r:
            assert r.status == 403
        assert ch.received == []

        # Five concurrent deliveries of one message: one turn.
        answers = await asyncio.gather(*(ch.post(payload) for _ in range(5)))
        assert [status for status, _ in answers] == [200] * 5
        await wait_until(lambda: _true(len(ch.received) >= 1))
        await asyncio.sleep(0.3)
        assert [m.text for m in ch.received] == ["Once only"]


async def test_a_taken_webhook_port_stops_the_channel_at_start(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ChannelConfigError, match=f"webhook_port 127.0.0.1:{port}"):
            async with running_channel(settings, io_process=True,
                                       options={"webhook_port": str(port), "webhook_host": "127.0.0.1"}):
                raise AssertionError("the channel started on a port another socket holds")


async def test_webhooks_to_the_companion_port_wait_out_its_restart(settings: Settings) -> None:
    """The server holds the listening socket: while the companion is started again,
    Meta's connections queue instead of being refused, and are then answered."""
    options = {"webhook_port": str(free_port()), "webhook_host": "127.0.0.1"}
    async with wired(settings, None, options) as (ch, _admin):
        runtime = ch.runtime
        assert isinstance(runtime, IoProcessRuntime)
        first_pid = runtime.child_pid
        os.kill(first_pid or 0, signal.SIGKILL)
        await wait_until(lambda: _true(not runtime.ready))
        payload = envelope(messages_change([text_message(CLAIRE, "Still there?", 1_764_000_000)], [contact(CLAIRE)]))
        status, _ = await ch.post(payload)
        assert status == 200 and runtime.child_pid != first_pid and runtime.restarts == 1
        await wait_until(lambda: _true(len(ch.received) == 1))
        assert [m.text for m in ch.received] == ["Still there?"]


async def test_killed_io_process_answers_503_then_comes_back_and_replays(settings: Settings) -> None:
    killed = asyncio.Event()

    async def reply(message: UserMessage) -> None:
        runtime = ch.runtime
        assert isinstance(runtime, IoProcessRuntime)
        if not killed.is_set():
            # The I/O process dies in the middle of the first turn.
            killed.set()
            os.kill(runtime.child_pid or 0, signal.SIGKILL)
            await asyncio.sleep(0.1)
        await message.output_channel.send_response(message.sender_id, {"text": "Here I am."})

    async with wired(settings, reply) as (ch, admin):
        runtime = ch.runtime
        assert isinstance(runtime, IoProcessRuntime)
        first_pid = runtime.child_pid
        wamid = await say(admin, "Are you there?")
        await wait_until(lambda: _true(killed.is_set()))

        # While it is down, a webhook is refused with 503 (Meta will retry it).
        payload = envelope(messages_change([text_message(CLAIRE, "hello?", 1_764_000_001)], [contact(CLAIRE)]))
        status, _ = await ch.post(payload)
        assert status == 503

        # It is started again, replays the message it had acknowledged but not
        # answered, and this time the reply goes out, once.
        await wait_until(lambda: _true(runtime.ready and runtime.child_pid != first_pid))
        assert runtime.restarts == 1

        async def replied() -> list[dict[str, Any]]:
            box = await outbox(admin, CLAIRE)
            return box if box and box[-1]["status"] == "read" else []

        box = await wait_until(replied)
        assert [m["body"] for m in box] == ["Here I am."]
        assert [m.text for m in ch.received] == ["Are you there?", "Are you there?"]

        async def done() -> bool:
            return [(r.wamid, r.state) for r in rows(settings, inbox_table)] == [(wamid, "done")]

        await wait_until(done)


async def _true(value: bool) -> bool:
    return value
