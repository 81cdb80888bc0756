"""The event RSVP form and the withdrawal with rasa_sdk trackers and CollectingDispatcher,
against the seeded maison in SQLite (the real events port and CRM adapter), at a fixed
moment given through the clock file every process follows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select, update

from actions import backends
from actions.events import (
    ActionAskRsvpConfirmed,
    ActionAskRsvpEvent,
    ActionAskRsvpGuests,
    ActionCancelEventRsvp,
    ActionEventRsvp,
    ActionSettleRsvpCancellation,
    ValidateEventRsvpForm,
)
from actions.handoff import ActionHandoff
from salon.integrations.schema import event_rsvps, events
from salon.storage.db import make_sync_engine
from tests.action_support import action_server_on, sealed_for

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)  # Thursday morning
PREVIEW = "paris-aw27-preview"  # 10 Dec, VIC and Platinum, one guest, 5 of 60 places taken
SHOW = "london-haute-joaillerie-2027"  # 21 Jan, VIC, Platinum and Gold, one guest, 3 of 30
CLAIRE = "33600000001"  # C-001, VIC, French, Sophie; accepted the preview with one guest
HENRY = "447700900102"  # C-014, Platinum, James; accepted the trunk show alone
PRIYA = "447700900103"  # C-015, Gold, Olivia: invited to the trunk show only, no reply yet
RAFAEL = "447700900106"  # C-018, Prospect: no event for him
STRANGER = "447700900999"
FORM = ["rsvp_event", "rsvp_guests", "rsvp_confirmed"]
DOMAIN: dict[str, Any] = {"forms": {"event_rsvp_form": {"required_slots": FORM}},
                          "slots": {name: {} for name in FORM}}
CLEARED = [SlotSet(slot, None) for slot in ("rsvp_event", "rsvp_guests", "rsvp_confirmed", "rsvp_offer",
                                            "rsvp_outcome")]


@pytest.fixture()
def maison(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    yield sqlite_url
    backends.reset()




def tracker(slots: dict[str, Any] | None = None, *, text: str = "", intent: str = "inform",
            sender: str = HENRY, candidates: dict[str, Any] | None = None,
            before: dict[str, Any] | None = None, entities: list[dict[str, Any]] | None = None,
            active: bool = True) -> Tracker:
    """A tracker after one user message: ``before`` are slots set in earlier turns,
    ``candidates`` the slots the form just extracted from this message."""
    history: list[dict[str, Any]] = [{"event": "slot", "name": k, "value": v} for k, v in (before or {}).items()]
    history.append({"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}})
    history += [{"event": "slot", "name": k, "value": v} for k, v in (candidates or {}).items()]
    return Tracker(
        sender_id=sender, slots={**(before or {}), **(slots or {}), **(candidates or {})},
        latest_message={"text": text, "intent": {"name": intent}, "entities": entities or [],
                        "metadata": sealed_for(sender)},
        events=history, paused=False, followup_action=None,
        active_loop={"name": "event_rsvp_form"} if active else {}, latest_action_name="action_listen")


async def validate(candidates: dict[str, Any], **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await ValidateEventRsvpForm().run(dispatcher, tracker(candidates=candidates, **kwargs), DOMAIN)
    return events, dispatcher.messages


async def run(action: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(**kwargs), DOMAIN)
    return events, dispatcher.messages


def said(messages: list[dict[str, Any]]) -> list[tuple[str | None, list[str]]]:
    return [(m["text"], [b["title"] for b in m["buttons"]]) for m in messages]


def reply_row(url: str, event_id: str, client_id: str) -> tuple[str, int] | None:
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(event_rsvps.c.status, event_rsvps.c.guests).where(
            event_rsvps.c.event_id == event_id, event_rsvps.c.client_id == client_id)).first()
    engine.dispose()
    return (row.status, row.guests) if row is not None else None


def set_capacity(url: str, event_id: str, capacity: int) -> None:
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == event_id).values(capacity=capacity))
    engine.dispose()


async def test_the_events_open_to_the_client_are_offered_as_buttons(maison: str) -> None:
    _, messages = await run(ActionAskRsvpEvent(), slots={"language": "en"})
    assert said(messages) == [(
        "With pleasure. You are invited to the Autumn collection preview on Thursday 10 December at 18:30 "
        "in Paris and the Haute Joaillerie trunk show on Thursday 21 January at 18:00 in London (you are "
        "expected on your own). Which would you like to reply to?", ["Paris, 10 Dec", "London, 21 Jan"])]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        '/inform{"rsvp_event": "paris-aw27-preview"}', '/inform{"rsvp_event": "london-haute-joaillerie-2027"}']
    _, messages = await run(ActionAskRsvpEvent(), slots={"language": "fr"}, sender=CLAIRE)
    assert said(messages) == [(
        "Avec plaisir. Vos invitations : « Avant-première de la collection d'automne », jeudi 10 décembre "
        "à 18 h 30 à Paris (votre venue est confirmée, avec un invité) ; « Présentation Haute Joaillerie », "
        "jeudi 21 janvier à 18 h à Londres. À laquelle souhaitez-vous répondre ?",
        ["Paris, 10 déc.", "Londres, 21 janv."])]


async def test_the_event_is_tapped_named_or_asked_again(maison: str) -> None:
    assert await validate({"rsvp_event": SHOW}) == ([SlotSet("rsvp_event", SHOW)], [])
    assert await validate({"rsvp_event": "the trunk show please"}, text="the trunk show please") == (
        [SlotSet("rsvp_event", SHOW)], [])
    assert await validate({"rsvp_event": "l'avant-première"}) == ([SlotSet("rsvp_event", PREVIEW)], [])
    # The opening message names no event: nothing said, the form asks with the buttons.
    assert await validate({"rsvp_event": "I'd like to RSVP", "rsvp_guests": "I'd like to RSVP"},
                          intent="event_rsvp") == (
        [SlotSet("rsvp_event", None), SlotSet("rsvp_guests", None)], [])
    events, messages = await validate({"rsvp_event": "the summer party"},
                                      slots={"requested_slot": "rsvp_event"})
    assert events == [SlotSet("rsvp_event", None)]
    assert said(messages) == [("Forgive me, I am not sure which event you mean.", [])]
    # Words that name no event later on keep the one chosen.
    assert await validate({"rsvp_event": "with my husband"}, before={"rsvp_event": SHOW},
                          slots={"requested_slot": "rsvp_confirmed"}) == (
        [SlotSet("rsvp_event", SHOW)], [])


async def test_the_only_event_open_is_taken_without_asking(maison: str) -> None:
    events, messages = await validate({"rsvp_event": "I'd like to RSVP"}, sender=PRIYA, intent="event_rsvp")
    assert (events, messages) == ([SlotSet("rsvp_event", SHOW)], [])
    events, _ = await validate({}, sender=PRIYA, text="/event_rsvp", intent="event_rsvp")
    assert events == [SlotSet("rsvp_event", SHOW)]
    _, messages = await run(ActionAskRsvpGuests(), slots={"rsvp_event": SHOW}, sender=PRIYA)
    assert said(messages) == [("Will anyone be joining you at the Haute Joaillerie trunk show? Your "
                               "invitation is for you and one guest.", ["Just me", "With a guest"])]


async def test_guests_in_the_clients_words(maison: str) -> None:
    asked = {"rsvp_event": SHOW, "requested_slot": "rsvp_guests"}
    for words, count in (("just me", "0"), ("with my husband", "1"), ("no", "0"), ("1", "1"),
                         ("my daughter will come with me", "1")):
        events, messages = await validate({"rsvp_guests": words}, slots=asked, text=words)
        assert (events[0], messages) == (SlotSet("rsvp_guests", count), []), words
    events, messages = await validate({"rsvp_guests": "2 guests"}, slots=asked, text="2 guests")
    assert events[0] == SlotSet("rsvp_guests", None)
    assert said(messages) == [("Your invitation is for you and one guest.", [])]
    events, messages = await validate({"rsvp_guests": "hmm"}, slots=asked, text="hmm")
    assert events[0] == SlotSet("rsvp_guests", None)
    assert said(messages) == [("Forgive me, I did not quite catch how many guests will join you.", [])]
    # At the summary, a correction changes the guests and asks again.
    events, messages = await validate({"rsvp_guests": "actually, with my husband"},
                                      before={"rsvp_event": SHOW, "rsvp_guests": "0"},
                                      slots={"requested_slot": "rsvp_confirmed"})
    assert (events, messages) == ([SlotSet("rsvp_guests", "1"), SlotSet("rsvp_confirmed", None)], [])
    # Anything else said there leaves them as they were.
    events, _ = await validate({"rsvp_guests": "lovely"}, before={"rsvp_event": SHOW, "rsvp_guests": "0"},
                               slots={"requested_slot": "rsvp_confirmed"})
    assert events == [SlotSet("rsvp_guests", "0")]


async def test_a_reply_summed_up_confirmed_and_kept_in_the_clients_record(maison: str) -> None:
    chosen = {"rsvp_event": PREVIEW, "rsvp_guests": "1", "language": "en"}
    events, messages = await run(ActionAskRsvpConfirmed(), slots=chosen)
    assert events == [SlotSet("rsvp_offer", "attend")]
    assert said(messages) == [(
        "So that is the Autumn collection preview, Thursday 10 December at 18:30, Maison Solenne Paris "
        "Faubourg, for you and one guest. Shall I confirm?", ["Yes, please confirm", "Change guests"])]
    assert reply_row(maison, PREVIEW, "C-014") is None
    events, messages = await validate({"rsvp_confirmed": True}, slots={**chosen, "rsvp_offer": "attend"},
                                      text="yes please", intent="affirm")
    assert (events, messages) == ([SlotSet("rsvp_confirmed", True), SlotSet("rsvp_outcome", "accepted")], [])
    assert reply_row(maison, PREVIEW, "C-014") == ("accepted", 1)
    events, messages = await run(ActionEventRsvp(), slots={**chosen, "rsvp_confirmed": True,
                                                           "rsvp_outcome": "accepted"})
    assert events == CLEARED
    assert said(messages) == [(
        "It is confirmed, Mr Ashworth: the Autumn collection preview, Thursday 10 December at 18:30, "
        "Maison Solenne Paris Faubourg, for you and one guest. Dress code: cocktail. James looks forward "
        "to welcoming you.", [])]


async def test_other_guests_at_the_summary_are_asked_again(maison: str) -> None:
    events, _ = await validate({"rsvp_confirmed": False}, slots={"rsvp_event": PREVIEW, "rsvp_guests": "1",
                                                                 "rsvp_offer": "attend"}, intent="deny")
    assert events == [SlotSet("rsvp_confirmed", None), SlotSet("rsvp_guests", None)]
    assert reply_row(maison, PREVIEW, "C-014") is None


async def test_a_change_of_guests_in_french(maison: str) -> None:
    _, messages = await run(ActionAskRsvpGuests(), slots={"rsvp_event": PREVIEW, "language": "fr"}, sender=CLAIRE)
    assert said(messages) == [(
        "Votre venue à « Avant-première de la collection d'automne » est confirmée, avec un invité. "
        "Serez-vous accompagnée ? Votre invitation est valable pour vous et un invité.",
        ["Je viendrai seule", "Avec un invité"])]
    chosen = {"rsvp_event": PREVIEW, "rsvp_guests": "0", "rsvp_offer": "attend", "language": "fr"}
    events, _ = await validate({"rsvp_confirmed": True}, slots=chosen, sender=CLAIRE, text="oui", intent="affirm")
    assert SlotSet("rsvp_outcome", "changed") in events
    assert reply_row(maison, PREVIEW, "C-001") == ("accepted", 0)
    _, messages = await run(ActionEventRsvp(), slots={**chosen, "rsvp_outcome": "changed"}, sender=CLAIRE)
    assert said(messages) == [(
        "Votre réponse a bien été modifiée, Madame Laurent : « Avant-première de la collection "
        "d'automne », "
        "jeudi 10 décembre à 18 h 30, Maison Solenne Paris Faubourg, pour vous. Code vestimentaire : tenue "
        "de cocktail. Sophie se réjouit de vous y accueillir.", [])]


async def test_a_full_event_offers_the_waiting_list_or_the_advisor(maison: str) -> None:
    set_capacity(maison, PREVIEW, 5)  # every place taken
    events, messages = await validate({"rsvp_event": PREVIEW})
    assert events == [SlotSet("rsvp_event", PREVIEW)]
    assert said(messages) == [("I am sorry, the Autumn collection preview is full at the moment; I can still "
                               "put you on the waiting list.", [])]
    chosen = {"rsvp_event": PREVIEW, "rsvp_guests": "1", "language": "en"}
    events, messages = await run(ActionAskRsvpConfirmed(), slots=chosen)
    assert events == [SlotSet("rsvp_offer", "waitlist")]
    assert said(messages) == [("I am sorry, the Autumn collection preview is full. Shall I put you and your "
                               "guest on the waiting list?", ["Join the waitlist", "Speak to James", "No, thank you"])]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/affirm", "/talk_to_advisor", "/deny"]
    # "No, thank you": nothing is recorded, the door to James stays open.
    events, _ = await validate({"rsvp_confirmed": False}, slots={**chosen, "rsvp_offer": "waitlist"}, intent="deny")
    assert events == [SlotSet("rsvp_confirmed", False), SlotSet("rsvp_outcome", "declined_offer")]
    _, messages = await run(ActionEventRsvp(), slots={**chosen, "rsvp_outcome": "declined_offer"})
    assert said(messages) == [("Very well, I have noted nothing. James remains at your disposal.", [])]
    assert reply_row(maison, PREVIEW, "C-014") is None
    # "Join the waitlist".
    events, _ = await validate({"rsvp_confirmed": True}, slots={**chosen, "rsvp_offer": "waitlist"}, intent="affirm")
    assert SlotSet("rsvp_outcome", "waitlisted") in events
    assert reply_row(maison, PREVIEW, "C-014") == ("waitlisted", 1)
    _, messages = await run(ActionEventRsvp(), slots={**chosen, "rsvp_outcome": "waitlisted"})
    assert said(messages) == [("It is noted, Mr Ashworth: you and your guest are on the waiting list for the "
                               "Autumn collection preview on Thursday 10 December.", [])]


async def test_the_last_places_taken_while_the_client_answered(maison: str) -> None:
    chosen = {"rsvp_event": PREVIEW, "rsvp_guests": "1", "rsvp_offer": "attend", "language": "en"}
    set_capacity(maison, PREVIEW, 6)  # one place left, two asked
    events, messages = await validate({"rsvp_confirmed": True}, slots=chosen, intent="affirm")
    assert events == [SlotSet("rsvp_confirmed", None)]
    assert said(messages) == [("I am sorry, the last places have just been taken.", [])]
    assert reply_row(maison, PREVIEW, "C-014") is None
    _, messages = await run(ActionAskRsvpConfirmed(), slots=chosen)
    assert said(messages)[0][0] == ("I am sorry, only one place remains at the Autumn collection preview. "
                                    "Shall I put you and your guest on the waiting list?")


async def test_someone_unknown_or_without_an_event_is_told_politely(maison: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing to ask: the form ends at once and the submit says why.
    for sender in (STRANGER, RAFAEL):
        events, messages = await validate({"rsvp_event": "I'd like to RSVP", "rsvp_guests": "I'd like to RSVP"},
                                          sender=sender, intent="event_rsvp")
        assert (events, messages) == ([SlotSet("requested_slot", None)], [])
    events, messages = await run(ActionEventRsvp(), sender=STRANGER, text="I'd love to come to the trunk show")
    assert events == CLEARED
    assert [m["response"] for m in messages] == ["utter_rsvp_invitation_only"]
    _, messages = await run(ActionEventRsvp(), sender=RAFAEL)
    assert said(messages) == [("There is no event awaiting a reply at the moment. James will gladly tell you "
                               "about the maison's coming evenings.", ["Speak to James"])]
    # After the trunk show's deadline (12 January in London) and the preview: replies closed.
    action_server_on(maison, tmp_path, monkeypatch, datetime(2027, 1, 13, 9, 0, tzinfo=timezone.utc))
    events, _ = await validate({"rsvp_event": "the trunk show"}, sender=PRIYA, intent="event_rsvp")
    assert events == [SlotSet("requested_slot", None)]
    _, messages = await run(ActionEventRsvp(), sender=PRIYA)
    assert said(messages) == [("Replies for the Haute Joaillerie trunk show closed on Tuesday 12 January. "
                               "Olivia will gladly see what is still possible.", ["Speak to Olivia"])]


async def test_a_place_is_withdrawn_after_one_question(maison: str) -> None:
    text = "I can't make the trunk show anymore, please cancel my RSVP"
    events, messages = await run(ActionCancelEventRsvp(), text=text, intent="cancel_event_rsvp", active=False)
    assert events == [SlotSet("rsvp_event", SHOW), SlotSet("cancelling_rsvp", True)]
    assert said(messages) == [("Shall I cancel your place at the Haute Joaillerie trunk show on Thursday "
                               "21 January?", ["Yes, cancel it", "Keep my place"])]
    events, messages = await run(ActionSettleRsvpCancellation(), slots={"rsvp_event": SHOW}, text="no",
                                 intent="deny", active=False)
    assert events == [SlotSet("cancelling_rsvp", False), SlotSet("rsvp_event", None)]
    assert [m["response"] for m in messages] == ["utter_rsvp_kept"]
    assert reply_row(maison, SHOW, "C-014") == ("accepted", 0)
    events, messages = await run(ActionSettleRsvpCancellation(), slots={"rsvp_event": SHOW}, text="yes",
                                 intent="affirm", active=False)
    assert events == [SlotSet("cancelling_rsvp", False), SlotSet("rsvp_event", None)]
    assert said(messages) == [("It is done: your place at the Haute Joaillerie trunk show is released. James "
                               "remains at your disposal should your plans change.", [])]
    assert reply_row(maison, SHOW, "C-014") == ("declined", 0)
    _, messages = await run(ActionCancelEventRsvp(), text=text, intent="cancel_event_rsvp", active=False)
    assert said(messages) == [("Your regrets for the Haute Joaillerie trunk show have already been sent.", [])]


async def test_regrets_for_an_invitation_never_answered(maison: str) -> None:
    events, messages = await run(ActionCancelEventRsvp(), sender=PRIYA, active=False, intent="cancel_event_rsvp",
                                 text="I'd like to decline the invitation to the trunk show, sadly")
    assert events == [SlotSet("rsvp_event", SHOW), SlotSet("cancelling_rsvp", True)]
    assert said(messages) == [("Shall I send your regrets for the Haute Joaillerie trunk show on Thursday "
                               "21 January?", ["Yes, please", "Not yet"])]
    _, messages = await run(ActionSettleRsvpCancellation(), sender=PRIYA, slots={"rsvp_event": SHOW},
                            intent="affirm", text="yes", active=False)
    assert said(messages) == [("It is noted: I have sent your regrets for the Haute Joaillerie trunk show.", [])]
    assert reply_row(maison, SHOW, "C-015") == ("declined", 0)


async def test_which_reply_to_withdraw_or_none(maison: str) -> None:
    await backends.events().reply(SHOW, "C-001", guests=0)  # Claire now holds two places
    events, messages = await run(ActionCancelEventRsvp(), sender=CLAIRE, text="please cancel my RSVP",
                                 intent="cancel_event_rsvp", slots={"language": "en"}, active=False)
    assert events == [SlotSet("cancelling_rsvp", False)]
    assert said(messages) == [("Which event is this about?", ["Paris, 10 Dec", "London, 21 Jan"])]
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        '/cancel_event_rsvp{"rsvp_event": "paris-aw27-preview"}',
        '/cancel_event_rsvp{"rsvp_event": "london-haute-joaillerie-2027"}']
    events, _ = await run(ActionCancelEventRsvp(), sender=CLAIRE, intent="cancel_event_rsvp", active=False,
                          text='/cancel_event_rsvp{"rsvp_event": "london-haute-joaillerie-2027"}',
                          entities=[{"entity": "rsvp_event", "value": SHOW}], slots={"language": "en"})
    assert events == [SlotSet("rsvp_event", SHOW), SlotSet("cancelling_rsvp", True)]
    _, messages = await run(ActionCancelEventRsvp(), sender=PRIYA, text="please cancel my RSVP",
                            intent="cancel_event_rsvp", active=False)
    assert said(messages) == [("I find no reply to an upcoming event linked to this number.", ["Our events"])]
    _, messages = await run(ActionCancelEventRsvp(), sender=STRANGER, text="please cancel my RSVP",
                            intent="cancel_event_rsvp", active=False)
    assert [m["response"] for m in messages] == ["utter_rsvp_invitation_only"]


async def test_an_invitation_without_guests_skips_the_question(maison: str) -> None:
    engine = make_sync_engine(maison)
    with engine.begin() as conn:
        conn.execute(update(events).where(events.c.id == SHOW).values(guests_per_invitation=0))
    engine.dispose()
    events_, messages = await validate({"rsvp_event": "I'd like to RSVP", "rsvp_guests": "with my husband"},
                                       sender=PRIYA, intent="event_rsvp")
    assert events_ == [SlotSet("rsvp_event", SHOW), SlotSet("rsvp_guests", None),
                       SlotSet("requested_slot", "rsvp_confirmed")]
    assert said(messages) == [("This invitation is for you alone.", [])]
    _, messages = await run(ActionAskRsvpConfirmed(), sender=PRIYA, slots={"rsvp_event": SHOW})
    assert said(messages) == [(
        "So that is the Haute Joaillerie trunk show, Thursday 21 January at 18:00, Maison Solenne London "
        "Mount Street, for you. Shall I confirm?", ["Yes, please confirm", "No, thank you"])]
    events_, _ = await validate({"rsvp_confirmed": False}, sender=PRIYA, intent="deny",
                                slots={"rsvp_event": SHOW, "rsvp_offer": "attend"})
    assert events_ == [SlotSet("rsvp_confirmed", False), SlotSet("rsvp_outcome", "declined_offer"),
                       SlotSet("requested_slot", None)]


async def test_the_advisor_offered_with_the_waiting_list_knows_which_event(maison: str) -> None:
    dispatcher = CollectingDispatcher()
    events_ = await ActionHandoff().run(dispatcher, tracker(
        {"rsvp_event": PREVIEW, "rsvp_guests": "1", "requested_slot": "rsvp_confirmed"},
        text="/talk_to_advisor", intent="talk_to_advisor"), DOMAIN)
    assert events_ == [SlotSet("language", "en"), ActiveLoop(None), SlotSet("requested_slot", None),
                       ConversationPaused()]
    handoff = await (await backends.handoffs()).latest_for(HENRY)
    assert handoff is not None and handoff.advisor_id == "james-whitaker"
    assert handoff.note == "Client wrote: /talk_to_advisor; rsvp_event: paris-aw27-preview; rsvp_guests: 1"


FRANCESCA = "393470001001"  # C-023, VIC, Italian, Giulia (Milan): invited to both by her tier


async def test_an_invitation_answered_in_italian(maison: str) -> None:
    italian = {"language": "it"}
    _, messages = await run(ActionAskRsvpEvent(), slots=italian, sender=FRANCESCA)
    assert said(messages) == [(
        "Con piacere. I Suoi inviti: «Anteprima della collezione autunnale», giovedì 10 dicembre alle "
        "18:30 a Parigi; «Presentazione Haute Joaillerie», giovedì 21 gennaio alle 18:00 a Londra. A "
        "quale desidera rispondere?",
        ["Parigi, 10 dic", "Londra, 21 gen"])]
    _, messages = await run(ActionAskRsvpGuests(), slots={**italian, "rsvp_event": PREVIEW}, sender=FRANCESCA)
    assert said(messages) == [(
        "Verrà con qualcuno a «Anteprima della collezione autunnale»? L'invito è valido per Lei e un "
        "ospite.",
        ["Solo io", "Con un ospite"])]
    events, _ = await validate({"rsvp_guests": "con mio marito"}, slots={**italian, "rsvp_event": PREVIEW},
                               sender=FRANCESCA, text="con mio marito",
                               before={"requested_slot": "rsvp_guests"})
    assert SlotSet("rsvp_guests", "1") in events
    chosen = {**italian, "rsvp_event": PREVIEW, "rsvp_guests": "1"}
    events, messages = await run(ActionAskRsvpConfirmed(), slots=chosen, sender=FRANCESCA)
    assert events == [SlotSet("rsvp_offer", "attend")]
    assert said(messages) == [(
        "Confermo quindi la Sua partecipazione a «Anteprima della collezione autunnale», giovedì 10 "
        "dicembre alle 18:30, Maison Solenne Paris Faubourg, per Lei e un ospite?",
        ["Sì, confermo", "Cambiare ospiti"])]
    chosen["rsvp_offer"] = "attend"
    events, _ = await validate({"rsvp_confirmed": True}, slots=chosen, sender=FRANCESCA, text="sì",
                               intent="affirm")
    assert SlotSet("rsvp_outcome", "accepted") in events
    assert reply_row(maison, PREVIEW, "C-023") == ("accepted", 1)
    _, messages = await run(ActionEventRsvp(), slots={**chosen, "rsvp_outcome": "accepted"}, sender=FRANCESCA)
    assert said(messages) == [(
        "Presenza confermata, Signora Bellini: «Anteprima della collezione autunnale», giovedì 10 "
        "dicembre alle 18:30, Maison Solenne Paris Faubourg, per Lei e un ospite. Dress code: abito da "
        "cocktail. Giulia La attende con piacere.", [])]


async def test_withdrawing_and_the_waiting_list_in_italian(maison: str) -> None:
    italian = {"language": "it"}
    set_capacity(maison, PREVIEW, 5)  # every place taken
    chosen = {**italian, "rsvp_event": PREVIEW, "rsvp_guests": "1"}
    events, messages = await run(ActionAskRsvpConfirmed(), slots=chosen, sender=FRANCESCA)
    assert events == [SlotSet("rsvp_offer", "waitlist")]
    assert said(messages) == [(
        "Mi dispiace, «Anteprima della collezione autunnale» è al completo. Desidera che La inserisca in "
        "lista d'attesa, con il Suo ospite?", ["Lista d'attesa", "Parlare con Giulia", "No, grazie"])]
    events, messages = await validate({"rsvp_event": PREVIEW}, slots=italian, sender=FRANCESCA)
    assert said(messages) == [(
        "Mi dispiace, «Anteprima della collezione autunnale» è al momento al completo; posso comunque "
        "inserirLa in lista d'attesa.", [])]
    set_capacity(maison, PREVIEW, 60)
    await backends.events().reply(PREVIEW, "C-023", guests=0)
    _, messages = await run(ActionCancelEventRsvp(), slots=italian, sender=FRANCESCA,
                            text="non potrò venire all'anteprima", intent="cancel_event_rsvp", active=False)
    assert said(messages) == [(
        "Desidera che annulli la Sua partecipazione a «Anteprima della collezione autunnale», giovedì 10 "
        "dicembre?", ["Sì, annulli pure", "Mantengo il posto"])]
    _, messages = await run(ActionSettleRsvpCancellation(), slots={**italian, "rsvp_event": PREVIEW},
                            sender=FRANCESCA, text="sì", intent="affirm", active=False)
    assert said(messages) == [(
        "Fatto: il Suo posto a «Anteprima della collezione autunnale» è stato liberato. Giulia resta a Sua "
        "disposizione se i Suoi programmi dovessero cambiare.", [])]
    assert reply_row(maison, PREVIEW, "C-023") == ("declined", 0)


async def test_are_there_events_coming_up_lists_her_invitations_with_a_button_each(maison: str) -> None:
    from actions.events import ActionUpcomingEvents

    # Claire: the Paris preview (accepted, with a guest) and the London trunk show.
    _, messages = await run(ActionUpcomingEvents(), sender=CLAIRE, intent="ask_events", active=False,
                            text="Avez-vous des soirées prévues ?", slots={"language": "fr"})
    [message] = messages
    assert message["text"].startswith("Vous êtes invitée à « Avant-première de la collection d'automne », "
                                      "jeudi 10 décembre à 18 h 30 à Paris (votre venue est confirmée")
    assert "Présentation Haute Joaillerie" in message["text"]
    assert message["text"].endswith("Souhaitez-vous répondre ?")
    assert [b["payload"] for b in message["buttons"]] == [f'/event_rsvp{{"rsvp_event": "{PREVIEW}"}}',
                                                          f'/event_rsvp{{"rsvp_event": "{SHOW}"}}']
    # Priya: the trunk show only, in English.
    _, [message] = await run(ActionUpcomingEvents(), sender=PRIYA, intent="ask_events", active=False,
                             text="any events soon?")
    assert message["text"] == ("You are invited to the Haute Joaillerie trunk show on Thursday 21 January "
                               "at 18:00 in London. Would you like to reply?")
    assert [b["title"] for b in message["buttons"]] == ["London, 21 Jan"]


async def test_no_invitation_her_advisor_will_tell_her_and_a_stranger_hears_they_are_private(maison: str) -> None:
    from actions.events import ActionUpcomingEvents

    _, [message] = await run(ActionUpcomingEvents(), sender=RAFAEL, intent="ask_events", active=False,
                             text="any events soon?")
    assert message["text"].startswith("I see no invitation for you at the moment.")
    assert message["buttons"] and message["buttons"][0]["payload"] == "/talk_to_advisor"
    _, [message] = await run(ActionUpcomingEvents(), sender=STRANGER, intent="ask_events", active=False,
                             text="any events soon?")
    assert message["response"] == "utter_rsvp_invitation_only"
