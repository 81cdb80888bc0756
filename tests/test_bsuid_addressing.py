"""Every kind of message to a client known only by her BSUID (a WhatsApp username, no
phone number in the webhook) is addressed with ``recipient`` + ``recipient_type`` and no
``to``, through the channel and the send-time guard, against the Cloud API emulator. The
emulator, like Meta, answers a BSUID put in ``to`` with a message id and then drops it:
the last tests show that such a body would vanish."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from connectors.whatsapp import WhatsAppOutput
from salon.clock import ManualClock
from salon.config import Settings
from salon.conversation.contact_request import contact_request
from salon.identity import ClientRef
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.graph import GraphClient, GraphConfig
from salon.whatsapp.messages import OutgoingMessage
from tests.test_whatsapp_sender import T0, answer, outbox, say, settle, wired

#: A client writing from her username, not in the maison's book (the emulator knows her
#: phone; Meta never tells it).
BSUID = "FR.1122334455667788990"
PHONE = "33611223344"
NAME = "Inès Moreau"
CLAIRE_BSUID = "FR.4820193746581029374"  # Claire Laurent's BSUID in the maison's book
ADDRESS = {"messaging_product": "whatsapp", "recipient_type": "individual", "recipient": BSUID}


async def _username_only(admin: aiohttp.ClientSession, text: str = "Bonjour") -> dict[str, Any]:
    return await say(admin, user_id=BSUID, bsuid_only=True, text=text, name=NAME)


def _addressed_by_bsuid(sent: dict[str, Any], bsuid: str = BSUID) -> dict[str, Any]:
    """The exact request body: the recipient fields for ``bsuid`` and no ``to``."""
    body = dict(sent["payload"])
    assert "to" not in body, body
    address = {**ADDRESS, "recipient": bsuid}
    assert {k: body.get(k) for k in address} == address, body
    return body


async def test_a_reply_text_buttons_media_and_a_reaction_go_to_recipient(settings: Settings) -> None:
    async with wired(settings, answer("Bonjour Madame, how may I help?")) as (ch, emu, admin):
        sent = await _username_only(admin)
        [reply] = await settle(ch, admin, BSUID, 1)
        assert ch.received[-1].sender_id == BSUID
        assert _addressed_by_bsuid(reply) == {**ADDRESS, "type": "text",
                                              "text": {"body": "Bonjour Madame, how may I help?"}}
        assert reply["status"] == "read"  # delivered: Meta reads `recipient`
        # the rest of her turn: the assistant's answers to her message
        output = WhatsAppOutput(ch.runtime, ClientRef(ch.runtime.config.phone_number_id, user_id=BSUID), BSUID)
        await output.send_text_with_buttons(BSUID, "Which boutique?", [
            {"title": "Paris", "payload": "/inform{\"boutique\": \"paris\"}"},
            {"title": "London", "payload": "/inform{\"boutique\": \"london\"}"}])
        await output.send_image_url(BSUID, "https://maison-solenne.example/aurore-tote.jpg")
        await output.send_custom_json(BSUID, {"type": "reaction", "reaction": {
            "message_id": sent["wamid"], "emoji": "\u2764"}, "to": "33600000001"})
        box = await settle(ch, admin, BSUID, 4)
        buttons, image, reaction = (_addressed_by_bsuid(m) for m in box[1:])
        assert buttons["type"] == "interactive" and buttons["interactive"]["type"] == "button"
        assert image["type"] == "image"
        assert reaction["type"] == "reaction"  # the payload's own "to" was not kept
        assert all(m["status"] == "read" for m in box)


@pytest.mark.parametrize("merge", ["on", "off"])
async def test_parked_content_its_nudge_and_its_delivery_go_to_recipient(
        settings: Settings, merge: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claire (in the book, utility opt-in) writes from her username: after the window, two
    replies are parked behind one nudge, and her tap brings them (as one message when merging
    is on), all by BSUID."""
    monkeypatch.setenv("SALON_MERGE_REPLIES", merge)
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, user_id=CLAIRE_BSUID, bsuid_only=True, text="Bonjour", name="Claire Laurent")
        await ch.settle()
        clock.advance(timedelta(hours=30))
        output = WhatsAppOutput(ch.runtime)
        await output.send_response(CLAIRE_BSUID, {"text": "Your alteration is ready for fitting."})
        await output.send_response(CLAIRE_BSUID, {"text": "We kept the scarf you liked."})
        [nudge] = await settle(ch, admin, CLAIRE_BSUID, 1)
        assert _addressed_by_bsuid(nudge, CLAIRE_BSUID)["type"] == "template"
        assert nudge["template"] == "advisor_update_nudge" and nudge["status"] == "read"
        await say(admin, user_id=CLAIRE_BSUID, bsuid_only=True, reply_to=nudge["wamid"], button="0")
        expected = (["Your alteration is ready for fitting.\n\nWe kept the scarf you liked."] if merge == "on"
                    else ["Your alteration is ready for fitting.", "We kept the scarf you liked."])
        box = await settle(ch, admin, CLAIRE_BSUID, 1 + len(expected))
        delivered = [_addressed_by_bsuid(m, CLAIRE_BSUID) for m in box[1:]]
        assert [d["text"]["body"] for d in delivered] == expected


