"""The restock vertical end to end: the form finds the piece, the action notes the wish (or
says where the piece already is), the stock comes back, and the alert reaches the client
through the outbound worker and the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from salon.clock import ManualClock
from salon.config import Settings
from salon.identity import ClientRef
from salon.integrations.schema import product_variants, products, variant_stock
from salon.outbound.queue import SENT_TEMPLATE
from salon.outbound.restock import RestockBook
from salon.storage.db import make_sync_engine
from tests.action_support import sealed
from tests.outbound_support import PNID, outbound_stack
from tests.seeding import seed_maison

CLAIRE_WA = "33600000001"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def _tracker(slots: dict[str, Any], metadata: dict[str, Any] | None = None, sender: str = CLAIRE_WA,
             text: str = "let me know when it is back") -> Tracker:
    return Tracker(
        sender_id=sender, slots=slots,
        latest_message={"text": text, "intent": {"name": "restock_alert"},
                        "entities": [], "metadata": metadata if metadata is not None else sealed(sender, wa_id=CLAIRE_WA)},
        events=[], paused=False, followup_action=None, active_loop={"name": "restock_alert_form"},
        latest_action_name="restock_alert_form",
    )


@pytest.fixture()
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from actions import backends

    url = f"sqlite:///{tmp_path / 'salon.db'}"
    seed_maison(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("WA_PHONE_NUMBER_ID", PNID)
    backends.reset()
    yield url
    backends.reset()


def sold_out_colour(url: str) -> tuple[str, str, str, str]:
    """(product name, colour, sku, a boutique) of a one-size colour out of stock everywhere."""
    engine = make_sync_engine(url)
    v, s, p = product_variants.c, variant_stock.c, products.c
    with engine.connect() as conn:
        row = conn.execute(
            select(p.name, v.colour, v.sku, func.min(s.boutique_id))
            .join(product_variants, v.product_id == p.id).join(variant_stock, s.sku == v.sku)
            .where(v.size == "one size").group_by(p.name, v.colour, v.sku)
            .having(func.sum(s.quantity) == 0).order_by(v.sku).limit(1)).one()
    engine.dispose()
    return row[0], row[1], row[2], row[3]


async def test_form_finds_the_piece_or_asks_again(seeded: str) -> None:
    from actions.restock import ValidateRestockAlertForm

    form = ValidateRestockAlertForm()
    dispatcher = CollectingDispatcher()
    assert await form.validate_product("opaline mini bag", dispatcher, _tracker({}), {}) == {"product": "Opaline mini bag"}
    assert dispatcher.messages == []
    assert await form.validate_product("a flying carpet", dispatcher, _tracker({}), {}) == {"product": None}
    assert dispatcher.messages[0]["response"] == "utter_restock_unknown_piece"


async def test_restock_request_noted_then_alert_delivered(seeded: str, tmp_path: Path) -> None:
    from actions import backends
    from actions.restock import ActionRestockRequest

    name, colour, sku, boutique = sold_out_colour(seeded)
    dispatcher = CollectingDispatcher()
    events = await ActionRestockRequest().run(dispatcher, _tracker({"product": name, "colour": colour.lower()}), {})
    assert [e["name"] for e in events] == ["product", "colour", "size"]
    [said] = dispatcher.messages
    assert said["response"] == "utter_restock_noted" and said["piece"] == f"{name} in {colour}"
    [waiting] = await backends.restock().waiting()
    assert waiting.client == ClientRef(PNID, wa_id=CLAIRE_WA) and waiting.colour == colour

    # Someone writing from outside WhatsApp (the shell) is told, nothing is stored.
    dispatcher = CollectingDispatcher()
    await ActionRestockRequest().run(dispatcher, _tracker({"product": name, "colour": colour}, metadata={}, sender="shell"), {})
    assert dispatcher.messages[0]["response"] == "utter_restock_whatsapp_only"
    assert len(await backends.restock().waiting()) == 1

    # The piece comes back in one boutique; the alert goes out through the worker.
    settings = Settings(var_dir=tmp_path, data_dir=tmp_path, database_url=seeded, redis_url=None)
    clock = ManualClock(T0)
    async with outbound_stack(settings, clock) as stack:
        book = RestockBook(engine=stack.queue.engine, queue=stack.queue, phone_number_id=PNID)
        await book.initialize()
        assert await book.set_stock(sku, boutique, 1, clock.now()) == 1
        clock.advance(timedelta(minutes=1))
        for _ in range(5):
            if await stack.worker.run_once() == 0:
                break
        await stack.idle()
        await stack.channel.settle()
        [alert] = await stack.delivered(CLAIRE_WA)
        assert alert["type"] == "template" and alert["template"] == "restock_alert"
        assert name in alert["body"] and "Claire" in alert["body"]  # her French template, her name
        notified = (await book.get(waiting.id))
        assert notified is not None and notified.state == "notified"
        request = await stack.queue.get(notified.outbound_id or "")
        assert request is not None and request.state == SENT_TEMPLATE and request.template == "restock_alert"
        # A bot-initiated message answers nothing: no session for a client who never wrote.
        assert await stack.parts.sessions.get(ClientRef(PNID, wa_id=CLAIRE_WA)) is None

    # Asking about a piece that is in stock: where it is, nothing noted.
    dispatcher = CollectingDispatcher()
    await ActionRestockRequest().run(dispatcher, _tracker({"product": name, "colour": colour}), {})
    assert dispatcher.messages[0]["response"] == "utter_restock_in_stock"
    assert dispatcher.messages[0]["boutiques"].endswith(("boutique", "boutiques"))
    assert await backends.restock().waiting() == []


async def test_the_piece_and_its_boutiques_are_said_in_the_conversations_language(seeded: str) -> None:
    from actions import backends
    from actions.restock import ActionRestockRequest

    name, colour, _, _ = sold_out_colour(seeded)
    dispatcher = CollectingDispatcher()
    await ActionRestockRequest().run(dispatcher, _tracker(
        {"product": name, "colour": colour, "language": "it"}, text="mi avvisi quando torna disponibile"), {})
    [said] = dispatcher.messages
    assert said["response"] == "utter_restock_noted" and said["piece"] == f"{name} in {colour}"
    [waiting] = await backends.restock().waiting()
    assert waiting.language == "it"  # the alert will speak Italian
    dispatcher = CollectingDispatcher()
    await ActionRestockRequest().run(dispatcher, _tracker(
        {"product": "Aurore tote", "colour": "tan", "language": "fr"}, text="prévenez-moi quand il revient"), {})
    [said] = dispatcher.messages
    assert said["response"] == "utter_restock_in_stock" and said["piece"] == "Aurore tote en Tan"
    assert said["boutiques"] == "boutiques de Londres et de Paris"  # in the order of the boutiques' ids
    dispatcher = CollectingDispatcher()
    await ActionRestockRequest().run(dispatcher, _tracker(
        {"product": "Aurore tote", "colour": "tan", "language": "it"}, text="mi avvisi quando torna"), {})
    assert dispatcher.messages[0]["boutiques"] == "boutique di Londra e di Parigi"


def test_the_alert_text_in_each_language() -> None:
    from salon.outbound.restock import alert_text

    params = {"product_name": "Aurore tote (Tan)", "boutique": "Milano", "first_name": "Francesca"}
    assert alert_text(params, "it") == (
        "Buongiorno Francesca, il modello Aurore tote (Tan) che Le interessava è di nuovo disponibile "
        "nella nostra boutique di Milano. Desidera che lo teniamo da parte per Lei?")
    nameless = {"product_name": "Aurore tote (Tan)", "boutique": "Paris"}
    assert alert_text(nameless, "fr").startswith("Bonjour, la pièce Aurore tote (Tan) qui vous intéressait")
    assert alert_text(nameless, "it").startswith("Buongiorno, il modello")
    assert alert_text({**params, "first_name": "Claire"}, "fr").startswith(
        "Bonjour Claire, la pièce Aurore tote (Tan) qui vous intéressait")
    assert alert_text(nameless, "de").startswith("Good day, the Aurore tote (Tan) you asked about")


@pytest.mark.parametrize("language", ["en", "fr", "it"])
def test_the_free_form_alert_says_the_template_words(language: str) -> None:
    """Inside the window the alert goes free-form: the same words as the approved
    ``restock_alert`` template, filled with the same parameters."""
    from salon.outbound.restock import alert_text
    from salon.templates.registry import TemplateChoice, TemplateRegistry

    params = {"product_name": "Aurore tote (Tan)", "boutique": "Milano", "first_name": "Francesca"}
    choice = TemplateRegistry.load_default().build("restock_alert", language, params)
    assert isinstance(choice, TemplateChoice), choice
    assert alert_text(params, language) == choice.rendered["body"]
