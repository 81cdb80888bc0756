"""The catalog port on both SQL backends, the answers built from it, and the action."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from salon.conversation.phrasing import say_list
from salon.conversation.product_answers import product_answer, where_in_stock
from salon.integrations.catalog import SqlCatalog, best_name_match, colour_matches
from salon.storage.db import make_async_engine
from tests.seeding import seed_maison


@pytest.fixture()
async def catalog(database_url: str):  # type: ignore[no-untyped-def]
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    yield SqlCatalog(engine)
    await engine.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("is the Céleste saddle bag available in tan?", "Céleste saddle bag"),
        ("celeste saddle bag", "Céleste saddle bag"),
        ("do you have the Meridien Chronographe in Paris", "Méridien Chronographe"),
        ("Méridien 38 price?", "Méridien 38"),
        ("the ondine in black please", "Ondine bucket bag"),
        ("Eau de Solenne 100 ml", "Eau de Solenne"),
    ],
)
async def test_find_recognises_names_in_client_phrasing(catalog, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find(text)
    assert facts is not None and facts.name == expected


async def test_find_returns_nothing_for_unknown_or_ambiguous_names(catalog) -> None:  # type: ignore[no-untyped-def]
    assert await catalog.find("do you sell surfboards") is None
    assert await catalog.find("the méridien") is None  # two Méridien watches: ask, don't guess


async def test_facts_are_the_stored_ones(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    assert facts is not None
    assert facts.price_eur == 3400 and facts.price_gbp == 2950
    assert facts.materials[0] == "grained calfskin"
    assert facts.units_by_boutique(colour="tan") == {"london": 1, "milan": 0, "paris": 2}
    assert facts.units_by_boutique(colour="navy") == {"london": 0, "milan": 1, "paris": 1}
    assert await catalog.boutique_names() == {"paris": "Paris", "london": "London", "milan": "Milan"}


def test_colour_words_map_to_catalog_colours() -> None:
    assert colour_matches("navy", "Bleu Nuit")
    assert colour_matches("black", "Noir")
    assert colour_matches("tan", "Noir/Tan")
    assert colour_matches("Bleu nuit", "Bleu Nuit")
    assert not colour_matches("green", "Noir")


def test_best_name_match_prefers_the_longest_full_name() -> None:
    names = [("WT-001", "Méridien 38"), ("WT-002", "Méridien Chronographe")]
    assert best_name_match("the meridien chronographe", names) == "WT-002"
    assert best_name_match("", names) is None


async def test_answer_reports_real_stock_price_and_materials(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    cities = await catalog.boutique_names()
    answer = product_answer(facts, cities, colour="tan")
    assert "The Aurore tote in Tan is available in Paris and down to its last piece in London." in answer
    assert "Milan" not in answer
    assert "€3,400 (£2,950 in London)" in answer
    assert "grained calfskin" in answer


async def test_answer_offers_an_alert_when_nothing_is_on_hand(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    gone = type(facts)(**{**facts.__dict__, "stock": tuple(
        line.__class__(line.colour, line.size, line.boutique_id, 0) for line in facts.stock
    )})
    answer = product_answer(gone, await catalog.boutique_names())
    assert "not available in our three boutiques" in answer
    assert "let you know as soon as it returns" in answer


async def test_answer_names_the_real_colours_when_asked_for_another(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    answer = product_answer(facts, await catalog.boutique_names(), colour="green")
    assert answer.startswith("The Aurore tote is made in Noir, Tan and Bleu Nuit, not in green.")


NNBSP, NBSP = "\u202f", "\u00a0"  # Babel's narrow no-break and no-break spaces


@pytest.mark.parametrize(("piece", "kwargs", "start"), [
    ("Riviera cashmere coat", {"size": "40"},
     "The Riviera cashmere coat in size 40 is available in Paris and down to its last piece in London and Milan."),
    ("Riviera cashmere coat", {"size": "48"},
     "The Riviera cashmere coat is made in sizes 34, 36, 38, 40, 42 and 44, not in 48. Would one of these suit you?"),
    # Made in grey and in 42, never in grey in 42: its sizes in grey, not "back soon".
    ("Riviera cashmere coat", {"size": "42", "colour": "grey"},
     "The Riviera cashmere coat in Gris Chiné is made in sizes 36, 38, 40 and 44, not in 42."),
    ("Riviera cashmere coat", {"size": "40", "colour": "tan", "language": "fr"},
     "Le modèle Riviera cashmere coat en Camel, taille 40, est disponible à Milan et à Paris, où il n'en reste "
     "qu'une pièce."),
    ("Riviera cashmere coat", {"size": "48", "language": "it"},
     "Il modello Riviera cashmere coat è proposto nelle taglie 34, 36, 38, 40, 42 e 44, ma non nella 48."),
    ("Eau de Solenne", {"size": "50", "language": "fr"}, "Le modèle Eau de Solenne en 50 ml est disponible"),
    # The boutique she asks about first; elsewhere only when it has none.
    ("Méridien 38", {"boutique": "london"},
     "The Méridien 38 is down to its last piece in London. It is made of"),
    ("Méridien 38", {"boutique": "paris", "language": "fr"}, "Le modèle Méridien 38 est disponible à Paris. Il"),
    ("Riviera cashmere coat", {"size": "42", "colour": "tan", "boutique": "paris"},
     "The Riviera cashmere coat in Camel, size 42, is not available in Paris at the moment; it is available "
     "in London."),
    ("Perle earrings", {"boutique": "milan"}, "The Perle earrings are down to their last piece in Milan."),
    # A piece in one size: the size she names changes nothing.
    ("Aurore tote", {"size": "40"}, "The Aurore tote is available in London, Milan and Paris."),
])
async def test_a_size_asked_for_is_answered_in_that_size_or_with_the_sizes_made(  # type: ignore[no-untyped-def]
        catalog, piece: str, kwargs: dict[str, str], start: str) -> None:
    facts = await catalog.find(piece)
    answer = product_answer(facts, await catalog.boutique_names(), **kwargs)
    assert answer.startswith(start), answer


async def test_materials_the_catalog_does_not_name_in_her_language_are_left_out(catalog) -> None:  # type: ignore[no-untyped-def]
    """A database seeded before the materials had their names in French (the column is
    empty): the answer gives the availability and the price, without English words."""
    facts = await catalog.find("Aurore tote")
    older = type(facts)(**{**facts.__dict__, "materials_by_language": {}})
    cities = await catalog.boutique_names()
    fr = product_answer(older, cities, language="fr")
    assert "calfskin" not in fr and "réalisé" not in fr
    assert f"Son prix est de 3{NNBSP}400{NBSP}€ (2{NNBSP}950{NBSP}£ à Londres)." in fr
    assert "grained calfskin" in product_answer(older, cities, language="en")


async def test_answers_in_french_and_italian_with_the_locales_prices(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    cities = await catalog.boutique_names()
    fr = product_answer(facts, cities, colour="tan", language="fr")
    assert fr.startswith("Le modèle Aurore tote en Tan est disponible à Paris ; à Londres, il n'en reste "
                         "qu'une pièce.")
    assert f"au prix de 3{NNBSP}400{NBSP}€ (2{NNBSP}950{NBSP}£ à Londres)" in fr
    assert fr.endswith("Souhaitez-vous qu'un conseiller vous en réserve un ?")
    it = product_answer(facts, cities, colour="tan", language="it")
    assert it.startswith("Il modello Aurore tote in Tan è disponibile a Parigi; a Londra ne resta un solo "
                         "pezzo.")
    assert f"; il prezzo è di 3.400{NBSP}€ (2.950{NBSP}£ a Londra)." in it
    # The materials in her language (data/maison/materials.yml), never in English.
    assert "È realizzato in vitello martellato e fodera in pelle d'agnello;" in it
    assert "Il est réalisé en veau grainé et doublure en agneau, au prix" in fr
    assert it.endswith("Desidera che un consulente ne metta da parte uno per Lei?")
    other = product_answer(facts, cities, colour="green", language="it")
    assert other.startswith("Il modello Aurore tote è proposto in Noir, Tan e Bleu Nuit, ma non in green.")
    gone = type(facts)(**{**facts.__dict__, "stock": tuple(
        line.__class__(line.colour, line.size, line.boutique_id, 0) for line in facts.stock)})
    assert "n'est disponible dans aucune de nos trois boutiques" in product_answer(gone, cities, language="fr")
    assert product_answer(gone, cities, language="it").endswith(
        "Desidera che La avvisi non appena tornerà disponibile?")


async def test_french_and_italian_repeat_the_preposition_before_each_city(catalog) -> None:  # type: ignore[no-untyped-def]
    facts = await catalog.find("Aurore tote")
    cities = await catalog.boutique_names()
    stock = type(facts)(**{**facts.__dict__, "stock": tuple(
        line.__class__(line.colour, line.size, line.boutique_id, {"paris": 2, "london": 3, "milan": 1}[line.boutique_id])
        for line in facts.stock if line.colour == facts.stock[0].colour)})
    assert product_answer(stock, cities, language="en").startswith(
        "The Aurore tote is available in London and Paris and down to its last piece in Milan.")
    assert product_answer(stock, cities, language="fr").startswith(
        "Le modèle Aurore tote est disponible à Londres et à Paris ; à Milan, il n'en reste qu'une pièce.")
    assert product_answer(stock, cities, language="it").startswith(
        "Il modello Aurore tote è disponibile a Londra e a Parigi; a Milano ne resta un solo pezzo.")
    assert where_in_stock(["London", "Milan", "Paris"], "fr") == "boutiques de Londres, de Milan et de Paris"
    assert where_in_stock(["London", "Paris"], "it") == "boutique di Londra e di Parigi"
    assert where_in_stock(["Paris"], "fr") == "boutique de Paris"
    assert where_in_stock(["London", "Paris"], "en") == "London and Paris boutiques"
    assert say_list(["Londres", "Milan", "Paris"], "fr", "à") == "à Londres, à Milan et à Paris"
    assert say_list(["London", "Paris"], "en", "in") == "in London and Paris"
    assert say_list(["Londra", "Parigi"], "it", "di") == "di Londra e di Parigi"
    assert say_list([], "fr", "à") == ""


def _tracker(text: str, entities: list[dict[str, Any]], slots: dict[str, Any] | None = None) -> Tracker:
    return Tracker(
        sender_id="test-client",
        slots={"product": None, **(slots or {})},
        latest_message={"text": text, "intent": {"name": "product_inquiry"}, "entities": entities},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def test_action_answers_from_the_configured_database(sqlite_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.products import ActionProductInquiry

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    dispatcher = CollectingDispatcher()
    events = await ActionProductInquiry().run(
        dispatcher,
        _tracker(
            "is the celeste saddle bag available in tan?",
            [{"entity": "product", "value": "celeste saddle bag"}, {"entity": "colour", "value": "tan"}],
        ),
        {},
    )
    assert events == [{"event": "slot", "timestamp": None, "name": "product", "value": "Céleste saddle bag"}]
    assert dispatcher.messages[0]["text"].startswith("The Céleste saddle bag in Tan")

    dispatcher = CollectingDispatcher()
    await ActionProductInquiry().run(dispatcher, _tracker(
        "la borsa celeste saddle bag è disponibile in tan?",
        [{"entity": "product", "value": "celeste saddle bag"}, {"entity": "colour", "value": "tan"}],
        {"language": "it"}), {})
    assert dispatcher.messages[0]["text"].startswith("Il modello Céleste saddle bag in Tan")
    assert f"{NBSP}€" in dispatcher.messages[0]["text"]

    dispatcher = CollectingDispatcher()
    # Nothing of the catalog: she is asked which piece, and what for is kept.
    assert await ActionProductInquiry().run(dispatcher, _tracker("a surfboard?", []), {}) == [
        {"event": "slot", "timestamp": None, "name": "piece_asked_for", "value": "piece"}]
    assert dispatcher.messages[0]["response"] == "utter_ask_which_piece"
    backends.reset()


async def test_action_says_so_when_the_catalog_is_unreachable(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from actions import backends
    from actions.products import ActionProductInquiry

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    backends.reset()
    dispatcher = CollectingDispatcher()
    assert await ActionProductInquiry().run(dispatcher, _tracker("Aurore tote", []), {}) == []
    assert dispatcher.messages[0]["response"] == "utter_catalog_unavailable"
    backends.reset()


@pytest.mark.parametrize(("text", "entities", "language", "start"), [
    # "sable" is a colour here, not the Sable trench coat a search for the words would find.
    ("and in sable?", [{"entity": "colour", "value": "sable"}], "en", "The Céleste saddle bag"),
    ("et en sable ?", [{"entity": "colour", "value": "sable"}], "fr", "Le modèle Céleste saddle bag"),
    ("and in camel?", [{"entity": "colour", "value": "tan"}], "en", "The Céleste saddle bag in Tan"),
    ("e a Londra?", [{"entity": "boutique", "value": "london"}], "it", "Il modello Céleste saddle bag"),
])
async def test_a_follow_up_question_keeps_the_piece_just_discussed(  # type: ignore[no-untyped-def]
        sqlite_url: str, monkeypatch, text: str, entities: list[dict[str, str]], language: str,
        start: str) -> None:
    from actions import backends
    from actions.products import ActionProductInquiry

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    dispatcher = CollectingDispatcher()
    events = await ActionProductInquiry().run(
        dispatcher, _tracker(text, entities, {"language": language, "product": "Céleste saddle bag"}), {})
    assert dispatcher.messages[0]["text"].startswith(start), dispatcher.messages[0]["text"]
    assert events == [{"event": "slot", "timestamp": None, "name": "product", "value": "Céleste saddle bag"}]
    backends.reset()


@pytest.mark.parametrize(("text", "colour", "language", "said"), [
    ("avez-vous le sac Aurore en rouge ?", "red", "fr",
     "Le modèle Aurore tote existe en Noir, Tan et Bleu Nuit, mais pas en rouge."),
    ("e in verde scuro?", "green", "it", "Il modello Aurore tote è proposto in Noir, Tan e Bleu Nuit, ma non in verde scuro."),
    ("do you have the Aurore tote in red?", "red", "en", "The Aurore tote is made in Noir, Tan and Bleu Nuit, not in red."),
    ('/inform{"colour": "red"}', "red", "en", "The Aurore tote is made in Noir, Tan and Bleu Nuit, not in red."),
])
async def test_a_colour_the_piece_is_not_made_in_is_said_back_in_her_words(  # type: ignore[no-untyped-def]
        sqlite_url: str, monkeypatch, text: str, colour: str, language: str, said: str) -> None:
    """The NLU normalises "rouge" to red: the answer says "rouge", as she wrote it, never
    the value in English inside a French sentence; a button's value is said as it is."""
    from actions import backends
    from actions.products import ActionProductInquiry

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    word = next((w for w in ("rouge", "verde scuro", "red") if w in text and not text.startswith("/")), None)
    entity: dict[str, Any] = {"entity": "colour", "value": colour}
    if word is not None:
        entity.update(start=text.index(word), end=text.index(word) + len(word))
    dispatcher = CollectingDispatcher()
    await ActionProductInquiry().run(
        dispatcher, _tracker(text, [entity], {"language": language, "product": "Aurore tote"}), {})
    assert dispatcher.messages[0]["text"].startswith(said), dispatcher.messages[0]["text"]
    backends.reset()