async def test_content_for_a_stranger_waits_by_her_bsuid(settings: Settings) -> None:
    """No opt-in, no nudge: the content waits, and goes out by BSUID when she writes."""
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await _username_only(admin, "Où en est ma commande ?")
        await ch.settle()
        clock.advance(timedelta(hours=30))
        # the answer to her message comes after the window closed (a slow turn)
        turn = WhatsAppOutput(ch.runtime, ClientRef(ch.runtime.config.phone_number_id, user_id=BSUID), BSUID)
        await turn.send_response(BSUID, {"text": "Following up."})
        await ch.settle()
        assert await outbox(admin, BSUID) == []
        await _username_only(admin, "Oui ?")
        [delivered] = await settle(ch, admin, BSUID, 1)
        assert _addressed_by_bsuid(delivered)["text"]["body"] == "Following up."


async def test_a_template_to_a_client_with_a_bsuid_opted_in_goes_to_recipient(settings: Settings) -> None:
    """Claire is in the book with a phone and a BSUID; writing from her username only, she is
    found by the BSUID, so the guard uses her book's phone only if the session knows it."""
    clock = ManualClock(T0)
    claire_bsuid = CLAIRE_BSUID
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, user_id=claire_bsuid, bsuid_only=True, text="Bonjour", name="Claire Laurent")
        await ch.settle()
        clock.advance(timedelta(hours=30))
        await WhatsAppOutput(ch.runtime).send_response(claire_bsuid, {
            "text": "Your order SOL-482913 has left the atelier.",
            "metadata": {"purpose": "order_shipped", "wa_params": {"order_ref": "SOL-482913"}}})
        [sent] = await settle(ch, admin, claire_bsuid, 1)
        body = _addressed_by_bsuid(sent, claire_bsuid)
        assert body["type"] == "template" and body["template"]["name"] == "order_shipped"
        assert sent["status"] == "read"


async def test_the_guard_and_the_worker_path_address_a_bsuid_ref(settings: Settings) -> None:
    """What the outbound worker, the advisor desk and re-routes hand the guard: a ClientRef."""
    async with wired(settings) as (ch, emu, admin):
        await _username_only(admin)
        await ch.settle()
        sender = ch.runtime.service.sender  # type: ignore[union-attr]
        pnid = ch.runtime.config.phone_number_id
        outcome = await sender.send(ClientRef(pnid, user_id=BSUID),
                                    OutgoingMessage({"type": "text", "text": {"body": "Your advisor, Sophie"}}))
        assert outcome.action == "free_form"
        box = await outbox(admin, BSUID)
        assert _addressed_by_bsuid(box[-1])["text"]["body"] == "Your advisor, Sophie"
        record = await ch.runtime.service.sent.outbound_by_wamid(outcome.wamid)  # type: ignore[union-attr]
        assert record is not None and record.recipient == BSUID  # the id Meta answered with


