"""What changed on the platform in 2026 (shared/reference/whatsapp-2026.md), as the
emulator plays it: BSUID addressing, 131062, the per-user marketing cap (131049), pricing
from 2026-10-01, identity changes, user calls, contact-information requests and the
Graph API versions it serves."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from salon.clock import ManualClock
from salon.emulator.testing import WebhookReceiver
from salon.emulator.versions import DEFAULT_API_VERSIONS, GRAPH_API_VERSIONS
from tests.emulator.emulator_support import (
    CLAIRE,
    Api,
    StartApi,
    marketing_request,
    text_request,
    utility_request,
)
from tests.emulator.test_emulator_fidelity import shape_differences

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"

BSUID = "FR.40213376198812340001"
PARENT = "FR.ENT.11815799212886844830"
INES = "33611223344"
T_SPRING = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
T_AUGUST = datetime(2026, 8, 20, 9, 30, tzinfo=timezone.utc)
BILLED_FROM = datetime(2026, 10, 1, tzinfo=timezone.utc)


async def _ok(api: Api, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    status, result = await api.send(body)
    assert status == 200, result
    return result["messages"][0]["id"], result


async def _settled(api: Api) -> None:
    await asyncio.sleep(0.1)
    await api.idle()


def _posts_with(receiver: WebhookReceiver, label: str) -> list[dict[str, Any]]:
    return [p.payload for p in receiver.accepted() if label in json.dumps(p.payload)]


# --------------------------------------------------------------------------- 1. addressing


async def test_send_response_contacts_follow_the_field_used(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(**{"from": CLAIRE, "user_id": BSUID, "text": "Bonjour"})
    _, by_phone = await _ok(api, text_request("+" + CLAIRE))
    assert by_phone["contacts"] == [{"input": "+" + CLAIRE, "wa_id": CLAIRE}]
    _, by_bsuid = await _ok(api, text_request(BSUID))
    assert by_bsuid["contacts"] == [{"input": BSUID, "user_id": BSUID}]
    # both given: `to` wins; Meta then names both ids
    both = {**text_request(CLAIRE), "recipient": BSUID}
    wamid, result = await _ok(api, both)
    assert result["contacts"] == [{"input": CLAIRE, "wa_id": CLAIRE, "user_id": BSUID}]
    statuses = await receiver.wait_for(lambda r: r.statuses(wamid, "delivered"))
    assert statuses[0]["recipient_id"] == CLAIRE and statuses[0]["recipient_user_id"] == BSUID
    assert [m["status"] for m in await api.outbox(CLAIRE)][-1] in ("delivered", "read")


async def test_to_wins_over_recipient_even_when_it_holds_a_bsuid(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(user_id=BSUID, text="Bonjour", bsuid_only=True)
    body = {**text_request(BSUID, field="to"), "recipient": BSUID}
    wamid, result = await _ok(api, body)
    assert result["contacts"] == [{"input": BSUID, "wa_id": "40213376198812340001"}]
    await _settled(api)
    assert receiver.statuses(wamid) == []
    [lost] = await api.outbox(BSUID)
    assert lost["status"] == "dropped" and lost["drop_reason"] == "bsuid_in_to"


async def test_a_dropped_message_has_no_window_effect_and_no_cap_effect(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING)) as api:
        await api.inbound(user_id=BSUID, text="Bonjour", bsuid_only=True)
        await api.advance(25 * 3600)  # window closed: a free-form would fail 131047 …
        text_id, _ = await _ok(api, text_request(BSUID, field="to"))
        news_id, _ = await _ok(api, marketing_request(BSUID, field="to"))
        await _settled(api)
        assert receiver.statuses(text_id) == [] and receiver.statuses(news_id) == []  # … not even
        box = await api.outbox(BSUID)
        assert [(m["type"], m["status"]) for m in box] == [
            ("text", "dropped"),
            ("template", "dropped"),
        ]
        assert box[1]["template"] == "maison_news_nudge" and box[1]["category"] == "marketing"
        # the dropped marketing template did not count: the next one is delivered
        delivered, _ = await _ok(api, marketing_request(BSUID))
        await receiver.wait_for(lambda r: r.statuses(delivered, "delivered"))
        _, conversations = await api.admin("GET", "conversations")
        assert conversations[0]["window"]["open"] is False


async def test_a_username_only_client_is_addressed_by_recipient_and_never_shown_a_phone(
    api: Api, receiver: WebhookReceiver
) -> None:
    # the emulator knows her number; Meta does not tell the business
    sent = await api.inbound(
        **{"from": INES, "text": "Bonjour", "name": "Inès", "bsuid_only": True}
    )
    message = sent["message"]
    assert "from" not in message and message["from_user_id"].startswith("FR.")
    bsuid = message["from_user_id"]
    post = (await receiver.wait_for(lambda r: r.messages()))[0]
    assert post["from_user_id"] == bsuid
    contact = receiver.accepted()[0].changes()[0]["value"]["contacts"][0]
    assert contact == {"profile": {"name": "Inès"}, "user_id": bsuid}

    wamid, result = await _ok(api, text_request(bsuid))
    assert result["contacts"] == [{"input": bsuid, "user_id": bsuid}]
    statuses = await receiver.wait_for(lambda r: r.statuses(wamid, "read"))
    assert all(s["recipient_user_id"] == bsuid and "recipient_id" not in s for s in statuses)
    for post in receiver.accepted()[1:]:
        for value in (c["value"] for c in post.changes()):
            assert all("wa_id" not in c for c in value.get("contacts", []))

    # once the business writes to her number, the number is known
    by_phone, _ = await _ok(api, text_request(INES))
    statuses = await receiver.wait_for(lambda r: r.statuses(by_phone, "delivered"))
    assert statuses[0]["recipient_id"] == INES and statuses[0]["recipient_user_id"] == bsuid
    _, thread = await api.admin("GET", "thread", params={"client": bsuid})
    assert thread["client"]["bsuid_only"] is False and thread["client"]["wa_id"] == INES


# --------------------------------------------------------------------------- 2. 131062


async def _approved_authentication_template(api: Api) -> None:
    url = f"{api.emu.graph_url}/{api.emu.config.waba_id}/message_templates"
    definition = {
        "name": "login_code",
        "category": "AUTHENTICATION",
        "language": "en",
        "components": [{"type": "BODY", "text": "{{1}} is your verification code."}],
    }
    async with api.session.post(url, json=definition, headers=api.emu.auth_headers) as resp:
        assert resp.status == 200, await resp.json()
    status, _ = await api.admin("POST", "templates/login_code/status", {"status": "APPROVED"})
    assert status == 200


def _login_code(identity: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        **(
            {"recipient_type": "individual", "recipient": identity}
            if "." in identity
            else {"to": identity}
        ),
        "type": "template",
        "template": {
            "name": "login_code",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "482913"}]}],
        },
    }


async def test_authentication_templates_cannot_go_to_a_bsuid(
    api: Api, receiver: WebhookReceiver
) -> None:
    await _approved_authentication_template(api)
    await api.inbound(**{"from": CLAIRE, "user_id": BSUID, "text": "Bonjour"})
    status, body = await api.send(_login_code(BSUID))
    assert status == 400
    error = body["error"]
    assert error["code"] == 131062 and error["type"] == "OAuthException"
    assert error["message"].startswith("(#131062) ")
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Business-scoped User ID (BSUID) recipients are not supported for this message.",
    }
    assert isinstance(error["fbtrace_id"], str)
    refused = (await api.outbox(BSUID))[-1]
    assert refused["status"] == "rejected" and refused["error_code"] == 131062
    # to the phone number it goes, billed as authentication
    wamid, _ = await _ok(api, _login_code(CLAIRE))
    sent = await receiver.wait_for(lambda r: r.statuses(wamid, "sent"))
    assert sent[0]["pricing"]["category"] == "authentication"
    assert sent[0]["pricing"]["type"] == "regular" and sent[0]["pricing"]["billable"] is True


# --------------------------------------------------------------------------- 3. 131049


async def test_a_second_marketing_template_within_24h_fails_131049(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING)) as api:
        first, _ = await _ok(api, marketing_request(CLAIRE))
        await receiver.wait_for(lambda r: r.statuses(first, "delivered"))
        await api.advance(23 * 3600)
        second, result = await _ok(api, marketing_request(CLAIRE))  # accepted synchronously
        assert result["messages"][0]["message_status"] == "accepted"
        failed = (await receiver.wait_for(lambda r: r.statuses(second, "failed")))[0]
        error = failed["errors"][0]
        assert error["code"] == 131049
        # Meta's text (shared fixture 12, whose shape test_emulator_fidelity compares)
        assert error["error_data"]["details"] == (
            "In order to maintain a healthy ecosystem engagement, the message failed to be "
            "delivered."
        )
        assert "pricing" not in failed
        await _settled(api)
        assert receiver.statuses(second, "sent") == []
        # a utility template is not capped; the failed marketing one did not count
        utility, _ = await _ok(api, utility_request(CLAIRE))
        await receiver.wait_for(lambda r: r.statuses(utility, "delivered"))
        await api.advance(3600)  # 24 h after the first
        third, _ = await _ok(api, marketing_request(CLAIRE))
        await receiver.wait_for(lambda r: r.statuses(third, "delivered"))
        box = await api.outbox(CLAIRE)
        assert [m["error_code"] for m in box] == [None, 131049, None, None]


async def test_marketing_inside_the_clients_window_is_not_capped_and_does_not_count(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING)) as api:
        outside, _ = await _ok(api, marketing_request(CLAIRE))  # T: counts
        await api.advance(3600)
        await api.inbound(**{"from": CLAIRE, "text": "Tell me more"})  # window until T+25 h
        await api.advance(19 * 3600)
        inside, _ = await _ok(api, marketing_request(CLAIRE))  # T+20 h: not capped …
        await receiver.wait_for(
            lambda r: r.statuses(inside, "delivered") and r.statuses(outside, "delivered")
        )
        await api.advance(5 * 3600 + 60)  # T+25 h: window closed, 5 h after `inside`
        later, _ = await _ok(api, marketing_request(CLAIRE))  # … and did not count
        await receiver.wait_for(lambda r: r.statuses(later, "delivered"))
        again, _ = await _ok(api, marketing_request(CLAIRE))
        failed = await receiver.wait_for(lambda r: r.statuses(again, "failed"))
        assert failed[0]["errors"][0]["code"] == 131049


async def test_the_cap_window_is_configurable(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING), marketing_cap_hours=2) as api:
        first, _ = await _ok(api, marketing_request(CLAIRE))
        await api.advance(2 * 3600)
        second, _ = await _ok(api, marketing_request(CLAIRE))
        await receiver.wait_for(lambda r: r.statuses(second, "delivered"))
    async with start_api(clock=ManualClock(T_SPRING), marketing_cap_hours=None) as api:
        ids = [(await _ok(api, marketing_request(CLAIRE)))[0] for _ in range(2)]
        await receiver.wait_for(lambda r: all(r.statuses(w, "delivered") for w in ids))
    assert first


# --------------------------------------------------------------------------- 4. pricing


def _pricing(kind: str, category: str, billable: bool) -> dict[str, Any]:
    return {"billable": billable, "pricing_model": "PMP", "type": kind, "category": category}


@pytest.mark.parametrize(
    ("when", "service_inside", "utility_inside"),
    [
        (
            BILLED_FROM - timedelta(seconds=1),
            ("free_customer_service", False),
            ("free_customer_service", False),
        ),
        (BILLED_FROM, ("regular", True), ("regular", True)),
        (datetime(2026, 12, 6, 12, tzinfo=timezone.utc), ("regular", True), ("regular", True)),
    ],
    ids=["before-2026-10-01", "at-2026-10-01", "december-2026"],
)
async def test_pricing_on_sent_and_delivered_follows_the_2026_rules(
    start_api: StartApi,
    receiver: WebhookReceiver,
    when: datetime,
    service_inside: tuple[str, bool],
    utility_inside: tuple[str, bool],
) -> None:
    async with start_api(clock=ManualClock(when)) as api:
        await api.inbound(**{"from": CLAIRE, "text": "Bonjour"})
        sent = {
            "service": (await _ok(api, text_request(CLAIRE)))[0],
            "utility": (await _ok(api, utility_request(CLAIRE)))[0],
            "marketing": (await _ok(api, marketing_request(CLAIRE)))[0],
        }
        await receiver.wait_for(lambda r: all(r.statuses(w, "delivered") for w in sent.values()))
        expected = {
            "service": _pricing(service_inside[0], "service", service_inside[1]),
            "utility": _pricing(utility_inside[0], "utility", utility_inside[1]),
            "marketing": _pricing("regular", "marketing", True),
        }
        for name, wamid in sent.items():
            for status in ("sent", "delivered"):
                assert receiver.statuses(wamid, status)[0]["pricing"] == expected[name], (
                    name,
                    status,
                )
        # utility outside the window is always billed
        await api.advance(25 * 3600)
        outside, _ = await _ok(api, utility_request(CLAIRE))
        got = await receiver.wait_for(lambda r: r.statuses(outside, "sent"))
        assert got[0]["pricing"] == _pricing("regular", "utility", True)


async def test_the_free_entry_point_stays_free_after_2026_10_01(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(datetime(2026, 11, 2, 10, tzinfo=timezone.utc))) as api:
        await api.inbound(**{"from": CLAIRE, "text": "Is the bag available?", "referral": True})
        reply, _ = await _ok(api, text_request(CLAIRE, "It is."))
        utility, _ = await _ok(api, utility_request(CLAIRE))
        await receiver.wait_for(
            lambda r: r.statuses(reply, "delivered") and r.statuses(utility, "delivered")
        )
        for wamid in (reply, utility):
            for status in ("sent", "delivered"):
                pricing = receiver.statuses(wamid, status)[0]["pricing"]
                assert pricing["type"] == "free_entry_point" and pricing["billable"] is False


# --------------------------------------------------------------------------- 5. identity


async def _webhook_of(receiver: WebhookReceiver, wamid: str) -> dict[str, Any]:
    await receiver.wait_for(lambda r: [m for m in r.messages() if m["id"] == wamid])
    return next(
        p.payload for p in receiver.accepted() if any(m["id"] == wamid for m in p.messages())
    )


def _same_but_ids(ours: dict[str, Any], fixture: dict[str, Any]) -> None:
    """Same structure, same values, except the message id (random)."""
    assert shape_differences(ours, fixture) == []
    ours_message = ours["entry"][0]["changes"][0]["value"]["messages"][0]
    fixture_message = fixture["entry"][0]["changes"][0]["value"]["messages"][0]
    assert list(ours_message) == list(fixture_message)
    assert list(ours_message["system"]) == list(fixture_message["system"])
    assert {**ours_message, "id": "x"} == {**fixture_message, "id": "x"}
    assert "contacts" not in ours["entry"][0]["changes"][0]["value"]


async def test_a_bsuid_change_emits_exactly_the_fixture_and_the_client_follows(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    fixture = json.loads((FIXTURES / "emulator_system_user_changed_user_id.json").read_text())
    system = fixture["entry"][0]["changes"][0]["value"]["messages"][0]["system"]
    config = {"status_delivered_delay": 0.4, "status_read_delay": None}
    async with start_api(clock=ManualClock(T_AUGUST), **config) as api:
        hello = await api.inbound(
            user_id=BSUID,
            parent_user_id=PARENT,
            text="Bonjour",
            name="Inès Moreau",
            bsuid_only=True,
        )
        in_flight, _ = await _ok(api, text_request(BSUID, "Bonjour Madame"))
        await receiver.wait_for(lambda r: r.statuses(in_flight, "sent"))
        status, result = await api.admin(
            "POST",
            "identity_change",
            {
                "client": BSUID,
                "new_user_id": system["user_id"],
                "new_parent_user_id": system["parent_user_id"],
            },
        )
        assert status == 200, result
        assert result["type"] == "user_changed_user_id"
        assert result["client"]["user_id"] == system["user_id"]
        assert result["client"]["parent_user_id"] == system["parent_user_id"]
        assert result["previous"] == {"wa_id": None, "user_id": BSUID, "parent_user_id": PARENT}
        ours = await _webhook_of(receiver, result["wamid"])
        assert ours == result["webhook"]
        _same_but_ids(ours, fixture)
        post = next(p for p in receiver.accepted() if p.payload == ours)
        assert post.signature_valid

        new = system["user_id"]
        # the pending status follows the client to the new id
        delivered = await receiver.wait_for(lambda r: r.statuses(in_flight, "delivered"))
        assert delivered[0]["recipient_user_id"] == new
        # same window (no 131047), same history, found by the new id
        reply, _ = await _ok(api, text_request(new, "Still here"))
        await receiver.wait_for(lambda r: r.statuses(reply, "delivered"))
        _, thread = await api.admin("GET", "thread", params={"client": new})
        assert thread["window"]["last_inbound_at"] == T_AUGUST.isoformat()
        assert [m["type"] for m in thread["messages"]] == ["text", "text", "system", "text"]
        assert thread["messages"][0]["wamid"] == hello["wamid"]
        assert thread["messages"][2]["text"] == system["body"]
        assert len(await api.outbox(new)) == 2
        # the old id reaches nobody: accepted, then 131026
        orphan, _ = await _ok(api, text_request(BSUID, "Hello?"))
        failed = await receiver.wait_for(lambda r: r.statuses(orphan, "failed"))
        assert failed[0]["errors"][0]["code"] == 131026
        assert len(await api.outbox(new)) == 2  # not in her thread


async def test_a_number_change_emits_exactly_the_fixture_and_regenerates_the_bsuid(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    fixture = json.loads((FIXTURES / "emulator_system_user_changed_number.json").read_text())
    message = fixture["entry"][0]["changes"][0]["value"]["messages"][0]
    system = message["system"]
    async with start_api(clock=ManualClock(T_AUGUST)) as api:
        await api.inbound(
            **{
                "from": message["from"],
                "user_id": system["previous_user_id"],
                "parent_user_id": system["previous_parent_user_id"],
                "name": "Claire Laurent",
                "text": "Bonjour",
            }
        )
        status, result = await api.admin(
            "POST",
            "identity_change",
            {
                "client": message["from"],
                "new_wa_id": system["wa_id"],
                "new_user_id": system["user_id"],
            },
        )
        assert status == 200, result
        assert result["type"] == "user_changed_number"
        ours = await _webhook_of(receiver, result["wamid"])
        _same_but_ids(ours, fixture)

        # without new_user_id the BSUID is regenerated (same country as the new number)
        status, again = await api.admin(
            "POST", "identity_change", {"client": system["wa_id"], "new_wa_id": "+44 7700 900123"}
        )
        assert status == 200, again
        regenerated = again["client"]["user_id"]
        assert regenerated.startswith("GB.") and regenerated != system["user_id"]
        second = (await _webhook_of(receiver, again["wamid"]))["entry"][0]["changes"][0]["value"]
        sys2 = second["messages"][0]["system"]
        assert second["messages"][0]["from"] == system["wa_id"]
        assert sys2["wa_id"] == "447700900123" and sys2["user_id"] == regenerated
        assert sys2["previous_user_id"] == system["user_id"]
        assert sys2["previous_parent_user_id"] == result["client"]["parent_user_id"]

        # the window followed: a free-form to the newest number is delivered
        reply, _ = await _ok(api, text_request("447700900123", "Welcome back"))
        got = await receiver.wait_for(lambda r: r.statuses(reply, "delivered"))
        assert (
            got[0]["recipient_id"] == "447700900123" and got[0]["recipient_user_id"] == regenerated
        )
        orphan, _ = await _ok(api, text_request(message["from"], "Hello?"))
        failed = await receiver.wait_for(lambda r: r.statuses(orphan, "failed"))
        assert failed[0]["errors"][0]["code"] == 131026
        _, conversations = await api.admin("GET", "conversations")
        assert len(conversations) == 1 and conversations[0]["wa_id"] == "447700900123"


async def test_a_username_only_client_changes_number_without_telling_it(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(**{"from": INES, "user_id": BSUID, "text": "Bonjour", "bsuid_only": True})
    status, result = await api.admin(
        "POST", "identity_change", {"client": BSUID, "new_wa_id": "33699887766"}
    )
    assert status == 200, result
    value = (await _webhook_of(receiver, result["wamid"]))["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    assert "from" not in message and message["from_user_id"] == BSUID
    new = result["client"]["user_id"]
    assert message["system"] == {
        "body": f"User WhatsApp user changed from {INES} to 33699887766",
        "type": "user_changed_number",
        "user_id": new,
        "previous_user_id": BSUID,
    }  # no wa_id (the business does not know her number), no parent ids (she has none)
    assert result["client"]["parent_user_id"] is None
    status, body = await api.admin("POST", "identity_change", {"client": BSUID})
    assert status == 404 and new in body["error"]  # an id she left behind


async def test_identity_change_refusals(api: Api) -> None:
    status, body = await api.admin("POST", "identity_change", {"client": CLAIRE})
    assert status == 404 and "write first" in body["error"]
    await api.inbound(**{"from": CLAIRE, "text": "Bonjour"})
    status, body = await api.admin("POST", "identity_change", {"client": CLAIRE})
    assert status == 400 and "no BSUID" in body["error"]
    status, body = await api.admin(
        "POST", "identity_change", {"client": CLAIRE, "new_wa_id": "not a number"}
    )
    assert status == 400
    await api.inbound(**{"from": INES, "text": "Bonjour"})
    status, body = await api.admin("POST", "identity_change", {"client": CLAIRE, "new_wa_id": INES})
    assert status == 409
    status, body = await api.admin("POST", "identity_change", {})
    assert status == 400 and "client" in body["error"]


# --------------------------------------------------------------------------- 6. calls


async def test_a_user_call_sends_connect_then_terminate_and_opens_the_window(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING)) as api:
        await api.inbound(**{"from": CLAIRE, "user_id": BSUID, "name": "Claire", "text": "Hi"})
        await api.advance(23 * 3600)
        status, result = await api.admin("POST", "call", {"client": CLAIRE, "duration": 95})
        assert status == 200, result
        assert result["status"] == "COMPLETED" and result["call_id"].startswith("wacid.")
        now = T_SPRING + timedelta(hours=23)
        assert result["window_closes_at"] == (now + timedelta(hours=24)).isoformat()
        changes = await receiver.wait_for(
            lambda r: len(r.changes("calls")) == 2 and r.changes("calls")
        )
        connect, terminate = (c["value"] for c in changes)
        assert [p for p in result["webhooks"]] == [
            p.payload for p in receiver.accepted() if p.changes()[0]["field"] == "calls"
        ]
        assert connect["contacts"] == [
            {"profile": {"name": "Claire"}, "wa_id": CLAIRE, "user_id": BSUID}
        ]
        assert connect["metadata"]["phone_number_id"] == api.emu.config.phone_number_id
        c = connect["calls"][0]
        assert {k: c[k] for k in ("id", "from", "from_user_id", "to", "event", "direction")} == {
            "id": result["call_id"],
            "from": CLAIRE,
            "from_user_id": BSUID,
            "to": api.emu.config.display_phone_number,
            "event": "connect",
            "direction": "USER_INITIATED",
        }
        assert c["timestamp"] == str(int(now.timestamp())) and c["session"]["sdp_type"] == "offer"
        t = terminate["calls"][0]
        assert t["event"] == "terminate" and t["status"] == "COMPLETED" and t["duration"] == 95
        assert t["id"] == c["id"] and t["direction"] == "USER_INITIATED"
        assert int(t["end_time"]) - int(t["start_time"]) == 95
        # 25 h after her message, 2 h after the call: the window is open
        await api.advance(2 * 3600)
        reply, _ = await _ok(api, text_request(CLAIRE, "Thank you for calling"))
        await receiver.wait_for(lambda r: r.statuses(reply, "delivered"))


async def test_an_unanswered_call_from_a_username_only_client_also_opens_the_window(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(**{"from": INES, "user_id": BSUID, "text": "Bonjour", "bsuid_only": True})
    await api.advance(30 * 3600)
    status, result = await api.admin("POST", "call", {"client": BSUID, "answered": False})
    assert status == 200 and result["status"] == "FAILED" and result["answered"] is False
    changes = await receiver.wait_for(lambda r: len(r.changes("calls")) == 2 and r.changes("calls"))
    for change in changes:
        call = change["value"]["calls"][0]
        assert "from" not in call and call["from_user_id"] == BSUID
        assert change["value"]["contacts"] == [{"profile": {"name": ""}, "user_id": BSUID}]
    terminate = changes[1]["value"]["calls"][0]
    assert terminate["status"] == "FAILED"
    assert not {"duration", "start_time", "end_time"} & set(terminate)  # only when answered
    reply, _ = await _ok(api, text_request(BSUID, "Sorry we missed you"))
    await receiver.wait_for(lambda r: r.statuses(reply, "delivered"))
    _, thread = await api.admin("GET", "thread", params={"client": BSUID})
    assert thread["messages"][1]["type"] == "call"
    assert thread["messages"][1]["text"].startswith("Missed voice call")


async def test_call_refusals(api: Api) -> None:
    assert (await api.admin("POST", "call", {}))[0] == 400
    assert (await api.admin("POST", "call", {"client": CLAIRE, "answered": "yes"}))[0] == 400
    assert (await api.admin("POST", "call", {"client": CLAIRE, "duration": -1}))[0] == 400
    status, result = await api.admin("POST", "call", {"client": CLAIRE})  # a first contact
    assert status == 200 and result["client"]["wa_id"] == CLAIRE


# --------------------------------------------------------------------------- 7. contact info


def _contact_request(identity: str, **extra: Any) -> dict[str, Any]:
    interactive = {
        "type": "request_contact_info",
        "body": {"text": "May we have your number, to find your orders?"},
        "action": {"name": "request_contact_info"},
        **extra,
    }
    return {
        "messaging_product": "whatsapp",
        **(
            {"recipient_type": "individual", "recipient": identity}
            if "." in identity
            else {"to": identity}
        ),
        "type": "interactive",
        "interactive": interactive,
    }


async def test_a_contact_information_request_is_shaped_and_windowed_like_interactive(
    start_api: StartApi, receiver: WebhookReceiver
) -> None:
    async with start_api(clock=ManualClock(T_SPRING)) as api:
        await api.inbound(**{"from": INES, "user_id": BSUID, "text": "Bonjour", "bsuid_only": True})
        bad = _contact_request(BSUID)
        bad["interactive"]["action"] = {"name": "send_location"}
        status, body = await api.send(bad)
        assert status == 400 and body["error"]["code"] == 131009
        no_body = _contact_request(BSUID)
        del no_body["interactive"]["body"]
        status, body = await api.send(no_body)
        assert status == 400 and body["error"]["code"] == 131008
        status, body = await api.send(
            _contact_request(BSUID, header={"type": "text", "text": "Hi"})
        )
        assert status == 400 and body["error"]["code"] == 131009
        await api.advance(25 * 3600)
        late, _ = await _ok(api, _contact_request(BSUID))  # free-form: needs the window
        failed = await receiver.wait_for(lambda r: r.statuses(late, "failed"))
        assert failed[0]["errors"][0]["code"] == 131047
        status, body = await api.admin("POST", "share_contact", {"client": BSUID})
        assert status == 400  # nothing delivered to answer


async def test_sharing_contact_info_sends_the_phone_in_reply_to_the_request(
    api: Api, receiver: WebhookReceiver
) -> None:
    await api.inbound(
        **{
            "from": INES,
            "user_id": BSUID,
            "name": "Inès Moreau",
            "text": "Bonjour",
            "bsuid_only": True,
        }
    )
    asked, _ = await _ok(api, _contact_request(BSUID))
    await receiver.wait_for(lambda r: r.statuses(asked, "delivered"))
    _, thread = await api.admin("GET", "thread", params={"client": BSUID})
    request = thread["messages"][-1]
    assert request["interactive_type"] == "request_contact_info"
    assert request["options"] == [
        {"kind": "share_contact", "id": "share_contact_info", "title": "Share contact info"}
    ]
    assert request["buttons"] == ["Share contact info"]
    # the button cannot be "tapped" as a reply button
    status, body = await api.admin(
        "POST", "inbound", {"user_id": BSUID, "reply_to": asked, "button": "share_contact_info"}
    )
    assert status == 400 and "share_contact" in body["error"]

    status, shared = await api.admin("POST", "share_contact", {"client": BSUID})
    assert status == 200, shared
    assert shared["reply_to"] == asked
    webhook = await _webhook_of(receiver, shared["wamid"])
    value = webhook["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    assert "from" not in message and message["from_user_id"] == BSUID
    assert message["type"] == "contacts"
    assert message["context"] == {"from": api.emu.config.display_phone_number, "id": asked}
    assert message["contacts"] == [
        {
            "origin": "contact_request",
            "name": {"formatted_name": "Inès Moreau", "first_name": "Inès", "last_name": "Moreau"},
            "phones": [{"phone": "+" + INES, "wa_id": INES, "type": "CELL"}],
        }
    ]
    assert value["contacts"] == [{"profile": {"name": "Inès Moreau"}, "user_id": BSUID}]
    # from now on the business knows the number
    after, _ = await _ok(api, text_request(BSUID, "Thank you"))
    got = await receiver.wait_for(lambda r: r.statuses(after, "delivered"))
    assert got[0]["recipient_id"] == INES
    _, thread = await api.admin("GET", "thread", params={"client": BSUID})
    shared_item = next(m for m in thread["messages"] if m["wamid"] == shared["wamid"])
    assert shared_item["reply_to"] == asked and "+" + INES in shared_item["text"]


# --------------------------------------------------------------------------- 8. versions


async def _get_phone(api: Api, version: str) -> tuple[int, dict[str, Any]]:
    url = f"{api.url}/{version}/{api.emu.config.phone_number_id}"
    async with api.session.get(url, headers=api.emu.auth_headers) as resp:
        return resp.status, await resp.json()


async def _send_as(api: Api, version: str) -> tuple[int, dict[str, Any]]:
    url = f"{api.url}/{version}/{api.emu.config.phone_number_id}/messages"
    async with api.session.post(
        url, json=utility_request(CLAIRE), headers=api.emu.auth_headers
    ) as resp:
        return resp.status, await resp.json()


def test_the_version_calendar() -> None:
    assert DEFAULT_API_VERSIONS == ("v21.0", "v25.0", "v26.0", "v27.0")
    assert GRAPH_API_VERSIONS["v21.0"].ends == datetime(2027, 1, 21, tzinfo=timezone.utc)
    assert GRAPH_API_VERSIONS["v27.0"].ends is None
    assert set(DEFAULT_API_VERSIONS) <= set(GRAPH_API_VERSIONS)


async def test_claimed_versions_are_served_and_others_refused_like_graph(
    start_api: StartApi,
) -> None:
    async with start_api(
        clock=ManualClock(datetime(2027, 1, 20, 23, 59, 59, tzinfo=timezone.utc))
    ) as api:
        assert api.emu.graph_url.endswith("/v27.0")  # the emulator's own default
        for version in ("v21.0", "v25.0", "v26.0", "v27.0"):
            assert (await _send_as(api, version))[0] == 200, version
        for version in ("v24.0", "v22.0", "v28.0", "v2.80"):
            status, body = await _send_as(api, version)
            assert status == 400, version
            assert body == {
                "error": {
                    "message": f"Unknown path components: /{version}/{api.emu.config.phone_number_id}/messages",
                    "type": "OAuthException",
                    "code": 2500,
                    "fbtrace_id": body["error"]["fbtrace_id"],
                }
            }
        # refused before the token is looked at, on every Graph route
        async with api.session.get(f"{api.url}/v24.0/{api.emu.config.phone_number_id}") as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == 2500
        templates = f"{api.url}/v24.0/{api.emu.config.waba_id}/message_templates"
        async with api.session.get(templates, headers=api.emu.auth_headers) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == 2500

        await api.advance(1)  # 2027-01-21T00:00:00Z: v21.0 is over
        status, body = await _send_as(api, "v21.0")
        assert status == 400
        assert body["error"]["code"] == 2635 and body["error"]["type"] == "OAuthException"
        assert body["error"]["message"] == (
            "(#2635) You are calling a deprecated version of the Graph API. "
            "Please update to the latest version: v27.0."
        )
        assert "error_data" not in body["error"]
        assert (await _get_phone(api, "v21.0"))[0] == 400
        assert (await _get_phone(api, "v27.0"))[0] == 200


async def test_the_served_versions_are_configurable(start_api: StartApi) -> None:
    async with start_api(api_versions=("v21.0", "v27.0"), api_version="v21.0") as api:
        assert api.emu.graph_url.endswith("/v21.0")
        assert (await _get_phone(api, "v21.0"))[0] == 200
        status, body = await _get_phone(api, "v26.0")
        assert status == 400 and body["error"]["code"] == 2500
        _, config = await api.admin("GET", "config")
        assert config["api_versions"] == ["v21.0", "v27.0"]
