"""The console's conversation thread (salon/console/thread.py), on SQLite and PostgreSQL.

Rows are written by the project's own writers: the webhook parser and the inbox's claim
for what the client sends, the outbound record (``SentLog``) for what the maison sends,
with message objects built by the response renderer and the template registry. The last
tests run the whole way: the Cloud API emulator, the webhook pipeline and the send-time
guard write the records, and the thread reads them back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from salon.clock import ManualClock
from salon.config import Settings
from salon.console.thread import ThreadItem, merge, public_link, read_thread, unread_since
from salon.emulator.config import EmulatorConfig
from salon.emulator.testing import running_emulator
from salon.guard.sent import SentLog
from salon.identity import ClientRef
from salon.templates.registry import TemplateChoice, TemplateRegistry
from salon.webhook.inbox import Inbox, InboxItem
from salon.webhook.listener import WEBHOOK_PATH, WebhookListener, bind_listener
from salon.webhook.pipeline import Turn, _echo_item, _inbox_item
from salon.webhook.runtime import ChannelConfig, WhatsAppRuntime
from salon.whatsapp.addressing import Recipient
from salon.whatsapp.errors import NoResponseError, from_status_error, make_error
from salon.whatsapp.messages import OutgoingMessage, render_response
from salon.whatsapp.updates import parse_webhook

PNID = "100000000000001"
OTHER_PNID = "100000000000002"
PHONE = "33600000001"
BSUID = "FR.4820193746581029374"
STRANGER = "33699999999"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
REGISTRY = TemplateRegistry.load_default()

_counter = iter(range(1, 1_000_000))


def _wamid(prefix: str = "IN") -> str:
    return f"wamid.{prefix}{next(_counter):06d}"


# --------------------------------------------------------------------------- writers


@asynccontextmanager
async def stores(database_url: str) -> AsyncIterator[tuple[Inbox, SentLog]]:
    inbox = Inbox(database_url)
    await inbox.initialize()
    sent = SentLog(engine=inbox.engine)
    await sent.initialize()
    try:
        yield inbox, sent
    finally:
        await inbox.close()


def inbound(content: dict[str, Any], at: datetime, *, wa_id: str | None = PHONE, user_id: str | None = None,
            pnid: str = PNID, wamid: str | None = None, context: dict[str, Any] | None = None) -> InboxItem:
    """The inbox row the pipeline claims for this message, through Meta's webhook shape
    and the project's parser."""
    message: dict[str, Any] = {"id": wamid or _wamid(), "timestamp": str(int(at.timestamp())), **content}
    contact: dict[str, Any] = {"profile": {"name": "Claire Laurent"}}
    if wa_id:
        message["from"] = wa_id
        contact["wa_id"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
        contact["user_id"] = user_id
    if context:
        message["context"] = context
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "33100000000", "phone_number_id": pnid},
            "contacts": [contact], "messages": [message]}}]}]}
    batch = parse_webhook(payload)
    assert not batch.rejected, batch.rejected
    [parsed] = batch.messages
    return _inbox_item(parsed)


async def claim(inbox: Inbox, *items: InboxItem) -> None:
    assert all(await inbox.claim_inbound(list(items), T0, owner="test", lease=timedelta(minutes=2)))


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


async def reply(sent: SentLog, message: dict[str, Any], at: datetime, *, recipient: str = PHONE,
                status: str = "accepted", wamid: str | None = None, origin: str | None = None,
                utter_action: str | None = None, error: dict[str, Any] | None = None,
                extra: dict[str, Any] | None = None) -> str | None:
    """A free-form message recorded as the send-time guard records it."""
    payload: dict[str, Any] = {"message": message, "params": {}, **(extra or {})}
    if origin:
        payload["origin"] = origin
    if wamid is None and status not in ("failed", "refused", "parked"):
        wamid = _wamid("OUT")
    await sent.record_outbound(phone_number_id=PNID, recipient=recipient, kind="free_form", status=status,
                               at=at, wamid=wamid, payload=payload, purpose="service_reply",
                               utter_action=utter_action, error=error)
    return wamid


def choice(name: str, language: str, params: dict[str, Any]) -> TemplateChoice:
    built = REGISTRY.build(name, language, params)
    assert isinstance(built, TemplateChoice), built
    return built


async def template_sent(sent: SentLog, built: TemplateChoice, at: datetime, *, kind: str = "template",
                        origin: str | None = None, keep_rendering: bool = True) -> str:
    """A template recorded as the send-time guard records it."""
    message = built.message(Recipient(wa_id=PHONE),
                            biz_opaque_callback_data=f"{origin}#{kind}" if origin else None)
    message.pop("messaging_product", None)
    payload: dict[str, Any] = {"message": message, "original": None, "origin": origin}
    if keep_rendering:
        payload["rendered"] = built.rendered
    wamid = _wamid("TPL")
    await sent.record_outbound(phone_number_id=PNID, recipient=PHONE, kind=kind, status="accepted", at=at,
                               wamid=wamid, payload=payload, template=built.name,
                               purpose=min(built.template.purposes))
    return wamid