@pytest.mark.parametrize(("text", "language", "start", "piece"), [
    ("and the other one?", "en", "The Aurore tote", "Aurore tote"),
    ("et l'autre ?", "fr", "Le modèle Aurore tote", "Aurore tote"),
    ("e la terza?", "it", "Il modello Mistral clutch", "Mistral clutch"),
])
async def test_the_other_one_is_another_of_the_pieces_just_suggested(  # type: ignore[no-untyped-def]
        sqlite_url: str, monkeypatch, text: str, language: str, start: str, piece: str) -> None:
    from actions import backends
    from actions.products import ActionProductInquiry

    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    backends.reset()
    dispatcher = CollectingDispatcher()
    suggested = ["Céleste saddle bag", "Aurore tote", "Mistral clutch"]
    events = await ActionProductInquiry().run(dispatcher, _tracker(
        text, [], {"language": language, "product": "Céleste saddle bag", "suggested_pieces": suggested}), {})
    assert dispatcher.messages[0]["text"].startswith(start), dispatcher.messages[0]["text"]
    assert events == [{"event": "slot", "timestamp": None, "name": "product", "value": piece}]
    backends.reset()


async def test_a_piece_with_a_plural_name_is_answered_in_the_plural(catalog) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    cities = await catalog.boutique_names()
    earrings = await catalog.find("are the Perle earrings available?")
    assert earrings is not None and earrings.plural
    answer = product_answer(earrings, cities)
    assert answer.startswith("The Perle earrings are ") and " is " not in answer
    assert "They are made of" in answer and answer.endswith("set them aside for you?")
    gone = replace(earrings, stock=())
    assert product_answer(gone, cities).endswith("let you know as soon as they return?")
    assert product_answer(earrings, cities, colour="green").startswith("The Perle earrings are made in ")
    # French and Italian name it through "le modèle" / "il modello": singular.
    assert product_answer(earrings, cities, language="fr").startswith("Le modèle Perle earrings est ")
    tote = await catalog.find("Aurore tote")
    assert tote is not None and not tote.plural
    assert product_answer(tote, cities).startswith("The Aurore tote is ")


