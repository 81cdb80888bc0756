"""The orders port on both SQL backends, the answers built from it, and the order actions."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from salon.conversation.order_status import late_order_button, order_answer
from salon.integrations.orders import OrderFacts, SqlOrders, normalise_order_number
from salon.storage.db import make_async_engine
from tests.action_support import action_server_on, sealed
from tests.seeding import seed_maison

CLAIRE_WA = "33600000001"  # owns SOL-104233 (shipped) and SOL-104187 (delivered)
CLAIRE_BSUID = "FR.4820193746581029374"
SOMEONE_ELSE = "447700900123"
TODAY = date(2026, 11, 26)  # the day the demo maison's records describe


@pytest.fixture()
async def orders(database_url: str):  # type: ignore[no-untyped-def]
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlOrders(engine)
    await engine.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SOL-104233", "SOL-104233"), ("sol 104233", "SOL-104233"), ("#104233", "SOL-104233"),
     ("it's SOL–104233 thanks", "SOL-104233"), ("my order", None), ("SOL-1042", None), (None, None)],
)
def test_order_numbers_are_read_as_clients_type_them(text: str | None, expected: str | None) -> None:
    assert normalise_order_number(text) == expected


async def test_an_order_is_read_for_its_owner_only(orders) -> None:  # type: ignore[no-untyped-def]
    mine = await orders.for_client("SOL-104233", wa_id=CLAIRE_WA, user_id=None)
    assert mine is not None and mine.status == "shipped" and mine.carrier == "DHL Express"
    assert mine.tracking_number == "4829301756" and mine.delivery_city == "Paris"
    assert mine.items and "Camel" in mine.items[0]
    by_bsuid = await orders.for_client("SOL-104233", wa_id=None, user_id=CLAIRE_BSUID)
    assert by_bsuid == mine
    assert await orders.for_client("SOL-104233", wa_id=SOMEONE_ELSE, user_id=None) is None
    assert await orders.for_client("SOL-104240", wa_id=CLAIRE_WA, user_id=None) is None  # C-004's
    assert await orders.for_client("SOL-999999", wa_id=CLAIRE_WA, user_id=None) is None
    assert await orders.for_client("SOL-104233", wa_id=None, user_id=None) is None


async def test_latest_order_is_the_most_recent(orders) -> None:  # type: ignore[no-untyped-def]
    latest = await orders.latest_for_client(wa_id=CLAIRE_WA, user_id=None)
    assert latest is not None and latest.number == "SOL-104233"
    assert await orders.latest_for_client(wa_id=SOMEONE_ELSE, user_id=None) is None


async def test_answers_say_only_what_the_record_holds(orders) -> None:  # type: ignore[no-untyped-def]
    shipped = order_answer(await orders.for_client("SOL-104233", wa_id=CLAIRE_WA, user_id=None), today=TODAY)
    assert "SOL-104233" in shipped and "DHL Express" in shipped
    assert "Wednesday 25 November" in shipped  # the promised date
    assert "https://www.dhl.com/" in shipped
    delivered = order_answer(await orders.for_client("SOL-104187", wa_id=CLAIRE_WA, user_id=None), today=TODAY)
    assert "was delivered on Monday 5 October" in delivered
    delayed = order_answer(OrderFacts(number="SOL-100001", status="delayed", items=("Aurore tote",),
                                      delay_reason="Customs held the parcel in Milan."), today=TODAY)
    assert "delayed" in delayed and "Customs held the parcel in Milan." in delayed
    assert "expected" not in delayed  # no date in the record, none said
    boutique = order_answer(OrderFacts(number="SOL-100002", status="shipped", items=(),
                                       carrier="boutique courier"), today=TODAY)
    assert "boutique courier" in boutique and "follow it" not in boutique


async def test_an_order_past_its_promised_date_is_said_to_be_late_with_an_apology(orders) -> None:  # type: ignore[no-untyped-def]
    facts = await orders.for_client("SOL-104233", wa_id=CLAIRE_WA, user_id=None)
    assert facts is not None and facts.eta == date(2026, 11, 25) and facts.status == "shipped"
    on_time = order_answer(facts, today=date(2026, 11, 24))
    assert "expected on Wednesday 25 November" in on_time and "sorry" not in on_time
    assert order_answer(facts, today=date(2026, 11, 25)) == on_time  # due today is not late
    late = order_answer(facts, today=date(2026, 12, 4))
    assert "expected on Wednesday 25 November" not in late
    assert "was due on Wednesday 25 November and has not reached you yet" in late
    assert "I am sorry" in late and "DHL Express" in late and "https://www.dhl.com/" in late
    assert late.endswith("Your client advisor can look into it with DHL Express for you.")
    # Delivered, cancelled or already marked delayed: the record says what happened.
    delivered = order_answer(await orders.for_client("SOL-104187", wa_id=CLAIRE_WA, user_id=None),
                             today=date(2026, 12, 4))
    assert "late" not in delivered and "has not reached you" not in delivered


async def test_answers_in_french_and_italian_say_the_same_facts(orders) -> None:  # type: ignore[no-untyped-def]
    facts = await orders.for_client("SOL-104233", wa_id=CLAIRE_WA, user_id=None)
    on_time_fr = order_answer(facts, today=date(2026, 11, 24), language="fr")
    assert on_time_fr.startswith("Votre commande SOL-104233 (")
    assert "a été expédiée le lundi 23 novembre par DHL Express à destination de Paris" in on_time_fr
    assert "sa livraison est prévue le mercredi 25 novembre" in on_time_fr
    assert "Vous pouvez la suivre ici : https://www.dhl.com/" in on_time_fr
    on_time_it = order_answer(facts, today=date(2026, 11, 24), language="it")
    assert on_time_it.startswith("Il Suo ordine SOL-104233 (")
    assert "è stato spedito lunedì 23 novembre con DHL Express a Parigi" in on_time_it
    assert "la consegna è prevista per mercoledì 25 novembre" in on_time_it
    assert "Può seguirlo qui: https://www.dhl.com/" in on_time_it
    late_fr = order_answer(facts, today=date(2026, 12, 4), language="fr")
    assert "était attendue le mercredi 25 novembre et ne vous est pas encore parvenue" in late_fr
    # No advisor in the book: one of the maison's, not a "votre conseiller" she may not have.
    assert late_fr.endswith("Un conseiller peut se renseigner auprès de DHL Express pour vous.")
    late_it = order_answer(facts, today=date(2026, 12, 4), language="it")
    assert "era previsto per mercoledì 25 novembre e non Le è ancora arrivato: Le chiedo scusa." in late_it
    assert late_it.endswith("Uno dei nostri consulenti può verificare con DHL Express per Lei.")
    delivered = await orders.for_client("SOL-104187", wa_id=CLAIRE_WA, user_id=None)
    assert order_answer(delivered, today=TODAY, language="fr").endswith(
        "a été livrée le lundi 5 octobre. Si quelque chose n'allait pas, je demanderai à un conseiller de "
        "s'en occuper.")
    assert order_answer(delivered, today=TODAY, language="it").endswith(
        "Se qualcosa non fosse come dovrebbe, chiederò a uno dei nostri consulenti di occuparsene.")
    preparing = OrderFacts(number="SOL-100005", status="in_preparation", items=(),
                           shipped_from="Atelier Couture Saint-Honoré, Paris")
    assert order_answer(preparing, today=TODAY, language="fr") == (
        "Votre commande SOL-100005 est en cours de préparation (Atelier Couture Saint-Honoré, Paris).")
    assert "è stato consegnato lunedì 5 ottobre" in order_answer(delivered, today=TODAY, language="it")
    pieces = OrderFacts(number="SOL-100003", status="confirmed", items=("Aurore tote in Tan", "Étoile silk scarf"),
                        eta=date(2026, 12, 4))
    assert order_answer(pieces, today=TODAY, language="fr") == (
        "Votre commande SOL-100003 (Aurore tote en Tan et Étoile silk scarf) est confirmée et sera préparée "
        "très prochainement ; sa livraison est prévue le vendredi 4 décembre.")
    assert order_answer(pieces, today=TODAY, language="it") == (
        "Il Suo ordine SOL-100003 (Aurore tote in Tan ed Étoile silk scarf) è confermato e sarà preparato "
        "a breve; la consegna è prevista per venerdì 4 dicembre.")
    cancelled = OrderFacts(number="SOL-100004", status="cancelled", items=())
    assert order_answer(cancelled, today=TODAY, language="it") == (
        "Il Suo ordine SOL-100004 è stato annullato. Uno dei nostri consulenti potrà dirLe di più, se lo "
        "desidera.")
    assert order_answer(cancelled, today=TODAY, language="fr") == (
        "Votre commande SOL-100004 a été annulée. Un conseiller pourra vous en dire davantage si vous le "
        "souhaitez.")
    assert order_answer(cancelled, today=TODAY, language="de") == order_answer(cancelled, today=TODAY)
    # With her own advisor's first name, each language names her instead of the noun.
    assert late_fr != order_answer(facts, today=date(2026, 12, 4), language="fr", advisor="Sophie")
    assert order_answer(facts, today=date(2026, 12, 4), language="fr", advisor="Sophie").endswith(
        "Sophie peut se renseigner auprès de DHL Express pour vous.")
    assert order_answer(facts, today=date(2026, 12, 4), language="en", advisor="James").endswith(
        "James can look into it with DHL Express for you.")
    assert order_answer(delivered, today=TODAY, language="it", advisor="Giulia").endswith(
        "Se qualcosa non fosse come dovrebbe, chiederò a Giulia di occuparsene.")
    assert order_answer(delivered, today=TODAY, language="fr", advisor="Camille").endswith(
        "je demanderai à Camille de s'en occuper.")
    assert order_answer(cancelled, today=TODAY, language="it", advisor="Giulia") == (
        "Il Suo ordine SOL-100004 è stato annullato. Giulia potrà dirLe di più, se lo desidera.")


def test_the_late_order_button_names_her_advisor_or_offers_one() -> None:
    # By first name when the book has one (no noun to agree with the advisor's gender).
    assert late_order_button("fr", "Sophie") == {"title": "Parler à Sophie", "payload": "/talk_to_advisor"}
    assert late_order_button("it", "Giulia") == {"title": "Parlare con Giulia", "payload": "/talk_to_advisor"}
    assert late_order_button("en", "James") == {"title": "Ask my advisor", "payload": "/talk_to_advisor"}
    # Without one, or with a name too long for a button: one of the maison's advisors.
    assert late_order_button("fr")["title"] == "Un conseiller"
    assert late_order_button("it")["title"] == "Un consulente"
    assert late_order_button("de")["title"] == "Ask my advisor"
    assert late_order_button("fr", "Marie-Alexandrine")["title"] == "Un conseiller"
    assert all(len(late_order_button(lang, name)["title"]) <= 20
               for lang in ("en", "fr", "it") for name in (None, "Sophie", "Marie-Alexandrine"))


def _tracker(sender: str, slots: dict[str, Any], metadata: dict[str, Any] | None = None) -> Tracker:
    return Tracker(
        sender_id=sender,
        slots=slots,
        latest_message={"text": "where is my order", "intent": {"name": "check_order_status"},
                        "entities": [], "metadata": metadata or {}},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={"name": "order_status_form"},
        latest_action_name="order_status_form",
    )


async def test_action_answers_the_owner_and_reveals_nothing_to_others(sqlite_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionOrderStatus

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    cleared = [{"event": "slot", "timestamp": None, "name": "order_number", "value": None}]

    # Over WhatsApp the channel's metadata names the client.
    dispatcher = CollectingDispatcher()
    events = await ActionOrderStatus().run(
        dispatcher, _tracker(CLAIRE_BSUID, {"order_number": "SOL-104233"},
                             sealed(CLAIRE_BSUID, wa_id=CLAIRE_WA, user_id=CLAIRE_BSUID)), {})
    assert events == cleared
    assert "DHL Express" in dispatcher.messages[0]["text"]

    # Someone else's number: the same words as for an order that does not exist.
    for sender, number in ((SOMEONE_ELSE, "SOL-104233"), (CLAIRE_WA, "SOL-999999")):
        dispatcher = CollectingDispatcher()
        events = await ActionOrderStatus().run(
            dispatcher, _tracker(sender, {"order_number": number}, sealed(sender, wa_id=sender)), {})
        assert events == cleared
        assert dispatcher.messages == [{"text": None, "buttons": [], "elements": [], "custom": {},
                                        "template": "utter_order_not_found",
                                        "response": "utter_order_not_found", "image": None,
                                        "attachment": None, "order_number": number}]
    backends.reset()


@pytest.mark.parametrize(("now", "late"), [
    (datetime(2026, 11, 25, 22, 30, tzinfo=timezone.utc), False),  # 23:30 on the 25th in Paris: due today
    (datetime(2026, 11, 25, 23, 30, tzinfo=timezone.utc), True),   # 00:30 on the 26th in Paris
])
async def test_the_action_reads_the_promised_date_against_the_clients_today(
        sqlite_url: str, tmp_path, monkeypatch, now: datetime, late: bool) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionOrderStatus

    action_server_on(sqlite_url, tmp_path, monkeypatch, now)
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(dispatcher, _tracker(CLAIRE_WA, {"order_number": "SOL-104233"},
                                                       sealed(CLAIRE_WA, wa_id=CLAIRE_WA)), {})
    [message] = dispatcher.messages
    assert ("has not reached you yet" in message["text"]) is late, message["text"]
    assert ("expected on Wednesday 25 November" in message["text"]) is not late
    # A late order offers the way to a person: the button asks for the client's advisor.
    assert message["buttons"] == ([{"title": "Ask my advisor", "payload": "/talk_to_advisor"}] if late else [])
    backends.reset()


async def test_the_action_answers_in_the_conversations_language(
        sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionOrderStatus

    action_server_on(sqlite_url, tmp_path, monkeypatch, datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc))
    dispatcher = CollectingDispatcher()
    tracker = _tracker(CLAIRE_WA, {"order_number": "SOL-104233", "language": "it"},
                       sealed(CLAIRE_WA, wa_id=CLAIRE_WA))
    tracker.latest_message["text"] = "dov'è il mio ordine?"
    await ActionOrderStatus().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith("Il Suo ordine SOL-104233") and "Le chiedo scusa" in message["text"]
    # Her own advisor, by name: no noun whose gender would have to agree with Sophie's.
    assert "Sophie può verificare" in message["text"] and "consulente" not in message["text"]
    assert message["buttons"] == [{"title": "Parlare con Sophie", "payload": "/talk_to_advisor"}]
    dispatcher = CollectingDispatcher()
    tracker = _tracker(CLAIRE_WA, {"order_number": "SOL-104233", "language": "fr"},
                       sealed(CLAIRE_WA, wa_id=CLAIRE_WA))
    tracker.latest_message["text"] = "où en est ma commande ?"
    await ActionOrderStatus().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith("Votre commande SOL-104233")
    assert "Sophie peut se renseigner" in message["text"] and "conseiller" not in message["text"]
    assert message["buttons"] == [{"title": "Parler à Sophie", "payload": "/talk_to_advisor"}]
    backends.reset()


async def test_action_when_orders_are_unreachable(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionOrderStatus

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    backends.reset()
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(
        dispatcher, _tracker(CLAIRE_WA, {"order_number": "SOL-104233"}, sealed(CLAIRE_WA, wa_id=CLAIRE_WA)), {})
    assert dispatcher.messages[0]["response"] == "utter_order_request_noted"
    backends.reset()


async def test_form_validation_normalises_or_re_asks() -> None:
    from actions.orders import ValidateOrderStatusForm

    form = ValidateOrderStatusForm()
    dispatcher = CollectingDispatcher()
    tracker = _tracker(CLAIRE_WA, {"order_number": None})
    assert form.validate_order_number("sol 104233", dispatcher, tracker, {}) == {"order_number": "SOL-104233"}
    assert dispatcher.messages == []
    assert form.validate_order_number("my last one", dispatcher, tracker, {}) == {"order_number": None}
    assert dispatcher.messages[0]["response"] == "utter_order_number_invalid"


async def test_a_username_only_client_is_asked_for_her_number_then_answered(sqlite_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Writing from a username with a BSUID the book does not know, Claire cannot be told
    about an order: she is asked for her number (Meta's contact-information request),
    and once the channel has linked the number she shared, her question is answered."""
    from rasa_sdk.events import FollowupAction, SlotSet

    from actions import backends
    from actions.contact import ActionContactShared
    from actions.orders import ActionOrderStatus

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    new_bsuid = "FR.99887766554433221100"  # not in the book
    dispatcher = CollectingDispatcher()
    events = await ActionOrderStatus().run(
        dispatcher, _tracker(new_bsuid, {"order_number": "SOL-104233"}, sealed(new_bsuid, user_id=new_bsuid)), {})
    assert events == [SlotSet("resume_after_contact", "action_order_status")]  # the number is kept
    [asked] = dispatcher.messages
    request = asked["custom"]
    assert request["type"] == "interactive"
    assert request["interactive"]["type"] == "request_contact_info"
    assert request["interactive"]["action"] == {"name": "request_contact_info"}
    assert "cannot see your orders" in request["interactive"]["body"]["text"]

    # Her card arrives; the channel linked her number: the turn's metadata carries both.
    dispatcher = CollectingDispatcher()
    shared = Tracker(
        sender_id=new_bsuid, slots={"resume_after_contact": "action_order_status",
                                    "order_number": "SOL-104233"},
        latest_message={"text": "/share_contact", "intent": {"name": "share_contact"}, "entities": [],
                        "metadata": sealed(new_bsuid, wa_id=CLAIRE_WA, user_id=new_bsuid)},
        events=[], paused=False, followup_action=None, active_loop={}, latest_action_name="action_listen")
    events = await ActionContactShared().run(dispatcher, shared, {})
    assert events == [SlotSet("resume_after_contact", None), FollowupAction("action_order_status")]
    assert dispatcher.messages[0]["text"] == "Thank you, I have your number now."
    dispatcher = CollectingDispatcher()
    await ActionOrderStatus().run(dispatcher, shared, {})
    assert "DHL Express" in dispatcher.messages[0]["text"]

    # A card shared without our asking is somebody's contact, nothing more.
    dispatcher = CollectingDispatcher()
    plain = Tracker(sender_id=CLAIRE_WA, slots={}, latest_message={
        "text": "/share_contact", "intent": {"name": "share_contact"}, "entities": [],
        "metadata": sealed(CLAIRE_WA, wa_id=CLAIRE_WA)}, events=[], paused=False, followup_action=None,
        active_loop={}, latest_action_name="action_listen")
    assert await ActionContactShared().run(dispatcher, plain, {}) == []
    assert dispatcher.messages[0]["response"] == "utter_contact_received"
    backends.reset()