async def thread(inbox: Inbox, ids: tuple[str, ...] = (PHONE,), **options: Any) -> list[ThreadItem]:
    return await read_thread(inbox.engine, phone_number_id=PNID, ids=list(ids), registry=REGISTRY, **options)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --------------------------------------------------------------------------- in and out


async def test_a_text_in_and_a_reply_out_whose_ticks_move_sent_delivered_read(database_url: str) -> None:
    async with stores(database_url) as (inbox, sent):
        await claim(inbox, inbound({"type": "text", "text": {"body": "Bonjour, is the Aurore tote in black?"}},
                                   at(0)))
        wamid = await reply(sent, text("Good day, Claire. It is, in Paris."), at(4), utter_action="utter_stock")
        assert wamid is not None
        question, answer = await thread(inbox)
        assert (question.direction, question.author, question.kind, question.text) == (
            "in", "client", "text", "Bonjour, is the Aurore tote in black?")
        assert question.at == at(0) and question.at.tzinfo == timezone.utc
        assert (question.status, question.ticks, question.failure) == (None, 0, None)
        assert (answer.direction, answer.author, answer.kind, answer.text) == (
            "out", "assistant", "text", "Good day, Claire. It is, in Paris.")
        assert (answer.status, answer.ticks, answer.wamid, answer.at) == ("accepted", 0, wamid, at(4))

        for seconds, (status, ticks) in enumerate((("sent", 1), ("delivered", 2), ("read", 3)), start=5):
            change = await sent.apply_status(wamid=wamid, status=status, at=at(seconds), phone_number_id=PNID,
                                             recipient=PHONE)
            assert change.applied
            [_, answer] = await thread(inbox)
            assert (answer.status, answer.ticks) == (status, ticks)
        # Meta's late "delivered" moves nothing back.
        await sent.apply_status(wamid=wamid, status="delivered", at=at(9), phone_number_id=PNID, recipient=PHONE)
        [_, answer] = await thread(inbox)
        assert (answer.status, answer.ticks) == ("read", 3)


async def test_a_131047_failure_and_the_others_read_in_plain_words(database_url: str) -> None:
    async with stores(database_url) as (inbox, sent):
        late = await reply(sent, text("Your piece is ready."), at(0))
        assert late is not None
        # Meta's failed status, parsed as the webhook pipeline parses it.
        error = from_status_error({"code": 131047, "title": "Re-engagement message",
                                   "message": "Re-engagement message", "fbtrace_id": "AbCdEfTrace",
                                   "error_data": {"details": "Message failed to send because more than 24 "
                                                             "hours have passed since the customer last replied"}})
        await sent.apply_status(wamid=late, status="failed", at=at(2), phone_number_id=PNID, recipient=PHONE,
                                error=error.to_dict())
        # Refused by Meta at once (no wamid), never answered, refused by the guard.
        await reply(sent, text("Unreachable"), at(10), status="failed", error=make_error(131026).to_dict())
        await reply(sent, text("In doubt"), at(20), status="failed", error=NoResponseError(-2).to_dict())
        await reply(sent, text("Odd"), at(30), status="failed", error=make_error(987654).to_dict())
        await reply(sent, text("News of the collection"), at(40), status="refused",
                    error={"reason": "no_marketing_opt_in", "detail": ""},
                    extra={"reason": "no_marketing_opt_in", "detail": ""})
        failed, unreachable, doubt, odd, refused = await thread(inbox)
        assert failed.status == "failed" and failed.ticks == 0
        assert failed.failure == ("Not delivered: her 24-hour window had closed, only a template can reach "
                                  "her (131047)")
        assert unreachable.failure == "Not sent: WhatsApp cannot reach her on this number (131026)"
        assert doubt.failure == "In doubt: WhatsApp did not answer, it may have reached her"
        assert odd.failure == "Not sent: WhatsApp reported an error (987654)"
        assert refused.status == "refused"
        assert refused.failure == "Not sent: she has not agreed to marketing messages"
        for item in (failed, unreachable, doubt, odd, refused):
            assert "AbCdEfTrace" not in repr(item) and "24 hours have passed" not in repr(item)


