""""Where is my order?" without a number: the order she means is found among her own,
and she is asked which only when she has several on their way."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import insert, select

from salon.conversation.order_status import order_in_question, which_order
from salon.integrations.orders import OrderFacts, SqlOrders
from salon.integrations.schema import order_items, orders
from salon.storage.db import make_async_engine, make_sync_engine
from tests.action_support import action_server_on, sealed
from tests.seeding import seed_maison

CLAIRE_WA = "33600000001"  # SOL-104233 (shipped, newest) and SOL-104187 (delivered in October)
SOMEONE_ELSE = "447700900123"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)


def _order(number: str, status: str, *, delivered: datetime | None = None,
           items: tuple[str, ...] = ("Riviera cashmere coat in Camel",)) -> OrderFacts:
    return OrderFacts(number=number, status=status, items=items, delivered_at=delivered)


def test_the_only_order_on_its_way_is_the_one_she_means() -> None:
    newest_first = [_order("SOL-000003", "delivered", delivered=datetime(2026, 11, 20, tzinfo=timezone.utc)),
                    _order("SOL-000002", "shipped"), _order("SOL-000001", "cancelled")]
    chosen = order_in_question(newest_first, date(2026, 11, 24))
    assert chosen is not None and chosen.number == "SOL-000002"


def test_several_on_their_way_nothing_is_chosen_for_her() -> None:
    assert order_in_question([_order("SOL-000002", "confirmed"), _order("SOL-000001", "delayed")],
                             date(2026, 11, 24)) is None


def test_nothing_on_its_way_a_recent_delivery_is_hers_an_old_one_is_not() -> None:
    delivered = datetime(2026, 10, 5, 15, 0, tzinfo=timezone.utc)
    history = [_order("SOL-000002", "delivered", delivered=delivered), _order("SOL-000001", "returned")]
    recent = order_in_question(history, date(2026, 10, 5) + timedelta(days=30))
    assert recent is not None and recent.number == "SOL-000002"
    assert order_in_question(history, date(2026, 10, 5) + timedelta(days=31)) is None
    assert order_in_question([_order("SOL-000001", "cancelled")], date(2026, 11, 24)) is None
    assert order_in_question([], date(2026, 11, 24)) is None


def test_which_order_names_each_with_its_pieces_and_offers_a_button_each() -> None:
    going = [_order("SOL-000002", "shipped"), _order("SOL-000001", "confirmed", items=("Lune card holder",))]
    text, buttons = which_order(going, "en")
    assert text == ("You have two orders on their way: SOL-000002 (Riviera cashmere coat in Camel) and "
                    "SOL-000001 (Lune card holder). Which one would you like news of?")
    assert buttons == [{"title": "SOL-000002", "payload": '/inform{"order_number": "SOL-000002"}'},
                       {"title": "SOL-000001", "payload": '/inform{"order_number": "SOL-000001"}'}]
    text, _ = which_order(going, "fr")
    assert text == ("Vous avez deux commandes en cours : SOL-000002 (Riviera cashmere coat en Camel) et "
                    "SOL-000001 (Lune card holder). Laquelle souhaitez-vous suivre ?")
    text, _ = which_order(going, "it")
    assert text.startswith("Ha due ordini in corso: SOL-000002") and text.endswith("Di quale desidera notizie?")
    many = [_order(f"SOL-00000{n}", "confirmed") for n in range(4)]
    text, buttons = which_order(many, "en")
    assert buttons == [] and text.startswith("You have 4 orders") and text.endswith("Its number is enough.")


async def test_her_recent_orders_newest_first_and_no_one_elses(database_url: str) -> None:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    try:
        book = SqlOrders(engine)
        mine = await book.recent_for_client(wa_id=CLAIRE_WA, user_id=None)
        assert [o.number for o in mine] == ["SOL-104233", "SOL-104187"]
        assert mine[0].status == "shipped" and mine[0].carrier == "DHL Express"
        assert mine[0].items and "Camel" in mine[0].items[0]
        assert mine[0] == await book.for_client("SOL-104233", wa_id=CLAIRE_WA, user_id=None)
        assert await book.recent_for_client(wa_id=SOMEONE_ELSE, user_id=None) == []
        assert await book.recent_for_client(wa_id=None, user_id=None) == []
        assert [o.number for o in await book.recent_for_client(wa_id=CLAIRE_WA, user_id=None, limit=1)] \
            == ["SOL-104233"]
    finally:
        await engine.dispose()


def _tracker(sender: str, text: str = "where is my order?", entities: list[dict[str, Any]] | None = None,
             slots: dict[str, Any] | None = None) -> Tracker:
    return Tracker(sender_id=sender, slots=slots or {},
                   latest_message={"text": text, "intent": {"name": "check_order_status"},
                                   "entities": entities or [], "metadata": sealed(sender, wa_id=sender)},
                   events=[], paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


async def test_the_action_finds_her_order_and_asks_nothing(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionFindOrder

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    dispatcher = CollectingDispatcher()
    events = await ActionFindOrder().run(dispatcher, _tracker(CLAIRE_WA), {})
    assert events == [{"event": "slot", "timestamp": None, "name": "order_number", "value": "SOL-104233"}]
    assert dispatcher.messages == []
    # Someone the book does not know: the form asks for the number.
    assert await ActionFindOrder().run(CollectingDispatcher(), _tracker(SOMEONE_ELSE), {}) == []
    # She named one: that one is answered, nothing is chosen for her.
    named = _tracker(CLAIRE_WA, "where is SOL-104187?",
                     [{"entity": "order_number", "value": "SOL-104187"}])
    assert await ActionFindOrder().run(CollectingDispatcher(), named, {}) == []
    backends.reset()


async def test_with_several_on_their_way_she_is_asked_which(sqlite_url: str, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.orders import ActionAskOrderNumber, ActionFindOrder

    action_server_on(sqlite_url, tmp_path, monkeypatch, NOW)
    # A second order of Claire's, confirmed after the shipped one.
    engine = make_sync_engine(sqlite_url)
    with engine.begin() as conn:
        shipped = conn.execute(select(orders).where(orders.c.id == "SOL-104233")).one()._asdict()
        conn.execute(insert(orders).values({**shipped, "id": "SOL-104299", "status": "confirmed",
                                            "created_at": shipped["created_at"] + timedelta(days=1),
                                            "carrier": None, "tracking_number": None, "tracking_url": None,
                                            "shipped_at": None}))
        item = conn.execute(select(order_items).where(order_items.c.order_id == "SOL-104233")).first()
        assert item is not None
        conn.execute(insert(order_items).values({**item._asdict(), "order_id": "SOL-104299"}))
    engine.dispose()

    assert await ActionFindOrder().run(CollectingDispatcher(), _tracker(CLAIRE_WA), {}) == []
    dispatcher = CollectingDispatcher()
    await ActionAskOrderNumber().run(dispatcher, _tracker(CLAIRE_WA, "où en est ma commande ?", slots={"language": "fr"}), {})
    [message] = dispatcher.messages
    assert message["text"].startswith("Vous avez deux commandes en cours : SOL-104299 (")
    assert [b["payload"] for b in message["buttons"]] == ['/inform{"order_number": "SOL-104299"}',
                                                          '/inform{"order_number": "SOL-104233"}']
    # One on its way, or none: the usual question for the number.
    dispatcher = CollectingDispatcher()
    await ActionAskOrderNumber().run(dispatcher, _tracker(SOMEONE_ELSE), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_ask_order_number"]
    backends.reset()
