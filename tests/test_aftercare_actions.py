"""The aftercare form: the piece read against the catalog, the issue, a photo taken from
the channel's attachment metadata (or none), and the repair request opened in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import backends
from actions.aftercare import ActionAskRepairPhotos, ActionOpenRepairRequest, ValidateAftercareForm
from salon.clock import SystemClock, write_offset_file
from tests.action_support import sealed_for
from tests.seeding import seed_maison

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
CLAIRE = "33600000001"
STRANGER = "447700900999"
FORM = ["repair_item", "repair_issue", "repair_photos"]
DOMAIN: dict[str, Any] = {"forms": {"aftercare_form": {"required_slots": FORM}},
                          "slots": {name: {} for name in FORM}}
PHOTO = {"id": "1046573827461", "mime_type": "image/jpeg", "sha256": "abc", "type": "image"}


@pytest.fixture()
def maison(sqlite_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    seed_maison(sqlite_url)
    clock_file = tmp_path / "clock.json"
    write_offset_file(clock_file, NOW - SystemClock().now())
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("SALON_CLOCK_FILE", str(clock_file))
    backends.reset()
    yield sqlite_url
    backends.reset()




def tracker(slots: dict[str, Any] | None = None, *, text: str = "", intent: str = "inform",
            candidates: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
            sender: str = CLAIRE) -> Tracker:
    events: list[dict[str, Any]] = [{"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()]
    return Tracker(sender_id=sender, slots={**(slots or {}), **(candidates or {})},
                   latest_message={"text": text, "intent": {"name": intent}, "entities": [],
                                   "metadata": sealed_for(sender, **(metadata or {}))},
                   events=events, paused=False, followup_action=None,
                   active_loop={"name": "aftercare_form"}, latest_action_name="action_listen")


async def validate(candidates: dict[str, Any], **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateAftercareForm().run(dispatcher, tracker(candidates=candidates, **kwargs), DOMAIN)
    return events, dispatcher.messages


async def test_the_piece_and_the_issue(maison: str) -> None:
    assert await validate({"repair_item": "my Astre bracelet"}) == (
        [SlotSet("repair_item", "Astre bracelet")], [])  # the catalog's name
    assert await validate({"repair_item": "an old family brooch"}) == (
        [SlotSet("repair_item", "old family brooch")], [])  # not ours: kept as said, without "an"
    assert await validate({"repair_item": "The Alma bag"}) == (
        [SlotSet("repair_item", "Alma bag")], [])  # said back as "your Alma bag"
    assert await validate({"repair_item": "/deny"}) == ([SlotSet("repair_item", None)], [])
    assert await validate({"repair_issue": "the clasp is broken"}) == (
        [SlotSet("repair_issue", "the clasp is broken")], [])
    assert await validate({"repair_issue": "no"}) == ([SlotSet("repair_issue", None)], [])


async def test_a_photo_comes_from_the_attachment_or_none_is_said(maison: str) -> None:
    events, messages = await validate({"repair_photos": "/share_media"}, text="/share_media",
                                      intent="share_media", metadata={"attachment": PHOTO})
    assert (events, messages) == ([SlotSet("repair_photos", [PHOTO])], [])
    assert await validate({"repair_photos": "/deny"}, text="/deny", intent="deny") == (
        [SlotSet("repair_photos", [])], [])
    # Neither: nothing said by the validation; the form asks again, once.
    assert await validate({"repair_photos": "hmm"}, text="hmm", intent="out_of_scope") == (
        [SlotSet("repair_photos", None)], [])
    dispatcher = CollectingDispatcher()
    await ActionAskRepairPhotos().run(dispatcher, tracker({"language": "fr", "requested_slot": "repair_issue"}), {})
    assert [(m["text"], [b["title"] for b in m["buttons"]]) for m in dispatcher.messages] == [(
        "Merci. Pourriez-vous m'envoyer une photo ? Elle sera précieuse pour notre atelier.", ["Sans photo"])]


@pytest.mark.parametrize(("text", "intent", "asked"), [
    ("yes", "affirm", 'Please send it here whenever you are ready, or choose "No photo".'),
    ("hmm", "out_of_scope", 'Could you send me a photo, or choose "No photo"?'),
    ("thanks", "thank", 'Could you send me a photo, or choose "No photo"?'),
])
async def test_the_photo_asked_again_is_one_message_that_heard_her(
        maison: str, text: str, intent: str, asked: str) -> None:
    dispatcher = CollectingDispatcher()
    await ActionAskRepairPhotos().run(dispatcher, tracker(
        {"language": "en", "requested_slot": "repair_photos"}, text=text, intent=intent), {})
    assert [(m["text"], [b["title"] for b in m["buttons"]]) for m in dispatcher.messages] == [
        (asked, ["No photo"])]


async def test_the_repair_request_is_opened_for_the_client(maison: str) -> None:
    slots = {"repair_item": "Astre bracelet", "repair_issue": "the clasp is broken", "repair_photos": [PHOTO]}
    dispatcher = CollectingDispatcher()
    events = await ActionOpenRepairRequest().run(dispatcher, tracker(slots), {})
    assert events == [SlotSet("repair_item", None), SlotSet("repair_issue", None),
                      SlotSet("repair_photos", None)]
    [message] = dispatcher.messages
    reference = message["text"].split("repair request ", 1)[1].split(" ", 1)[0]
    assert message["text"] == (f"Thank you. Your repair request {reference} for your Astre bracelet is "
                               "open; Sophie will come back to you here with our atelier's assessment.")
    request = await (await backends.repairs()).get(reference)
    assert request is not None and reference.startswith("REP-20261126-")
    assert (request.client_id, request.advisor_id, request.boutique_id, request.status) == (
        "C-001", "sophie-marchand", "paris", "open")
    assert request.photos == (PHOTO,) and request.issue == "the clasp is broken"
    # Someone unknown: opened all the same, without a client record.
    dispatcher = CollectingDispatcher()
    await ActionOpenRepairRequest().run(dispatcher, tracker({**slots, "repair_photos": []}, sender=STRANGER), {})
    assert "is open; one of our client advisors will come back to you here" in dispatcher.messages[0]["text"]


async def test_aftercare_in_italian(maison: str) -> None:
    italian = {"language": "it"}
    dispatcher = CollectingDispatcher()
    await ActionAskRepairPhotos().run(dispatcher, tracker({**italian, "requested_slot": "repair_photos"},
                                                          text="boh", intent="out_of_scope"), {})
    assert [m["text"] for m in dispatcher.messages] == ["Potrebbe inviarmi una foto, oppure scegliere «Senza foto»?"]
    dispatcher = CollectingDispatcher()
    await ActionAskRepairPhotos().run(dispatcher, tracker({**italian, "requested_slot": "repair_issue"}), {})
    assert [(m["text"], [b["title"] for b in m["buttons"]]) for m in dispatcher.messages] == [(
        "Grazie. Potrebbe inviarmi una foto? È di grande aiuto per il nostro atelier.", ["Senza foto"])]
    slots = {**italian, "repair_item": "Astre bracelet", "repair_issue": "la chiusura è rotta",
             "repair_photos": []}
    dispatcher = CollectingDispatcher()
    await ActionOpenRepairRequest().run(dispatcher, tracker(slots, text="no"), {})
    [message] = dispatcher.messages
    reference = message["text"].split("riparazione ", 1)[1].split(" ", 1)[0]
    assert message["text"] == (f"Grazie. La Sua richiesta di riparazione {reference} (Astre bracelet) è "
                               "stata registrata; Sophie Le farà sapere qui il parere del nostro atelier.")
    dispatcher = CollectingDispatcher()
    await ActionOpenRepairRequest().run(dispatcher, tracker({**slots, "language": "fr"}, sender=STRANGER), {})
    assert dispatcher.messages[0]["text"].endswith(
        "est ouverte ; l'un de nos conseillers vous transmettra ici l'avis de notre atelier.")