async def test_a_template_reads_as_whatsapp_shows_it(database_url: str) -> None:
    shipped = choice("order_shipped", "fr", {"first_name": "Claire", "order_ref": "SOL-482913"})
    reminder = choice("appointment_reminder", "en", {"first_name": "Claire", "boutique": "Paris",
                                                      "date": "Tuesday 3 March", "time": "15:00"})
    async with stores(database_url) as (inbox, sent):
        await template_sent(sent, shipped, at(0), origin="ob:42:1")
        # Records without the rendering kept: rendered again by the registry.
        await template_sent(sent, shipped, at(10), keep_rendering=False)
        await template_sent(sent, reminder, at(20), keep_rendering=False)
        # A template the registry does not know: named, with its parameters, never guessed.
        unknown = {"type": "template", "template": {"name": "atelier_closing", "language": {"code": "fr"},
                   "components": [{"type": "body", "parameters": [{"type": "text", "text": "Claire"},
                                                                 {"type": "text", "text": "18:00"}]}]}}
        await sent.record_outbound(phone_number_id=PNID, recipient=PHONE, kind="template", status="accepted",
                                   at=at(30), wamid=_wamid("TPL"), template="atelier_closing",
                                   payload={"message": unknown, "original": None, "origin": None})
        kept, again, named, stranger = await thread(inbox)
    seen = ("Votre commande SOL-482913\n"
            "Bonjour Claire, votre commande SOL-482913 a quitté notre atelier et est en route vers vous.")
    for item in (kept, again):
        assert (item.kind, item.author, item.template, item.text) == ("template", "assistant", "order_shipped", seen)
        assert item.buttons == ("Suivre ma commande",)
    assert "ob:42:1" not in repr(kept)
    assert named.text == ("Claire, a gentle reminder of your appointment at our Paris boutique on Tuesday 3 March "
                          "at 15:00. We look forward to welcoming you.")
    assert named.buttons == ("Confirm", "Change the time")
    assert (stranger.kind, stranger.text, stranger.buttons) == ("template", "template atelier_closing (Claire, 18:00)", ())


async def test_a_template_with_a_media_header_shows_the_media_without_its_signature(database_url: str) -> None:
    registry = TemplateRegistry.from_mapping({"default_language": "en", "templates": [{
        "name": "new_look", "category": "MARKETING", "purposes": ["new_collection"], "parameter_format": "named",
        "translations": {"en": {"status": "APPROVED", "components": [
            {"type": "HEADER", "format": "IMAGE"},
            {"type": "BODY", "text": "{{first_name}}, the spring looks are here."},
            {"type": "FOOTER", "text": "Reply STOP to opt out"}]}}}]})
    link = "https://cdn.maison-solenne.example/looks/spring.jpg?X-Amz-Signature=f00d&X-Amz-Credential=k3y"
    built = registry.build("new_look", "en", {"first_name": "Claire", "header_image": link})
    assert isinstance(built, TemplateChoice)
    message = built.message(Recipient(wa_id=PHONE))
    async with stores(database_url) as (inbox, sent):
        await sent.record_outbound(phone_number_id=PNID, recipient=PHONE, kind="template", status="accepted",
                                   at=at(0), wamid=_wamid("TPL"), template="new_look",
                                   payload={"message": message, "original": None, "origin": None})
        [item] = await read_thread(inbox.engine, phone_number_id=PNID, ids=[PHONE], registry=registry)
    assert item.text == "Claire, the spring looks are here.\nReply STOP to opt out"
    assert item.media == {"type": "image", "caption": "", "link": "https://cdn.maison-solenne.example/looks/spring.jpg"}
    assert "f00d" not in repr(item) and "k3y" not in repr(item)


def _one_template(body: str) -> TemplateRegistry:
    return TemplateRegistry.from_mapping({"default_language": "en", "templates": [{
        "name": "fitting_ready", "category": "UTILITY", "purposes": ["aftercare_update"],
        "parameter_format": "named", "translations": {"en": {"status": "APPROVED", "components": [
            {"type": "BODY", "text": body}]}}}]})


async def test_a_template_edited_since_reads_as_it_was_sent(database_url: str) -> None:
    before = _one_template("{{first_name}}, your piece is ready for its fitting.")
    after = _one_template("{{first_name}}, your piece awaits you at the boutique.")
    built = before.build("fitting_ready", "en", {"first_name": "Claire"})
    assert isinstance(built, TemplateChoice)
    async with stores(database_url) as (inbox, sent):
        await template_sent(sent, built, at(0))
        await template_sent(sent, built, at(1), keep_rendering=False)
        kept, again = await read_thread(inbox.engine, phone_number_id=PNID, ids=[PHONE], registry=after)
    assert kept.text == "Claire, your piece is ready for its fitting."
    # Without the rendering kept, the registry's current text is all there is.
    assert again.text == "Claire, your piece awaits you at the boutique."


