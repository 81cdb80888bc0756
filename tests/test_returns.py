"""Returns and exchanges: the maison's policy as its data states it, applied to the piece
she means, in her language; the action answers from her own orders only."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import update

from salon.config import PROJECT_ROOT
from salon.conversation.returns import order_to_return, return_deadline, returns_answer
from salon.integrations.house import ReturnsPolicy, ReturnsPolicyError, SqlHouseRules
from salon.integrations.orders import OrderFacts
from salon.integrations.schema import house, orders
from salon.integrations.seed import load_maison
from salon.storage.db import make_async_engine, make_sync_engine
from tests.action_support import action_server_on, sealed

POLICY = ReturnsPolicy(
    days=30, refund_days=14,
    condition={"en": "unworn, with its labels", "fr": "non portée, avec ses étiquettes"},
    excluded={"en": "Made-to-order pieces cannot be returned."},
    where={"en": "in any of our boutiques", "fr": "dans l'une de nos boutiques",
           "it": "in una delle nostre boutique"},
)
DELIVERED = datetime(2026, 10, 5, 15, 2, tzinfo=timezone(timedelta(hours=2)))
TOTE = OrderFacts(number="SOL-104187", status="delivered", items=("Aurore tote in Tan",), delivered_at=DELIVERED)
COAT = OrderFacts(number="SOL-104233", status="shipped", items=("Riviera cashmere coat in Camel",))


def test_the_last_day_is_the_delivery_day_plus_the_policys_days() -> None:
    assert return_deadline(date(2026, 10, 5), POLICY) == date(2026, 11, 4)
    assert return_deadline(date(2026, 2, 10), replace(POLICY, days=14)) == date(2026, 2, 24)


def test_a_piece_within_its_days_may_go_back_until_its_last_day() -> None:
    answer = returns_answer(POLICY, TOTE, today=date(2026, 11, 4), language="en", advisor="Sophie")
    assert answer.text == (
        "Your Aurore tote in Tan (order SOL-104187) reached you on Monday 5 October: it may be "
        "returned or exchanged until Wednesday 4 November, unworn, with its labels, in any of our "
        "boutiques. Made-to-order pieces cannot be returned.")
    assert answer.buttons == ({"title": "Arrange a return", "payload": "/talk_to_advisor"},
                              {"title": "Book a visit", "payload": "/book_appointment"})
    # She asked about the refund: its delay, in place of what can never come back.
    refund = returns_answer(POLICY, TOTE, today=date(2026, 10, 6), language="en", about_refund=True)
    assert refund.text.endswith("in any of our boutiques. A refund reaches your original means of payment "
                                "within 14 days of the piece arriving with us.")


def test_after_its_last_day_she_is_told_so_and_the_advisor_sees_what_can_be_done() -> None:
    answer = returns_answer(POLICY, TOTE, today=date(2026, 11, 5), language="en", advisor="Sophie")
    assert answer.text == ("Your Aurore tote in Tan (order SOL-104187) reached you on Monday 5 October, "
                           "and its 30 days for a return ended on Wednesday 4 November. Sophie can see "
                           "what may be done.")
    assert answer.buttons == ({"title": "Ask Sophie", "payload": "/talk_to_advisor"},)
    # No advisor of her own: one of the maison's, and no name is made up.
    anyone = returns_answer(POLICY, TOTE, today=date(2026, 12, 1), language="fr")
    assert anyone.text.endswith("Un conseiller peut voir ce qu'il est possible de faire.")
    assert anyone.buttons == ({"title": "Organiser un retour", "payload": "/talk_to_advisor"},)


def test_a_piece_on_its_way_has_its_days_from_when_it_arrives_in_french() -> None:
    answer = returns_answer(POLICY, COAT, today=date(2026, 11, 24), language="fr")
    assert answer.text == (
        "Dès que votre commande SOL-104233 (Riviera cashmere coat en Camel) vous sera parvenue, vous "
        "disposerez de 30 jours pour la retourner ou l'échanger, non portée, avec ses étiquettes, dans "
        "l'une de nos boutiques. Made-to-order pieces cannot be returned.")
    assert answer.buttons == ()


def test_italian_uses_the_policys_italian_words_and_english_where_it_has_none() -> None:
    answer = returns_answer(POLICY, TOTE, today=date(2026, 10, 20), language="it")
    assert answer.text.startswith("Il Suo ordine SOL-104187 (Aurore tote in Tan) Le è stato consegnato "
                                  "il lunedì 5 ottobre: può restituirlo o cambiarlo fino al mercoledì 4 "
                                  "novembre, unworn, with its labels, in una delle nostre boutique.")
    assert [b["title"] for b in answer.buttons] == ["Organizzare un reso", "Prenotare una visita"]


def test_without_an_order_the_policy_is_said_as_it_stands() -> None:
    answer = returns_answer(POLICY, None, today=date(2026, 11, 24), language="en")
    assert answer.text == (
        "A piece may be returned or exchanged within 30 days of reaching you, unworn, with its labels, "
        "in any of our boutiques. Made-to-order pieces cannot be returned.")
    assert len(answer.buttons) == 2
    refund = returns_answer(POLICY, None, today=date(2026, 11, 24), language="fr", about_refund=True)
    assert refund.text == ("Le remboursement est effectué sur votre moyen de paiement d'origine dans les 14 "
                           "jours suivant le retour de la pièce chez nous. Une pièce peut nous revenir dans "
                           "les 30 jours suivant sa livraison, non portée, avec ses étiquettes.")
    coming = returns_answer(POLICY, COAT, today=date(2026, 11, 24), language="en", about_refund=True)
    assert coming.text.startswith("A refund reaches your original means of payment within 14 days") \
        and "Once your Riviera cashmere coat" in coming.text


@pytest.mark.parametrize(("text", "asks"), [
    ("how do I get a refund?", True), ("I want my money back", True), ("quand serai-je remboursée ?", True),
    ("vorrei il rimborso", True), ("can I return the coat?", False), ("puis-je l'échanger ?", False),
    (None, False),
])
def test_a_question_about_the_refund_is_heard(text: str | None, asks: bool) -> None:
    from salon.conversation.returns import asks_about_refund

    assert asks_about_refund(text) is asks


def test_without_a_policy_in_the_data_nothing_is_promised_and_the_advisor_explains() -> None:
    answer = returns_answer(None, TOTE, today=date(2026, 10, 20), language="en", advisor="Sophie")
    assert answer.text == "Sophie can explain how a return works and arrange it with you."
    assert answer.buttons == ({"title": "Ask Sophie", "payload": "/talk_to_advisor"},)
    assert "30" not in returns_answer(None, None, today=date(2026, 10, 20), language="it").text


def test_an_order_already_back_or_cancelled_has_nothing_to_send() -> None:
    back = returns_answer(POLICY, replace(TOTE, status="returned"), today=date(2026, 10, 20), language="en")
    assert back.text == "Your Aurore tote in Tan (order SOL-104187) is already back with us." and back.buttons == ()
    gone = returns_answer(POLICY, replace(COAT, status="cancelled"), today=date(2026, 10, 20), language="fr")
    assert gone.text == ("Votre commande SOL-104233 (Riviera cashmere coat en Camel) a été annulée : il "
                         "n'y a rien à nous renvoyer.")


def test_the_piece_she_means() -> None:
    today = date(2026, 10, 20)
    older = replace(TOTE, number="SOL-100001", delivered_at=DELIVERED - timedelta(days=60))
    # One she named wins.
    assert order_to_return([COAT, TOTE], today, POLICY, named=older) is older
    # A delivery still within its days, before one on its way.
    assert order_to_return([COAT, TOTE, older], today, POLICY) is TOTE
    # Nothing within its days: the only one on its way.
    assert order_to_return([COAT, older], today, POLICY) is COAT
    # Several on their way, none within its days: the newest delivered, to say its days are over.
    assert order_to_return([COAT, replace(COAT, number="SOL-1"), older], today, POLICY) is older
    assert order_to_return([], today, POLICY) is None
    assert order_to_return([replace(COAT, status="cancelled")], today, POLICY) is None
    # No policy: no days to be within.
    assert order_to_return([TOTE], today, None) is TOTE


def test_a_stored_policy_must_have_its_shape() -> None:
    assert ReturnsPolicy.from_json(POLICY.as_json()) == POLICY
    for broken in ([], {**POLICY.as_json(), "days": True}, {**POLICY.as_json(), "refund_days": 0},
                   {**POLICY.as_json(), "where": {"fr": "en boutique"}},
                   {**POLICY.as_json(), "excluded": {"en": " "}}):
        with pytest.raises(ReturnsPolicyError):
            ReturnsPolicy.from_json(broken)


def test_the_maisons_data_states_its_policy_in_each_of_its_languages() -> None:
    policy = load_maison(PROJECT_ROOT / "data" / "maison").house.returns
    assert policy is not None and (policy.days, policy.refund_days) == (30, 14)
    for texts in (policy.condition, policy.excluded, policy.where):
        assert set(texts) == {"en", "fr", "it"}


async def test_the_seeded_policy_is_read_back_and_a_maison_without_one_states_none(database_url: str) -> None:
    from tests.seeding import seed_maison

    seed_maison(database_url)
    engine = make_async_engine(database_url)
    try:
        rules = SqlHouseRules(engine)
        assert await rules.returns_policy() == load_maison(PROJECT_ROOT / "data" / "maison").house.returns
        sync = make_sync_engine(database_url)
        with sync.begin() as conn:
            conn.execute(update(house).values(returns=None))
        sync.dispose()
        assert await rules.returns_policy() is None
    finally:
        await engine.dispose()


# ------------------------------------------------------------------------------ the action

CLAIRE = "33600000001"  # Sophie's client; SOL-104233 (a coat) on its way, SOL-104187 delivered in October
STRANGER = "447700900123"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def _tracker(sender: str, text: str, entities: list[dict[str, Any]] | None = None,
             language: str = "en") -> Tracker:
    return Tracker(sender_id=sender, slots={"language": language},
                   latest_message={"text": text, "intent": {"name": "return_request"},
                                   "entities": entities or [], "metadata": sealed(sender, wa_id=sender)},
                   events=[], paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


async def _answer(tracker: Tracker) -> dict[str, Any]:
    from actions.returns import ActionReturns

    dispatcher = CollectingDispatcher()
    assert await ActionReturns().run(dispatcher, tracker, {}) == []
    [message] = dispatcher.messages
    return message


async def test_the_action_answers_for_her_own_order(sqlite_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    try:
        # Her coat is on its way: its days start when it reaches her.
        message = await _answer(_tracker(CLAIRE, "can I return it if it doesn't fit?"))
        assert message["text"].startswith("Once your Riviera cashmere coat in Camel (order SOL-104233) "
                                          "reaches you, you will have 30 days to return or exchange it")
        # She names the card holder delivered in October: its days are over, and Sophie is offered.
        named = _tracker(CLAIRE, "puis-je encore retourner la commande SOL-104187 ?",
                         [{"entity": "order_number", "value": "SOL-104187"}], language="fr")
        message = await _answer(named)
        assert "le délai de 30 jours pour un retour a pris fin le mercredi 4 novembre" in message["text"]
        assert message["text"].endswith("Sophie peut voir ce qu'il est possible de faire.")
        assert [b["title"] for b in message["buttons"]] == ["Parler à Sophie"]
        # Someone else's order number reads as no order at all: the policy, nothing of hers.
        message = await _answer(_tracker(STRANGER, "return SOL-104187",
                                         [{"entity": "order_number", "value": "SOL-104187"}]))
        assert message["text"].startswith("A piece may be returned or exchanged within 30 days")
        assert "Lune" not in message["text"] and "SOL-104187" not in message["text"]
    finally:
        backends.reset()


async def test_an_unreadable_policy_hands_the_question_to_a_person(sqlite_url: str, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from actions import backends

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    engine = make_sync_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(update(house).values(returns={"days": "thirty"}))
        # The card holder was delivered last week: within its days, were there a policy.
        conn.execute(update(orders).where(orders.c.id == "SOL-104187")
                     .values(delivered_at=NOW - timedelta(days=7)))
    engine.dispose()
    try:
        message = await _answer(_tracker(CLAIRE, "how do returns work?"))
        assert message["text"] == "Sophie can explain how a return works and arrange it with you."
        assert "returns policy unavailable" in caplog.text
    finally:
        backends.reset()