async def test_a_phone_known_goes_to_to_even_with_a_bsuid(settings: Settings) -> None:
    async with wired(settings, answer("Good day.")) as (ch, emu, admin):
        await say(admin, **{"from": PHONE, "user_id": BSUID, "text": "Hello", "name": NAME})
        [reply] = await settle(ch, admin, PHONE, 1)
        body = dict(reply["payload"])
        assert body["to"] == PHONE and "recipient" not in body
        assert body["recipient_type"] == "individual"


def test_the_one_addressing_rule() -> None:
    pnid = "100000000000001"
    assert Recipient.of(ClientRef(pnid, user_id=BSUID)).fields() == {
        "recipient_type": "individual", "recipient": BSUID}
    assert Recipient.of(ClientRef(pnid, user_id=BSUID, wa_id=PHONE)).fields() == {
        "recipient_type": "individual", "to": PHONE}
    # an id handed over without its kind is taken for what it is: a BSUID never goes in `to`
    assert Recipient.of(ClientRef(pnid, wa_id=BSUID)).fields()["recipient"] == BSUID


async def test_a_bsuid_in_to_is_accepted_then_lost(settings: Settings) -> None:
    """The emulator behaves as Meta: 200 and a message id, then nothing reaches the client.
    This is the body Salon sent before it addressed BSUIDs by ``recipient``."""
    async with wired(settings) as (ch, emu, admin):
        await _username_only(admin)
        await ch.settle()
        config = GraphConfig(base_url=emu.base_url, phone_number_id=ch.runtime.config.phone_number_id,
                             access_token=emu.config.access_token, api_version=emu.config.api_version)
        graph = GraphClient(config)
        try:
            wrong = await graph.send({"recipient_type": "individual", "to": BSUID, "type": "text",
                                      "text": {"body": "Lost in transit"}})
            right = await graph.send({**Recipient(user_id=BSUID).fields(), "type": "text",
                                      "text": {"body": "Delivered"}})
        finally:
            await graph.close()
        assert wrong.wamid and right.wamid  # both accepted
        async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as r:
            assert (await r.json())["idle"]
        by_wamid = {m["wamid"]: m for m in await outbox(admin, BSUID)}
        assert by_wamid[right.wamid]["status"] in ("delivered", "read")
        lost = by_wamid.get(wrong.wamid)
        assert lost is not None and lost["status"] == "dropped", lost


def test_no_other_code_writes_a_recipient() -> None:
    """The one addressing rule has no bypass: outside the emulator (Meta's side), only
    salon/whatsapp/addressing.py writes a request's ``to`` (a ``params={"to": …}`` is a
    query of the emulator's admin API, not a send)."""
    import re

    from salon.config import PROJECT_ROOT

    key = re.compile(r"""(?<!params=\{)["']to["']\s*:""")
    found: dict[str, int] = {}
    for folder in ("salon", "connectors", "actions", "bench", "scripts"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if relative.startswith("salon/emulator/"):
                continue
            count = len(key.findall(path.read_text(encoding="utf-8")))
            if count:
                found[relative] = count
    assert found == {"salon/whatsapp/addressing.py": 1}


def test_the_number_is_asked_for_in_the_clients_words() -> None:
    asked = contact_request("orders", "fr")
    assert asked["interactive"]["type"] == "request_contact_info"
    assert asked["interactive"]["body"]["text"] == (
        "Je ne sais pas encore qui m'écrit depuis ce compte, je ne peux donc pas voir vos commandes. "
        "Si vous voulez bien me communiquer votre numéro, je vérifie aussitôt.")
    assert contact_request("appointments", "fr")["interactive"]["body"]["text"].endswith(
        "rendez-vous. Si vous voulez bien me communiquer votre numéro, je vérifie aussitôt.")