async def test_parked_content_behind_a_nudge_then_delivered_later(database_url: str) -> None:
    content = text("Sophie here: the black Aurore is set aside for you in Paris.")
    async with stores(database_url) as (inbox, sent):
        await claim(inbox, inbound({"type": "text", "text": {"body": "Bonjour"}}, at(0)))
        # 25 hours later the window is closed: the content is parked, one nudge knocks.
        later = timedelta(hours=25)
        await reply(sent, content, at(0) + later, status="parked", origin="advisor:sophie",
                    extra={"parked_id": "a1b2c3d4e5f6a7b8", "reason": "window_closed"})
        nudge = choice("advisor_update_nudge", "en", {"first_name": "Claire", "nudge_ref": "a1b2c3d4e5f6a7b8"})
        nudge_wamid = await template_sent(sent, nudge, at(1) + later, kind="nudge")
        first, parked, knock = await thread(inbox)
        assert first.text == "Bonjour"
        assert (parked.parked, parked.delivered_later, parked.status, parked.ticks) == (True, False, "parked", 0)
        assert (parked.author, parked.advisor, parked.text, parked.failure) == (
            "advisor", "sophie", "Sophie here: the black Aurore is set aside for you in Paris.", None)
        assert (knock.kind, knock.author, knock.template, knock.wamid) == (
            "nudge", "system", "advisor_update_nudge", nudge_wamid)
        assert knock.text == ("Good day Claire, your client advisor at Maison Solenne has an update on your "
                              "request.\nMaison Solenne")
        assert knock.buttons == ("View update",)
        assert "a1b2c3d4e5f6a7b8" not in repr(knock)

        # She taps the nudge; the parked content goes out.
        await claim(inbox, inbound({"type": "button", "button": {"payload": "a1b2c3d4e5f6a7b8",
                                                                 "text": "View update"}},
                                   at(60) + later, context={"from": "33100000000", "id": nudge_wamid}))
        delivered = await reply(sent, content, at(62) + later, origin="advisor:sophie")
        assert delivered is not None
        await sent.apply_status(wamid=delivered, status="read", at=at(70) + later, phone_number_id=PNID,
                                recipient=PHONE)
        first, knock, tap, out = await thread(inbox)
        assert knock.kind == "nudge" and (tap.kind, tap.text, tap.author) == ("interactive", "View update", "client")
        assert (out.delivered_later, out.parked, out.ticks, out.at) == (True, False, 3, at(62) + later)
        assert (out.author, out.advisor, out.text) == ("advisor", "sophie", parked.text)


async def test_each_parked_item_is_delivered_once_and_by_its_id_when_recorded(database_url: str) -> None:
    twice = text("Noted, thank you.")
    async with stores(database_url) as (inbox, sent):
        await reply(sent, twice, at(0), status="parked", extra={"parked_id": "p1", "reason": "window_closed"})
        await reply(sent, twice, at(1), status="parked", extra={"parked_id": "p2", "reason": "window_closed"})
        await reply(sent, text("Your alteration is ready."), at(2), status="parked",
                    extra={"parked_id": "p3", "reason": "window_closed"})
        # One copy went out: the first parked item is delivered, the second still waits.
        await reply(sent, twice, at(30))
        # A delivery that names the parked item it carries.
        await reply(sent, text("Your alteration is ready."), at(31), extra={"parked_id": "p3"})
        items = await thread(inbox)
    assert [(i.text, i.parked, i.delivered_later) for i in items] == [
        ("Noted, thank you.", True, False),
        ("Noted, thank you.", False, True),
        ("Your alteration is ready.", False, True),
    ]
    assert items[0].at == at(1)


async def test_an_image_with_its_caption_both_ways(database_url: str) -> None:
    link = "https://cdn.maison-solenne.example/aurore-black.jpg?token=s3cr3t#top"
    async with stores(database_url) as (inbox, sent):
        await claim(inbox, inbound({"type": "image", "image": {
            "id": "1480326919618723", "mime_type": "image/jpeg", "sha256": "K1q2w3e4r5t6y7u8i9o0",
            "caption": "This one, in black?"}}, at(0)))
        [out] = render_response({"attachment": {"type": "image", "link": link, "caption": "The Aurore in black"}})
        await reply(sent, out.message, at(5))
        photo, answer = await thread(inbox)
    assert (photo.kind, photo.text, photo.author) == ("media", "This one, in black?", "client")
    assert photo.media == {"type": "image", "caption": "This one, in black?", "id": "1480326919618723"}
    assert (answer.kind, answer.text) == ("media", "The Aurore in black")
    assert answer.media == {"type": "image", "caption": "The Aurore in black",
                            "link": "https://cdn.maison-solenne.example/aurore-black.jpg"}
    assert "s3cr3t" not in repr(answer)
    assert public_link("https://user:pw@example.com:8443/a/b?sig=1") == "https://example.com:8443/a/b"