@pytest.mark.parametrize(("words", "only"), [
    ("how much is it?", True), ("combien coûte-t-il ?", True), ("quanto costa?", True),
    ("what's the price?", True), ("is it available and how much?", False),
    ("où est-il disponible et à quel prix ?", False), ("do you have it in black?", False)])
def test_a_question_on_the_price_alone_is_told_from_one_on_where(words: str, only: bool) -> None:
    from salon.conversation.product_answers import asks_price_only

    assert asks_price_only(words) is only


async def test_the_price_asked_alone_leads_and_where_it_is_is_left_out(catalog) -> None:  # type: ignore[no-untyped-def]
    """"Combien coûte-t-il ?" after the piece was presented: its price (and what it is
    made of), not its boutiques again; a colour makes it a question of availability."""
    facts = await catalog.find("Étoile silk scarf")
    cities = await catalog.boutique_names()
    assert product_answer(facts, cities, language="fr", price_only=True) == (
        f"Le modèle Étoile silk scarf est proposé au prix de 490{NBSP}€ (420{NBSP}£ à Londres), en twill de "
        "soie. Souhaitez-vous qu'un conseiller vous en réserve un ?")
    earrings = await catalog.find("Perle earrings")
    assert product_answer(earrings, cities, price_only=True).startswith(
        "The Perle earrings are priced at €2,400 (£2,070 in London), in 18k yellow gold and Akoya pearls.")
    assert product_answer(facts, cities, colour="ivory", price_only=True).startswith("The Étoile silk scarf in Ivoire is")
