"""The emulator on loopback: Graph API, admin API and signed webhooks to a receiver."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest

from salon.clock import ManualClock, OffsetFileClock
from salon.emulator.testing import WebhookReceiver
from salon.templates.registry import TemplateRegistry
from salon.templates.sync import GraphTemplatePageFetcher
from salon.whatsapp.errors import (
    MarketingOptOutError,
    PaginationCursorError,
    WindowClosedError,
    errors_from_webhook,
)
from tests.emulator.emulator_support import CLAIRE, HUGO, Api, StartApi, nudge_request

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def reminder(
    to: str = CLAIRE, name: str = "appointment_reminder", language: str = "en"
) -> dict[str, Any]:
    params = {"first_name": "Claire", "boutique": "Paris", "date": "12 March", "time": "15:00"}
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": k, "text": v} for k, v in params.items()
                    ],
                },
            ],
        },
    }


def event_invitation(to: str = CLAIRE) -> dict[str, Any]:
    params = {"first_name": "Claire", "event_name": "the Spring soirée", "date": "12 March"}
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": "event_invitation",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": k, "text": v} for k, v in params.items()
                    ],
                },
            ],
        },
    }


def buttons_message(to: str = CLAIRE) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "May we hold the bag for you?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "HOLD_YES", "title": "Yes, please"}},
                    {"type": "reply", "reply": {"id": "HOLD_NO", "title": "Not now"}},
                ]
            },
        },
    }


# --------------------------------------------------------------------------- happy path


async def test_inbound_webhook_then_free_form_reply_gets_sent_delivered_read(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    # before 2026-10-01 a service reply inside the window is free (test_emulator_2026 has after)
    async with start_api(clock=ManualClock(T0)) as api:
        await _free_form_reply_gets_sent_delivered_read(api, receiver)


async def _free_form_reply_gets_sent_delivered_read(api: Api, receiver: WebhookReceiver) -> None:
    sent = await api.inbound(
        **{"from": "+" + CLAIRE, "text": "Bonjour, la robe ✨ ?", "name": "Claire"}
    )
    assert sent["wamid"].startswith("wamid.")
    await receiver.wait_for(lambda r: r.messages())
    post = receiver.posts[0]
    assert post.signature_valid and post.content_type == "application/json"
    assert b"\\u2728" in post.body and "✨".encode() not in post.body  # escaped as Meta does
    value = post.changes()[0]["value"]
    assert post.changes()[0]["field"] == "messages"
    assert value["metadata"] == {
        "display_phone_number": "33100000000",
        "phone_number_id": "100000000000001",
    }
    assert value["contacts"] == [{"profile": {"name": "Claire"}, "wa_id": CLAIRE}]
    message = value["messages"][0]
    assert message["from"] == CLAIRE and message["id"] == sent["wamid"]
    assert message["text"] == {"body": "Bonjour, la robe ✨ ?"}
    assert message["timestamp"] == sent["timestamp"]
    clock = (await api.admin("GET", "clock"))[1]
    assert abs(int(message["timestamp"]) - datetime.fromisoformat(clock["now"]).timestamp()) < 5

    status, body = await api.text("+" + CLAIRE, "Bonjour Claire, certainly.")
    assert status == 200, body
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+" + CLAIRE, "wa_id": CLAIRE}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")

    await receiver.wait_for(lambda r: r.statuses(wamid, "read"))
    statuses = receiver.statuses(wamid)
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    service = {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "service",
    }
    assert statuses[0]["pricing"] == service and statuses[1]["pricing"] == service
    assert "pricing" not in statuses[2]
    assert all("conversation" not in s and s["recipient_id"] == CLAIRE for s in statuses)
    assert all(isinstance(s["timestamp"], str) for s in statuses)
    assert all(p.signature_valid for p in receiver.posts)

    outbox = await api.outbox(CLAIRE)
    assert len(outbox) == 1 and outbox[0]["wamid"] == wamid
    assert outbox[0]["status"] == "read" and outbox[0]["body"] == "Bonjour Claire, certainly."
    assert outbox[0]["type"] == "text" and outbox[0]["template"] is None


async def test_free_form_after_25_hours_is_accepted_then_fails_131047(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    await api.advance(25 * 3600)
    status, body = await api.text(CLAIRE, "Are you still there?")
    assert status == 200, body  # accepted synchronously, as Meta does
    wamid = body["messages"][0]["id"]
    failed = await receiver.wait_for(lambda r: r.statuses(wamid, "failed"))
    error = failed[0]["errors"][0]
    assert error["code"] == 131047 and error["title"] == "Re-engagement message"
    assert "24 hours" in error["error_data"]["details"] and error["href"].startswith("https://")
    assert "pricing" not in failed[0]
    await api.idle()
    assert not receiver.statuses(wamid, "sent")
    parsed = [err for post in receiver.accepted() for _, err in errors_from_webhook(post.payload)]
    assert len(parsed) == 1 and isinstance(parsed[0], WindowClosedError)
    box = await api.outbox(CLAIRE)
    assert box[0]["status"] == "failed" and box[0]["error_code"] == 131047


async def test_template_after_25_hours_is_delivered_and_billed(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    # before 2026-10-01 a utility template inside the window is free
    async with start_api(clock=ManualClock(T0)) as api:
        await _template_after_25_hours(api, receiver)


async def _template_after_25_hours(api: Api, receiver: WebhookReceiver) -> None:
    await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    status, body = await api.send(reminder())
    assert status == 200, body
    assert body["messages"][0]["message_status"] == "accepted"
    inside = body["messages"][0]["id"]
    await api.advance(25 * 3600)
    status, body = await api.send(reminder())
    assert status == 200, body
    outside = body["messages"][0]["id"]
    await receiver.wait_for(
        lambda r: r.statuses(outside, "delivered") and r.statuses(inside, "delivered")
    )
    assert receiver.statuses(inside, "sent")[0]["pricing"] == {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "utility",
    }
    assert receiver.statuses(outside, "sent")[0]["pricing"] == {
        "billable": True,
        "pricing_model": "PMP",
        "type": "regular",
        "category": "utility",
    }
    assert not receiver.statuses(outside, "failed")
    box = await api.outbox(CLAIRE)
    assert box[1]["template"] == "appointment_reminder" and box[1]["language"] == "en"
    assert box[1]["body"].startswith("Claire, a gentle reminder of your appointment at our Paris")
    assert box[1]["buttons"] == ["Confirm", "Change the time"]


async def test_window_boundary_is_exact_at_24_hours(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T0)) as api:
        await api.inbound(**{"from": CLAIRE, "text": "Hello"})
        status, _ = await api.admin(
            "POST", "clock", {"set": (T0 + timedelta(hours=24, seconds=-1)).isoformat()}
        )
        assert status == 200
        _, body = await api.text(CLAIRE, "just in time")
        just_in = body["messages"][0]["id"]
        await api.advance(1)
        _, body = await api.text(CLAIRE, "too late")
        too_late = body["messages"][0]["id"]
        await receiver.wait_for(
            lambda r: r.statuses(just_in, "delivered") and r.statuses(too_late, "failed")
        )
        assert not receiver.statuses(just_in, "failed") and not receiver.statuses(too_late, "sent")
        _, conversations = await api.admin("GET", "conversations")
        assert conversations[0]["window"] == {
            "open": False,
            "closes_at": (T0 + timedelta(hours=24)).isoformat(),
        }


async def test_a_client_who_never_wrote_gets_templates_only(
    api: Api, receiver: WebhookReceiver
) -> None:
    _, text = await api.text(HUGO, "Hello")
    _, template = await api.send(reminder(HUGO))
    text_id, template_id = text["messages"][0]["id"], template["messages"][0]["id"]
    await receiver.wait_for(
        lambda r: r.statuses(text_id, "failed") and r.statuses(template_id, "delivered")
    )


# --------------------------------------------------------------------------- errors


async def test_wrong_or_missing_token_is_401_oauth_190(api: Api) -> None:
    for token in ("wrong-token", None):
        status, body = await api.send(reminder(), token=token)
        assert status == 401
        error = body["error"]
        assert error["code"] == 190 and error["type"] == "OAuthException"
        assert error["message"].startswith("(#190) ")
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    async with api.session.get(
        f"{api.emu.graph_url}/{api.emu.config.waba_id}/message_templates",
        headers={"Authorization": "Bearer nope"},
    ) as resp:
        assert resp.status == 401


async def test_unknown_phone_number_id_is_100(api: Api) -> None:
    status, body = await api.send(
        {"messaging_product": "whatsapp", "to": CLAIRE, "type": "text", "text": {"body": "x"}},
        phone_number_id="999",
    )
    assert status == 400 and body["error"]["code"] == 100


async def test_template_errors(api: Api, receiver: WebhookReceiver) -> None:
    status, body = await api.send(reminder(name="no_such_template"))
    assert status == 404 and body["error"]["code"] == 132001
    status, body = await api.send(reminder(language="de"))
    assert status == 404 and body["error"]["code"] == 132001
    short = reminder()
    short["template"]["components"][0]["parameters"].pop()
    status, body = await api.send(short)
    assert status == 400 and body["error"]["code"] == 132000

    status, result = await api.admin(
        "POST", "templates/appointment_reminder/status", {"status": "PAUSED", "language": "en"}
    )
    assert status == 200 and result["templates"][0]["status"] == "PAUSED"
    status, body = await api.send(reminder())
    assert status == 400 and body["error"]["code"] == 132015
    assert body["error"]["message"] == "(#132015) Template is Paused"
    update = await receiver.wait_for(lambda r: r.changes("message_template_status_update"))
    value = update[0]["value"]
    assert value["event"] == "PAUSED" and value["message_template_name"] == "appointment_reminder"
    assert (
        value["message_template_language"] == "en"
        and value["message_template_category"] == "UTILITY"
    )
    assert isinstance(value["message_template_id"], int)
    entry = receiver.accepted()[-1].payload["entry"][0]
    assert isinstance(entry["time"], int)
    # other languages of the same template are not paused
    status, _ = await api.send(reminder(language="fr"))
    assert status == 200
    await api.admin("POST", "templates/appointment_reminder/status", {"status": "DISABLED"})
    status, body = await api.send(reminder())
    assert status == 400 and body["error"]["code"] == 132016
    status, body = await api.send(reminder(language="fr"))
    assert status == 400 and body["error"]["code"] == 132016  # no language given: all of them

    box = await api.outbox(CLAIRE)
    assert [m["error_code"] for m in box] == [132001, 132001, 132000, 132015, None, 132016, 132016]
    assert [m["status"] == "rejected" for m in box] == [True] * 4 + [False] + [True] * 2
    assert box[0]["template"] == "no_such_template" and box[0]["wamid"] is None
    assert box[3]["category"] == "utility"


async def test_message_validation_errors_are_synchronous_and_recorded(api: Api) -> None:
    await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    status, body = await api.text(CLAIRE, "x" * 4097)
    assert status == 400 and body["error"]["code"] == 100
    assert "4096" in body["error"]["error_data"]["details"]
    too_many = buttons_message()
    too_many["interactive"]["action"]["buttons"] += [
        {"type": "reply", "reply": {"id": f"B{i}", "title": f"Option {i}"}} for i in range(2)
    ]
    status, body = await api.send(too_many)
    assert status == 400 and body["error"]["code"] == 131009
    assert "Max allowed buttons: 3" in body["error"]["error_data"]["details"]
    long_title = buttons_message()
    long_title["interactive"]["action"]["buttons"][0]["reply"]["title"] = "A title far too long!"
    status, body = await api.send(long_title)
    assert status == 400 and "Max length: 20" in body["error"]["error_data"]["details"]
    box = await api.outbox(CLAIRE)
    assert [(m["status"], m["error_code"]) for m in box] == [
        ("rejected", 100),
        ("rejected", 131009),
        ("rejected", 131009),
    ]


async def test_pair_rate_limit_is_131056_until_the_bucket_refills(start_api: StartApi) -> None:
    async with start_api(pair_rate_burst=3) as api:
        await api.inbound(**{"from": CLAIRE, "text": "Hello"})
        for _ in range(3):
            assert (await api.text(CLAIRE, "bubble"))[0] == 200
        status, body = await api.text(CLAIRE, "one more")
        assert status == 400 and body["error"]["code"] == 131056
        assert (await api.text(HUGO, "other clients are not affected"))[0] == 200
        await api.advance(6)
        assert (await api.text(CLAIRE, "after 6 s"))[0] == 200


async def test_throughput_limit_is_130429_shaped_like_meta(start_api: StartApi) -> None:
    async with start_api(clock=ManualClock(T0), throughput_per_second=2) as api:
        assert (await api.send(reminder(CLAIRE)))[0] == 200
        assert (await api.send(reminder(HUGO)))[0] == 200
        status, body = await api.send(reminder("33600000003"))
        assert status == 400
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "code", "error_data", "fbtrace_id"}
        assert body["error"]["message"] == "(#130429) Rate limit hit"
        assert body["error"]["error_data"] == {
            "messaging_product": "whatsapp",
            "details": "Cloud API message throughput has been reached.",
        }


# --------------------------------------------------------------------------- delivery


async def test_webhooks_are_retried_with_backoff_until_200(
    api: Api, receiver: WebhookReceiver
) -> None:
    receiver.responses = [500, 503]
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    await receiver.wait_for(lambda r: r.messages())
    assert [p.answered for p in receiver.posts] == [500, 503, 200]
    assert len({p.body for p in receiver.posts}) == 1
    assert all(p.signature_valid for p in receiver.posts)
    await api.idle()
    _, log = await api.admin("GET", "webhooks")
    assert len(log) == 1
    delivery = log[0]
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 503, 200]
    assert (
        delivery["payload"]["entry"][0]["changes"][0]["value"]["messages"][0]["id"] == sent["wamid"]
    )
    started = [datetime.fromisoformat(a["at"]) for a in delivery["attempts"]]
    assert started == sorted(started)


async def test_gives_up_after_the_last_attempt_and_the_queue_moves_on(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(webhook_attempts=2) as api:
        receiver.responses = [500, 500]
        await api.inbound(**{"from": CLAIRE, "text": "lost"})
        await api.inbound(**{"from": CLAIRE, "text": "next"})
        await receiver.wait_for(lambda r: r.messages())
        await api.idle()
        _, log = await api.admin("GET", "webhooks")
        assert [d["state"] for d in log] == ["failed", "delivered"]
        assert [m["text"]["body"] for m in receiver.messages()] == ["next"]
        _, failed = await api.admin("GET", "webhooks", params={"state": "failed"})
        assert len(failed) == 1 and len(failed[0]["attempts"]) == 2


async def test_unreachable_webhook_never_blocks_the_graph_api(start_api: StartApi) -> None:
    async with start_api(webhook_url="http://127.0.0.1:9/unreachable", webhook_attempts=3) as api:
        await api.inbound(**{"from": CLAIRE, "text": "Hello"})
        started = time.perf_counter()
        status, _ = await api.text(CLAIRE, "reply")
        assert status == 200 and time.perf_counter() - started < 0.5
        await api.idle()
        _, log = await api.admin("GET", "webhooks")
        assert log and all(d["state"] == "failed" and d["attempts"][0]["error"] for d in log)


async def test_slow_bot_does_not_delay_the_send_response(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    receiver.delay = 1.0
    async with start_api() as api:
        await api.inbound(**{"from": CLAIRE, "text": "Hello"})
        started = time.perf_counter()
        status, _ = await api.send(reminder())
        assert status == 200 and time.perf_counter() - started < 0.6


async def test_duplicate_delivery_sends_identical_bodies(
    api: Api, receiver: WebhookReceiver
) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello", "duplicate": 2})
    await receiver.wait_for(lambda r: len(r.messages()) == 3)
    assert len({p.body for p in receiver.posts}) == 1
    assert {m["id"] for m in receiver.messages()} == {sent["wamid"]}
    await api.idle()
    _, log = await api.admin("GET", "webhooks")
    assert [d["duplicate_of"] for d in log] == [None, log[0]["id"], log[0]["id"]]


async def test_inbound_without_delivery_returns_the_webhook_and_opens_the_window(
    api: Api, receiver: WebhookReceiver
) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello", "deliver": False})
    body = sent["webhook"]
    assert body["object"] == "whatsapp_business_account"
    [message] = body["entry"][0]["changes"][0]["value"]["messages"]
    assert message["id"] == sent["wamid"] and message["text"]["body"] == "Hello"
    await api.idle()
    assert receiver.posts == []  # nothing was delivered
    status, reply = await api.text(CLAIRE, "reply inside the window")
    assert status == 200
    wamid = reply["messages"][0]["id"]
    await receiver.wait_for(lambda r: r.statuses(wamid, "delivered"))
    assert receiver.statuses(wamid, "failed") == []  # the window was open


async def test_order_is_kept_per_client_while_other_clients_are_not_blocked(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(webhook_retry_base_delay=0.3) as api:
        receiver.responses = [500]
        await api.inbound(**{"from": CLAIRE, "text": "A1"})
        await receiver.wait_for(lambda r: r.posts)
        await api.inbound(**{"from": CLAIRE, "text": "A2"})
        await api.inbound(**{"from": HUGO, "text": "B1"})
        await receiver.wait_for(lambda r: len(r.messages()) == 3)
        assert [m["text"]["body"] for m in receiver.messages()] == ["B1", "A1", "A2"]


async def test_batching_puts_several_events_in_one_signed_post(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(batching=True, batch_window=0.2) as api:
        await api.inbound(**{"from": CLAIRE, "text": "one"})
        await api.inbound(**{"from": HUGO, "text": "two"})
        await api.inbound(**{"from": CLAIRE, "text": "three"})
        await receiver.wait_for(lambda r: len(r.messages()) == 3)
        assert len(receiver.posts) == 1 and receiver.posts[0].signature_valid
        value = receiver.posts[0].changes()[0]["value"]
        assert [m["text"]["body"] for m in value["messages"]] == ["one", "two", "three"]
        assert [c["wa_id"] for c in value["contacts"]] == [CLAIRE, HUGO]
        _, a = await api.text(CLAIRE, "r1")
        _, b = await api.text(HUGO, "r2")
        ids = {a["messages"][0]["id"], b["messages"][0]["id"]}
        await receiver.wait_for(lambda r: {s["id"] for s in r.statuses(status="read")} == ids)
        assert any(len(p.statuses()) >= 2 for p in receiver.posts[1:])


# --------------------------------------------------------------------------- identities, taps


async def test_bsuid_only_client(api: Api, receiver: WebhookReceiver) -> None:
    bsuid = "FR.40213376198812340001"
    await api.inbound(user_id=bsuid, text="Bonjour", name="Inès", bsuid_only=True)
    message = (await receiver.wait_for(lambda r: r.messages()))[0]
    contact = receiver.posts[0].changes()[0]["value"]["contacts"][0]
    assert "from" not in message and message["from_user_id"] == bsuid
    assert contact == {"profile": {"name": "Inès"}, "user_id": bsuid}
    status, body = await api.send(
        {
            "messaging_product": "whatsapp",
            "recipient": bsuid,
            "type": "text",
            "text": {"body": "Bonjour Inès"},
        }
    )
    assert status == 200, body
    assert body["contacts"] == [{"input": bsuid, "user_id": bsuid}]
    wamid = body["messages"][0]["id"]
    statuses = await receiver.wait_for(lambda r: r.statuses(wamid, "delivered"))
    assert statuses[0]["recipient_user_id"] == bsuid and "recipient_id" not in statuses[0]
    assert len(await api.outbox(bsuid)) == 1


async def test_a_client_known_by_phone_and_bsuid_shares_one_window(
    api: Api, receiver: WebhookReceiver
) -> None:
    bsuid = "FR.40213376198812340002"
    await api.inbound(**{"from": CLAIRE, "user_id": bsuid, "text": "Hello"})
    _, body = await api.send(
        {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "recipient": bsuid,
            "type": "text",
            "text": {"body": "by BSUID"},
        }
    )
    wamid = body["messages"][0]["id"]
    statuses = await receiver.wait_for(lambda r: r.statuses(wamid, "delivered"))
    assert statuses[0]["recipient_id"] == CLAIRE and statuses[0]["recipient_user_id"] == bsuid
    assert len(await api.outbox(CLAIRE)) == 1


async def test_a_bsuid_in_to_is_accepted_then_silently_dropped(
    api: Api, receiver: WebhookReceiver
) -> None:
    """Meta strips the country prefix of a BSUID put in ``to`` and reads the rest as a phone
    number: 200 and a wamid, then nothing (whatsapp-2026.md §1)."""
    bsuid = "FR.40213376198812340002"
    await api.inbound(**{"from": CLAIRE, "user_id": bsuid, "text": "Hello"})
    await api.idle()
    posts_before = len(receiver.posts)
    status, body = await api.send(
        {"messaging_product": "whatsapp", "to": bsuid, "type": "text", "text": {"body": "by BSUID"}}
    )
    assert status == 200, body
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    assert body["contacts"] == [{"input": bsuid, "wa_id": "40213376198812340002"}]
    await asyncio.sleep(0.2)
    await api.idle()
    assert receiver.statuses(wamid) == [] and len(receiver.posts) == posts_before
    [lost] = await api.outbox(bsuid)
    assert lost["wamid"] == wamid and lost["status"] == "dropped"
    assert lost["drop_reason"] == "bsuid_in_to" and lost["statuses"] == []
    assert (await api.outbox(CLAIRE)) == [lost]  # the admin outbox knows whose it was
    _, thread = await api.admin("GET", "thread", params={"client": CLAIRE})
    assert [m["direction"] for m in thread["messages"]] == ["in"]  # not on the phone
    _, conversations = await api.admin("GET", "conversations")
    assert conversations[0]["outbound_count"] == 0


async def test_button_taps_map_to_what_was_sent(api: Api, receiver: WebhookReceiver) -> None:
    await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    _, body = await api.send(buttons_message())
    buttons_id = body["messages"][0]["id"]
    await api.inbound(**{"from": CLAIRE, "reply_to": buttons_id, "button": "HOLD_NO"})
    tap = (
        await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "interactive"])
    )[0]
    assert tap["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "HOLD_NO", "title": "Not now"},
    }
    assert tap["context"] == {"from": "33100000000", "id": buttons_id}

    list_body = {
        "messaging_product": "whatsapp",
        "to": CLAIRE,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Which boutique?"},
            "action": {
                "button": "Boutiques",
                "sections": [
                    {
                        "title": "Paris",
                        "rows": [
                            {
                                "id": "VENDOME",
                                "title": "Place Vendôme",
                                "description": "Mon–Sat 10:00–19:00",
                            },
                            {"id": "MONTAIGNE", "title": "Avenue Montaigne"},
                        ],
                    }
                ],
            },
        },
    }
    _, body = await api.send(list_body)
    list_id = body["messages"][0]["id"]
    await api.inbound(**{"from": CLAIRE, "reply_to": list_id, "button": "Place Vendôme"})
    await api.inbound(**{"from": CLAIRE, "reply_to": list_id, "button": "1"})
    taps = await receiver.wait_for(
        lambda r: (
            [m for m in r.messages() if m["type"] == "interactive"][1:] or None
            if len([m for m in r.messages() if m["type"] == "interactive"]) == 3
            else None
        )
    )
    assert taps[0]["interactive"] == {
        "type": "list_reply",
        "list_reply": {
            "id": "VENDOME",
            "title": "Place Vendôme",
            "description": "Mon–Sat 10:00–19:00",
        },
    }
    assert taps[1]["interactive"]["list_reply"] == {"id": "MONTAIGNE", "title": "Avenue Montaigne"}

    nudge = nudge_request(CLAIRE, payload="NUDGE:7")
    _, body = await api.send(nudge)
    nudge_id = body["messages"][0]["id"]
    await api.inbound(**{"from": CLAIRE, "reply_to": nudge_id, "button": "0"})
    template_tap = (
        await receiver.wait_for(lambda r: [m for m in r.messages() if m["type"] == "button"])
    )[0]
    assert template_tap["button"] == {"payload": "NUDGE:7", "text": "View update"}
    assert template_tap["context"]["id"] == nudge_id

    status, error = await api.admin(
        "POST", "inbound", {"from": CLAIRE, "reply_to": buttons_id, "button": "NOPE"}
    )
    assert status == 400 and "HOLD_YES" in error["error"]


# --------------------------------------------------------------------------- templates


async def test_template_paging_is_consumed_by_the_real_fetcher(api: Api) -> None:
    cfg = api.emu.config
    registry = TemplateRegistry.load_default()
    total = len(registry)
    async with GraphTemplatePageFetcher(
        cfg.waba_id, cfg.access_token, base_url=api.url, api_version=cfg.api_version, limit=4
    ) as fetch:
        first = await fetch(None)
        assert len(first["data"]) == 4 and "next" in first["paging"]
        item = first["data"][0]
        assert {
            "id",
            "name",
            "language",
            "status",
            "category",
            "quality_score",
            "components",
            "parameter_format",
        } <= set(item)
        report = await registry.sync(fetch)
        assert report.pages == -(-total // 4) and report.seen == total
        assert report.mismatched == [] and report.missing == [] and report.added == []
        with pytest.raises(PaginationCursorError):
            await fetch("bm90LWEtY3Vyc29y")
    last_cursor = None
    async with aiohttp.ClientSession() as session:
        url = f"{api.emu.graph_url}/{cfg.waba_id}/message_templates"
        pages = 0
        while url:
            async with session.get(
                url, params=None if pages else {"limit": "10"}, headers=api.emu.auth_headers
            ) as resp:
                page = await resp.json()
            pages += 1
            last_cursor = page["paging"]["cursors"]["after"]
            url = page["paging"].get("next")
        assert pages == -(-total // 10) and last_cursor


async def test_created_template_is_pending_until_approved(
    api: Api, receiver: WebhookReceiver
) -> None:
    cfg = api.emu.config
    url = f"{api.emu.graph_url}/{cfg.waba_id}/message_templates"
    definition = {
        "name": "private_sale",
        "category": "MARKETING",
        "language": "en",
        "parameter_format": "named",
        "components": [{"type": "BODY", "text": "{{first_name}}, a private sale awaits you."}],
    }
    async with api.session.post(url, json=definition, headers=api.emu.auth_headers) as resp:
        created = await resp.json()
        assert resp.status == 200, created
    assert created["status"] == "PENDING" and created["category"] == "MARKETING"
    send = {
        "messaging_product": "whatsapp",
        "to": CLAIRE,
        "type": "template",
        "template": {
            "name": "private_sale",
            "language": {"code": "en"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "first_name", "text": "Claire"}
                    ],
                }
            ],
        },
    }
    status, body = await api.send(send)
    assert status == 404 and body["error"]["code"] == 132001
    await api.admin("POST", "templates/private_sale/status", {"status": "APPROVED"})
    update = await receiver.wait_for(lambda r: r.changes("message_template_status_update"))
    assert update[0]["value"]["message_template_id"] == int(created["id"])
    assert (await api.send(send))[0] == 200
    async with api.session.post(
        url, json={**definition, "name": "Bad Name"}, headers=api.emu.auth_headers
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
    async with api.session.post(url, json=definition, headers=api.emu.auth_headers) as resp:
        assert resp.status == 400  # same name and language exists


async def test_marketing_after_stop_fails_131050_and_resume_restores_it(
    api: Api, receiver: WebhookReceiver
) -> None:
    status, result = await api.admin("POST", "preferences", {"from": CLAIRE, "value": "stop"})
    assert status == 200 and result["marketing_stopped"] is True
    prefs = await receiver.wait_for(lambda r: r.changes("user_preferences"))
    pref = prefs[0]["value"]["user_preferences"][0]
    assert pref["value"] == "stop" and pref["category"] == "marketing_messages"
    assert isinstance(pref["timestamp"], int) and pref["wa_id"] == CLAIRE

    _, body = await api.send(event_invitation())
    marketing = body["messages"][0]["id"]
    _, body = await api.send(reminder())
    utility = body["messages"][0]["id"]
    failed = await receiver.wait_for(lambda r: r.statuses(marketing, "failed"))
    assert failed[0]["errors"][0]["code"] == 131050
    errors = [e for p in receiver.accepted() for _, e in errors_from_webhook(p.payload)]
    assert any(isinstance(e, MarketingOptOutError) for e in errors)
    await receiver.wait_for(lambda r: r.statuses(utility, "delivered"))

    await api.admin("POST", "preferences", {"from": CLAIRE, "value": "resume"})
    _, body = await api.send(event_invitation())
    again = body["messages"][0]["id"]
    sent = await receiver.wait_for(lambda r: r.statuses(again, "sent"))
    assert sent[0]["pricing"]["category"] == "marketing" and sent[0]["pricing"]["billable"] is True


async def test_free_entry_point_after_a_click_to_whatsapp_ad(
    api: Api, receiver: WebhookReceiver
) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Is the bag available?", "referral": True})
    referral = sent["message"]["referral"]
    assert (
        referral["source_type"] == "ad"
        and referral["ctwa_clid"]
        and referral["welcome_message"]["text"]
    )
    _, body = await api.text(CLAIRE, "It is.")
    reply = body["messages"][0]["id"]
    statuses = await receiver.wait_for(
        lambda r: r.statuses(reply, "delivered") and r.statuses(reply)
    )
    assert statuses[0]["pricing"]["type"] == "free_entry_point"
    conversation = statuses[0]["conversation"]
    assert conversation["origin"] == {"type": "referral_conversion"}
    assert isinstance(conversation["expiration_timestamp"], str)
    await api.advance(30 * 3600)  # window closed, FEP still running
    _, body = await api.send(event_invitation())
    template = body["messages"][0]["id"]
    sent_status = (await receiver.wait_for(lambda r: r.statuses(template, "sent")))[0]
    assert sent_status["pricing"]["type"] == "free_entry_point"


# --------------------------------------------------------------------------- read, media, admin


async def test_mark_as_read_and_typing_indicator(api: Api) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    status, body = await api.send(
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": sent["wamid"],
            "typing_indicator": {"type": "text"},
        }
    )
    assert (status, body) == (200, {"success": True})
    status, body = await api.send(
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.unknown"}
    )
    assert status == 400 and body["error"]["code"] == 100


async def test_media_upload_lookup_download_and_inbound_image(
    api: Api, receiver: WebhookReceiver
) -> None:
    cfg = api.emu.config
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/jpeg")
    form.add_field(
        "file", b"\xff\xd8\xff\xe0fake-jpeg", filename="bag.jpg", content_type="image/jpeg"
    )
    async with api.session.post(
        f"{api.emu.graph_url}/{cfg.phone_number_id}/media", data=form, headers=api.emu.auth_headers
    ) as resp:
        assert resp.status == 200
        media_id = (await resp.json())["id"]
    async with api.session.get(
        f"{api.emu.graph_url}/{media_id}", headers=api.emu.auth_headers
    ) as resp:
        info = await resp.json()
    assert info["id"] == media_id and info["mime_type"] == "image/jpeg"
    assert info["file_size"] == 13 and len(info["sha256"]) == 64
    async with api.session.get(info["url"], headers=api.emu.auth_headers) as resp:
        assert resp.status == 200 and await resp.read() == b"\xff\xd8\xff\xe0fake-jpeg"
    async with api.session.get(info["url"]) as resp:
        assert resp.status == 401

    await api.inbound(
        **{"from": CLAIRE, "type": "image", "media_id": media_id, "caption": "This one"}
    )
    image = (await receiver.wait_for(lambda r: r.messages()))[0]["image"]
    assert image["id"] == media_id and image["caption"] == "This one"
    assert image["mime_type"] == "image/jpeg" and image["url"] == info["url"]
    await api.inbound(**{"from": CLAIRE, "type": "image"})  # a picture the emulator makes up
    generated = (await receiver.wait_for(lambda r: r.messages()[1:]))[0]["image"]
    async with api.session.get(generated["url"], headers=api.emu.auth_headers) as resp:
        assert resp.status == 200 and (await resp.read()).startswith(b"\x89PNG")

    ok = {"messaging_product": "whatsapp", "to": CLAIRE, "type": "image", "image": {"id": media_id}}
    assert (await api.send(ok))[0] == 200
    status, body = await api.send({**ok, "image": {"id": "123"}})
    assert status == 400 and body["error"]["code"] == 100


async def test_inbound_types(api: Api, receiver: WebhookReceiver) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    for fields in (
        {
            "type": "location",
            "location": {
                "latitude": 48.867,
                "longitude": 2.329,
                "name": "Place Vendôme",
                "address": "Paris",
            },
        },
        {"type": "reaction", "message_id": sent["wamid"], "emoji": "👍"},
        {"type": "reaction", "message_id": sent["wamid"]},
        {"type": "unsupported"},
        {"type": "order"},
        {"type": "contacts"},
        {"type": "sticker"},
        {"type": "audio"},
        {"type": "document", "caption": "Invoice"},
    ):
        await api.inbound(**{"from": CLAIRE, **fields})
    messages = await receiver.wait_for(lambda r: r.messages() if len(r.messages()) == 10 else None)
    by_type = [m["type"] for m in messages]
    assert by_type == [
        "text",
        "location",
        "reaction",
        "reaction",
        "unsupported",
        "order",
        "contacts",
        "sticker",
        "audio",
        "document",
    ]
    assert messages[1]["location"] == {
        "latitude": 48.867,
        "longitude": 2.329,
        "name": "Place Vendôme",
        "address": "Paris",
    }
    assert messages[2]["reaction"] == {"message_id": sent["wamid"], "emoji": "👍"}
    assert messages[3]["reaction"] == {"message_id": sent["wamid"]}
    assert messages[4]["errors"][0]["code"] == 131051
    assert messages[5]["order"]["product_items"][0]["quantity"] == 1
    assert messages[6]["contacts"][0]["name"]["formatted_name"]
    assert messages[7]["sticker"]["animated"] is False
    assert messages[8]["audio"]["voice"] is True
    assert messages[9]["document"]["filename"] and messages[9]["document"]["caption"] == "Invoice"


async def test_reactions_do_not_open_the_window(api: Api, receiver: WebhookReceiver) -> None:
    sent = await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    await api.advance(23 * 3600)
    await api.inbound(
        **{"from": CLAIRE, "type": "reaction", "message_id": sent["wamid"], "emoji": "❤"}
    )
    await api.advance(2 * 3600)
    _, body = await api.text(CLAIRE, "still open?")
    wamid = body["messages"][0]["id"]
    await receiver.wait_for(lambda r: r.statuses(wamid, "failed"))


async def test_clock_admin_and_clock_file(start_api: StartApi, tmp_path: Any) -> None:
    # One base clock for the emulator and the bot reading its file (each process's
    # system clock in production): the offset is then exact, whatever today's date.
    clock_file = tmp_path / "clock.json"
    base = ManualClock(T0)
    target = datetime(2030, 6, 1, 10, 0, tzinfo=timezone.utc)
    async with start_api(clock=base, clock_file=str(clock_file)) as api:
        status, body = await api.admin("POST", "clock", {"set": "2026-06-01T12:00:00"})
        assert status == 400 and "naive" in body["error"]
        status, body = await api.admin("POST", "clock", {"set": "2030-06-01T12:00:00+02:00"})
        assert status == 200 and body["now"].startswith("2030-06-01T10:00:00")
        bot_clock = OffsetFileClock(clock_file, base=base)
        assert bot_clock.now() == target
        _, view = await api.admin("GET", "clock")
        assert view["offset_seconds"] == (target - T0).total_seconds()
        base.advance(timedelta(hours=1))  # the bases move on; the shared offset stays
        assert bot_clock.now() == target + timedelta(hours=1)
        assert (await api.admin("POST", "clock", {}))[0] == 400


async def test_reset_config_conversations_and_verify(api: Api, receiver: WebhookReceiver) -> None:
    status, config = await api.admin("GET", "config")
    assert status == 200
    assert set(config) >= {
        "phone_number_id",
        "waba_id",
        "display_phone_number",
        "api_version",
        "access_token",
        "app_secret",
        "verify_token",
        "webhook_url",
        "base_url",
    }
    assert config["base_url"] == api.url and config["webhook_url"] == receiver.url

    await api.inbound(**{"from": CLAIRE, "text": "Hello", "name": "Claire"})
    await api.text(CLAIRE, "Hi")
    await api.admin("POST", "templates/appointment_reminder/status", {"status": "PAUSED"})
    await api.advance(3600)
    _, conversations = await api.admin("GET", "conversations")
    assert conversations[0]["wa_id"] == CLAIRE and conversations[0]["window"]["open"] is True
    assert conversations[0]["inbound_count"] == 1 and conversations[0]["outbound_count"] == 1

    _, verified = await api.admin("POST", "verify")
    assert verified["ok"] is True and verified["body"] == verified["challenge"]
    _, refused = await api.admin("POST", "verify", {"verify_token": "wrong"})
    assert refused["ok"] is False and refused["status"] == 403

    status, body = await api.admin("POST", "reset")
    assert status == 200 and body["offset_seconds"] == 0
    assert await api.outbox() == []
    assert (await api.admin("GET", "webhooks"))[1] == []
    assert (await api.admin("GET", "conversations"))[1] == []
    assert (await api.send(reminder()))[0] == 200  # template back to APPROVED


async def test_graph_404_and_admin_404_shapes(api: Api) -> None:
    async with api.session.get(f"{api.url}/v21.0/1/2/3", headers=api.emu.auth_headers) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == 100
    status, body = await api.admin("GET", "nothing-here")
    assert status == 404 and "error" in body
    status, body = await api.admin("POST", "inbound", {"text": "who am I?"})
    assert status == 400 and "from" in body["error"]


async def test_admin_config_change_redirects_webhooks(api: Api) -> None:
    async with WebhookReceiver() as other:
        status, _ = await api.admin("POST", "config", {"webhook_url": other.url})
        assert status == 200
        await api.inbound(**{"from": CLAIRE, "text": "to the other bot"})
        await other.wait_for(lambda r: r.messages())
        assert other.posts[0].signature_valid
    status, body = await api.admin("POST", "config", {"app_secret": "x"})
    assert status == 400


async def test_many_sends_are_fast(api: Api, receiver: WebhookReceiver) -> None:
    await api.inbound(**{"from": CLAIRE, "text": "Hello"})
    started = time.perf_counter()
    results = await asyncio.gather(*(api.text(f"3361000{i:04d}", "x") for i in range(40)))
    assert all(status == 200 for status, _ in results)
    assert time.perf_counter() - started < 5