async def test_buttons_a_list_and_a_tap_on_a_button(database_url: str) -> None:
    [buttons] = render_response({"text": "Which boutique suits you?", "buttons": [
        {"title": "Paris", "payload": '/inform{"boutique": "paris"}'},
        {"title": "London", "payload": '/inform{"boutique": "london"}'}]})
    [rows] = render_response({"text": "Which day?", "buttons": [
        {"title": day, "payload": f"/inform{{\"day\": \"{day}\"}}"}
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday")]})
    async with stores(database_url) as (inbox, sent):
        asked = await reply(sent, buttons.message, at(0))
        await claim(inbox, inbound({"type": "interactive", "interactive": {
            "type": "button_reply", "button_reply": {"id": '/inform{"boutique": "paris"}', "title": "Paris"}}},
            at(9), context={"from": "33100000000", "id": asked}))
        await reply(sent, rows.message, at(10))
        question, tap, days = await thread(inbox)
    assert (question.kind, question.text, question.buttons) == ("interactive", "Which boutique suits you?",
                                                                ("Paris", "London"))
    assert (tap.direction, tap.kind, tap.text) == ("in", "interactive", "Paris")
    assert (days.kind, days.text, days.buttons) == ("interactive", "Which day?",
                                                    ("Monday", "Tuesday", "Wednesday", "Thursday"))


async def test_an_advisors_reply_is_attributed(database_url: str) -> None:
    async with stores(database_url) as (inbox, sent):
        await reply(sent, text("Good day."), at(0), utter_action="utter_greet")
        await reply(sent, text("Sophie here, I set it aside."), at(1), origin="advisor:sophie",
                    utter_action="advisor_reply")
        await reply(sent, text("It is ready."), at(2), utter_action="advisor_reply")
        await reply(sent, text("Your request is being handled."), at(3), origin="ob:17:1")
        assistant, sophie, desk, queued = await thread(inbox)
    assert (assistant.author, assistant.advisor) == ("assistant", None)
    assert (sophie.author, sophie.advisor) == ("advisor", "sophie")
    assert (desk.author, desk.advisor) == ("advisor", None)
    assert (queued.author, queued.advisor) == ("assistant", None)
    assert "ob:17:1" not in repr(queued)


async def test_order_limit_and_what_the_client_sends_besides_text(database_url: str) -> None:
    async with stores(database_url) as (inbox, sent):
        await claim(
            inbox,
            inbound({"type": "location", "location": {"latitude": 48.8686, "longitude": 2.3295,
                                                      "name": "Maison Solenne", "address": "12 rue Cambon"}}, at(0)),
            inbound({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "\u2764\ufe0f"}}, at(20)),
            inbound({"type": "contacts", "contacts": [{"name": {"formatted_name": "Inès Moreau"},
                                                       "phones": [{"phone": "+33 6 11 22 33 44"}]}]}, at(40)),
            inbound({"type": "order", "order": {"catalog_id": "123", "text": "For Saturday", "product_items": [
                {"product_retailer_id": "AUR-TOTE-BLK", "quantity": 1, "item_price": 2400, "currency": "EUR"}]}},
                at(60)),
        )
        # Our reply at the very second of her message still comes after it.
        for seconds in (0, 20, 40, 60):
            await reply(sent, text(f"reply {seconds}"), at(seconds))
        everything = await thread(inbox)
        newest = await thread(inbox, limit=3)
        with pytest.raises(ValueError):
            await thread(inbox, limit=0)
    assert [(i.direction, i.kind) for i in everything] == [
        ("in", "location"), ("out", "text"), ("in", "reaction"), ("out", "text"),
        ("in", "contacts"), ("out", "text"), ("in", "order"), ("out", "text")]
    assert [i.at for i in everything] == sorted(i.at for i in everything)
    assert everything[0].text == "Maison Solenne, 12 rue Cambon"
    assert everything[2].text == "\u2764\ufe0f"
    assert everything[4].text == "Inès Moreau"
    assert everything[6].text == "For Saturday\nOrder: 1 × AUR-TOTE-BLK"
    assert newest == everything[-3:]


async def test_her_number_and_her_bsuid_are_one_thread(database_url: str) -> None:
    async with stores(database_url) as (inbox, sent):
        await claim(
            inbox,
            inbound({"type": "text", "text": {"body": "From my phone"}}, at(0)),
            inbound({"type": "text", "text": {"body": "From my username"}}, at(20), wa_id=None, user_id=BSUID),
            inbound({"type": "text", "text": {"body": "Someone else"}}, at(30), wa_id=STRANGER),
            inbound({"type": "text", "text": {"body": "Another number of ours"}}, at(40), pnid=OTHER_PNID),
        )
        await reply(sent, text("To her phone"), at(10))
        await reply(sent, text("To her username"), at(25), recipient=BSUID)
        await reply(sent, text("To someone else"), at(35), recipient=STRANGER)
        await sent.record_outbound(phone_number_id=OTHER_PNID, recipient=PHONE, kind="free_form", status="accepted",
                                   at=at(45), wamid=_wamid("OUT"), payload={"message": text("From another number")})
        # A status for a message we have no record of (sent by another system) is no message.
        await sent.apply_status(wamid="wamid.NOT_OURS", status="delivered", at=at(50), phone_number_id=PNID,
                                recipient=PHONE)
        both = await thread(inbox, (PHONE, BSUID))
        bsuid_only = await thread(inbox, (BSUID,))
        with_plus = await thread(inbox, (f"+{PHONE}",))
        nobody = await thread(inbox, ())
    assert [i.text for i in both] == ["From my phone", "To her phone", "From my username", "To her username"]
    assert [i.text for i in bsuid_only] == ["From my username", "To her username"]
    assert [i.text for i in with_plus] == ["From my phone", "To her phone"]
    assert nobody == []


# --------------------------------------------------------------------------- pure helpers


def test_merge_puts_transcript_lines_in_time_order_once() -> None:
    said = ThreadItem(at=at(0), direction="in", author="client", kind="text", text="I want to speak to Sophie",
                      wamid="wamid.A")
    answer = ThreadItem(at=at(10), direction="out", author="assistant", kind="text", text="Of course.",
                        status="read", ticks=3, wamid="wamid.B")
    handed = ThreadItem(at=at(5), direction="out", author="system", kind="other", text="Handed to an advisor")
    same_instant = ThreadItem(at=at(10), direction="out", author="system", kind="other", text="Sophie opened it")
    typed = ThreadItem(at=at(8).astimezone(timezone(timedelta(hours=1))), direction="out", author="advisor",
                       advisor="sophie", kind="text", text="Typed on the phone", wamid="wamid.C")
    duplicate = ThreadItem(at=at(10), direction="out", author="assistant", kind="text", text="Of course.",
                           wamid="wamid.B")
    merged = merge([said, answer], [same_instant, typed, handed, duplicate])
    assert [i.text for i in merged] == ["I want to speak to Sophie", "Handed to an advisor", "Typed on the phone",
                                        "Of course.", "Sophie opened it"]
    assert merged[2].at == at(8) and merged[2].at.tzinfo == timezone.utc
    assert merge([said], []) == [said]


def test_unread_since_counts_her_messages_only() -> None:
    items = [
        ThreadItem(at=at(0), direction="in", author="client", kind="text", text="Hello"),
        ThreadItem(at=at(5), direction="out", author="advisor", advisor="sophie", kind="text", text="Good day"),
        ThreadItem(at=at(9), direction="in", author="system", kind="other", text="She changed her phone number"),
        ThreadItem(at=at(10), direction="in", author="client", kind="text", text="Is it ready?"),
        ThreadItem(at=at(11), direction="in", author="client", kind="media", text="",
                   media={"type": "image", "caption": "", "id": "1"}),
    ]
    assert [i.text for i in unread_since(items, at(5))] == ["Is it ready?", ""]
    assert len(unread_since(items, None)) == 3
    assert unread_since(items, at(11)) == []
    with pytest.raises(ValueError):
        unread_since(items, datetime(2026, 3, 2, 9, 0))  # noqa: DTZ001 - naive on purpose


def test_an_item_is_aware_utc_and_of_a_known_kind() -> None:
    with pytest.raises(ValueError):
        ThreadItem(at=datetime(2026, 3, 2, 9, 0), direction="in", author="client", kind="text", text="x")  # noqa: DTZ001
    with pytest.raises(ValueError):
        ThreadItem(at=at(0), direction="in", author="client", kind="poll", text="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ThreadItem(at=at(0), direction="out", author="assistant", kind="text", text="x", ticks=4)


# --------------------------------------------------------------------------- the whole way


@asynccontextmanager
async def live(database_url: str, tmp_path: Path, *, salon_clock: ManualClock, meta_clock: ManualClock,
               on_turn: Callable[[WhatsAppRuntime, Turn], Awaitable[None]] | None = None,
               ) -> AsyncIterator[tuple[WhatsAppRuntime, aiohttp.ClientSession]]:
    """The emulator posting signed webhooks to the channel's pipeline (on its own port),
    the send-time guard sending to the emulator, the stores on ``database_url``."""
    config = EmulatorConfig(status_sent_delay=0.01, status_delivered_delay=0.02, status_read_delay=0.03)
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=database_url, redis_url=None)
    async with running_emulator(config, clock=meta_clock) as emu:
        channel = ChannelConfig.from_mapping({
            "verify_token": "console-thread-verify", "app_secret": config.app_secret,
            "access_token": config.access_token, "phone_number_id": config.phone_number_id,
            "waba_id": config.waba_id, "api_base_url": emu.base_url, "io_process": False})
        runtime = WhatsAppRuntime(channel, settings=settings, clock=salon_clock)

        async def turn(message: Turn) -> None:
            if on_turn is not None:
                await on_turn(runtime, message)

        await runtime.start(turn)
        sock = bind_listener("127.0.0.1", 0)
        listener = WebhookListener(runtime, sock)
        await listener.start()
        try:
            port = sock.getsockname()[1]
            async with aiohttp.ClientSession(base_url=emu.base_url) as admin:
                async with admin.post("/_emulator/config", json={
                        "webhook_url": f"http://127.0.0.1:{port}{WEBHOOK_PATH}"}) as answer:
                    assert answer.status == 200, await answer.text()
                yield runtime, admin
        finally:
            await listener.close()
            await runtime.close()


async def say(runtime: WhatsAppRuntime, admin: aiohttp.ClientSession, **body: Any) -> dict[str, Any]:
    """The client writes; returns once her webhook is answered and her turn is over."""
    async with admin.post("/_emulator/inbound", json={"from": PHONE, "name": "Claire Laurent", **body}) as answer:
        assert answer.status == 200, await answer.text()
        sent = dict(await answer.json())
    async with admin.post("/_emulator/wait_idle", json={"timeout": 10}) as answer:
        assert (await answer.json())["idle"]
    assert runtime.service is not None and await runtime.service.drain(timeout=20)
    return sent


async def eventually(runtime: WhatsAppRuntime, check: Callable[[list[ThreadItem]], bool]) -> list[ThreadItem]:
    items: list[ThreadItem] = []
    assert runtime.engine is not None
    for _ in range(200):
        items = await read_thread(runtime.engine, phone_number_id=PNID, ids=[PHONE], registry=REGISTRY)
        if check(items):
            return items
        await asyncio.sleep(0.05)
    raise AssertionError(items)


def _settled(count: int) -> Callable[[list[ThreadItem]], bool]:
    return lambda items: len(items) == count and all(
        i.direction == "in" or i.status in ("read", "failed", "parked", "refused") for i in items)


async def test_the_whole_way_a_conversation_a_nudge_and_parked_content(database_url: str, tmp_path: Path) -> None:
    clock = ManualClock(T0)

    async def assistant(runtime: WhatsAppRuntime, turn: Turn) -> None:
        if turn.text == "Bonjour":
            await runtime.send(turn.client, {"text": "Good day, Claire. Which boutique suits you?", "buttons": [
                {"title": "Paris", "payload": '/inform{"boutique": "paris"}'},
                {"title": "London", "payload": '/inform{"boutique": "london"}'}]}, client_turn=True)

    async with live(database_url, tmp_path, salon_clock=clock, meta_clock=clock, on_turn=assistant) as (runtime, admin):
        ref = ClientRef(PNID, wa_id=PHONE)
        assert runtime.service is not None and runtime.sender is not None
        # She agreed to hear from the maison (the nudge needs it).
        await runtime.service.consents.record_keyword(ref, "start", "START", clock.now())
        await say(runtime, admin, text="Bonjour")
        items = await eventually(runtime, _settled(2))
        question = items[1]
        assert question.wamid is not None and question.buttons == ("Paris", "London")
        clock.advance(timedelta(seconds=30))
        await say(runtime, admin, reply_to=question.wamid, button="0")
        clock.advance(timedelta(seconds=30))
        await say(runtime, admin, type="image", caption="This one, in black?")

        # Her window closes; Sophie's reply is parked behind the nudge, an order update
        # goes as its approved template.
        clock.advance(timedelta(hours=25))
        parked = await runtime.sender.send(ref, OutgoingMessage(
            text("Sophie here: the black one is set aside for you in Paris."), origin="advisor:sophie",
            utter_action="advisor_reply"))
        assert parked.action == "parked" and parked.nudge_wamid is not None
        clock.advance(timedelta(minutes=1))
        await runtime.send(ref, {"text": "Your order has left the atelier.", "metadata": {
            "purpose": "order_shipped", "wa_params": {"order_ref": "SOL-482913"}}})
        items = await eventually(runtime, _settled(7))
        assert [(i.direction, i.author, i.kind) for i in items] == [
            ("in", "client", "text"), ("out", "assistant", "interactive"), ("in", "client", "interactive"),
            ("in", "client", "media"), ("out", "advisor", "text"), ("out", "system", "nudge"),
            ("out", "assistant", "template")]
        hello, question, tap, photo, held, nudge, shipped = items
        assert (hello.text, tap.text) == ("Bonjour", "Paris")
        assert question.ticks == 3 and question.status == "read"
        assert photo.text == "This one, in black?" and photo.media is not None and photo.media["type"] == "image"
        assert "id" in photo.media or "link" in photo.media
        assert (held.parked, held.advisor, held.status) == (True, "sophie", "parked")
        assert nudge.wamid == parked.nudge_wamid and nudge.buttons == ("View update",)
        assert nudge.text == ("Good day Claire, your client advisor at Maison Solenne has an update on your "
                              "request.\nMaison Solenne")
        assert shipped.template == "order_shipped" and shipped.ticks == 3
        assert shipped.text == ("Your order SOL-482913\n"
                                "Claire, your order SOL-482913 has left our atelier and is on its way to you.")
        assert shipped.buttons == ("Track my order",)

        # She taps the nudge: the parked reply goes out, and reads as delivered later.
        clock.advance(timedelta(minutes=5))
        await say(runtime, admin, reply_to=nudge.wamid, button="0")
        items = await eventually(runtime, _settled(8))
        assert [i.kind for i in items[-3:]] == ["template", "interactive", "text"]
        knock, out = items[-2], items[-1]
        assert (knock.direction, knock.text) == ("in", "View update")
        assert (out.delivered_later, out.parked, out.author, out.advisor, out.ticks) == (True, False, "advisor",
                                                                                         "sophie", 3)
        assert out.text == "Sophie here: the black one is set aside for you in Paris."
        assert not any(i.parked for i in items)
        assert unread_since(items, tap.at) == [photo, knock]
        # The copy that went out names the parked item it delivered, not just its words.
        assert runtime.sender is not None
        delivered = await runtime.sender.sent.outbound_by_wamid(str(out.wamid))
        assert delivered is not None and delivered.payload["parked_id"] == parked.extra["parked_id"]


async def test_the_whole_way_an_asynchronous_131047(database_url: str, tmp_path: Path) -> None:
    # Meta's clock and ours disagree: we believe her window open, Meta does not.
    salon_clock, meta_clock = ManualClock(T0), ManualClock(T0)
    async with live(database_url, tmp_path, salon_clock=salon_clock, meta_clock=meta_clock) as (runtime, admin):
        ref = ClientRef(PNID, wa_id=PHONE)
        assert runtime.service is not None
        await runtime.service.consents.record_keyword(ref, "start", "START", salon_clock.now())
        await say(runtime, admin, text="Bonjour")
        meta_clock.advance(timedelta(hours=25))
        salon_clock.advance(timedelta(hours=1))
        await runtime.send(ref, {"text": "Your piece is ready."})
        items = await eventually(runtime, lambda items: any(i.kind == "nudge" and i.ticks == 3 for i in items))
        failed = next(i for i in items if i.status == "failed")
        assert failed.text == "Your piece is ready." and failed.wamid is not None
        assert failed.failure == ("Not delivered: her 24-hour window had closed, only a template can reach "
                                  "her (131047)")
        # Its content, decided again, waits behind the nudge.
        held = next(i for i in items if i.parked)
        assert held.text == "Your piece is ready." and items.index(held) > items.index(failed)


async def test_what_an_advisor_typed_on_the_phone_is_the_advisors(database_url: str) -> None:
    """A coexistence echo is claimed in wa_inbox beside her messages: the thread shows it
    as her advisor's, from the phone, and it is not something of hers left unread."""
    echo = {"object": "whatsapp_business_account", "entry": [{"id": "200000000000001", "changes": [{
        "field": "smb_message_echoes", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "33100000000", "phone_number_id": PNID},
            "message_echoes": [{"from": "33100000000", "to": PHONE, "id": _wamid("ECHO"),
                                "timestamp": str(int(at(10).timestamp())), "type": "text",
                                "text": {"body": "Je vous appelle dans cinq minutes."}}]}}]}]}
    batch = parse_webhook(echo)
    assert not batch.rejected and len(batch.echoes) == 1
    async with stores(database_url) as (inbox, _):
        await claim(inbox, inbound({"type": "text", "text": {"body": "Bonjour Sophie"}}, at(0)),
                    _echo_item(batch.echoes[0]))
        items = await thread(inbox, (PHONE,))
    assert [(i.direction, i.author, i.advisor, i.text) for i in items] == [
        ("in", "client", None, "Bonjour Sophie"),
        ("out", "advisor", "phone", "Je vous appelle dans cinq minutes.")]
    assert [i.text for i in unread_since(items, None)] == ["Bonjour Sophie"]


async def test_an_older_inbox_gets_the_index_the_thread_reads_by(database_url: str) -> None:
    """The thread reads wa_inbox by sender: a table made before that index gets it."""
    from sqlalchemy import inspect
    from sqlalchemy import text as sql

    inbox = Inbox(database_url)
    try:
        await inbox.initialize()
        async with inbox.engine.begin() as conn:
            await conn.execute(sql("DROP INDEX ix_wa_inbox_sender"))
        await inbox.initialize()
        await inbox.initialize()  # and again: nothing to add
        async with inbox.engine.connect() as conn:
            names = await conn.run_sync(lambda sync: {i["name"] for i in inspect(sync).get_indexes("wa_inbox")})
    finally:
        await inbox.close()
    assert "ix_wa_inbox_sender" in names
