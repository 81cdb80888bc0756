"""Product answers in the maison's voice, composed only from catalog facts, in English,
French and Italian.

Every figure in an answer (price, material, stock) comes from :class:`ProductFacts`;
when the data cannot answer, the answer says what the maison will do instead. Prices are
said with :func:`~salon.conversation.phrasing.say_price`; French and Italian name a piece
through "le modèle" / "il modello", so no article has to guess its gender, and its
materials as the catalog names them in that language (never in English).

An answer answers what she asked: the colour, the size and the boutique she named, in
that order of checks (a size or colour the piece is not made in is said with those it is
made in, her word for the colour said back); the price alone when that is all she asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from salon.conversation.phrasing import pick, say_city, say_list, say_price, supported
from salon.integrations.catalog import ProductFacts, colour_matches, fold

__all__ = ["asks_price_only", "availability_sentence", "piece_words", "product_answer", "size_made",
           "where_in_stock"]

#: The words of this module, by language.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "and": "and", "at": "in ", "of": "",
        "subject": "The {name}", "in_colour": " in {colours}", "size": ", size {size}",
        "in_size": " in size {size}", "in_measure": " in {size}",
        "price": "{eur} ({gbp} in {london})",
        "nowhere_all": "{subject} is not available in our three boutiques at the moment.",
        "nowhere": "{subject} is not available in our boutiques at the moment.",
        "plenty": "{subject} is available {plenty}.",
        "last": "{subject} is down to its last piece {last}.",
        "both": "{subject} is available {plenty} and down to its last piece {last}.",
        "here_plenty": "{subject} is available {here}.",
        "here_last": "{subject} is down to its last piece {here}.",
        "here_none": "{subject} is not available {here} at the moment; it is available {elsewhere}.",
        "other_colours": ("The {name} is made in {colours}, not in {colour}. Would one of these "
                          "tempt you?"),
        "other_sizes": ("The {name} is made in sizes {sizes}, not in {size}. Would one of these "
                        "suit you?"),
        "facts": "{availability} It is made of {materials}, at {price}. {follow_up}",
        "set_aside": "Shall I ask a client advisor to set one aside for you?",
        "tell_me": "Would you like me to let you know as soon as it returns?",
        "boutique": "{cities} boutique", "boutiques": "{cities} boutiques",
        # A piece whose name is plural ("Perle earrings"): the same sentences, agreeing.
        "nowhere_all_plural": "{subject} are not available in our three boutiques at the moment.",
        "nowhere_plural": "{subject} are not available in our boutiques at the moment.",
        "plenty_plural": "{subject} are available {plenty}.",
        "last_plural": "{subject} are down to their last piece {last}.",
        "both_plural": "{subject} are available {plenty} and down to their last piece {last}.",
        "here_plenty_plural": "{subject} are available {here}.",
        "here_last_plural": "{subject} are down to their last piece {here}.",
        "here_none_plural": ("{subject} are not available {here} at the moment; they are available "
                             "{elsewhere}."),
        "other_colours_plural": ("The {name} are made in {colours}, not in {colour}. Would one of "
                                 "these tempt you?"),
        "other_sizes_plural": ("The {name} are made in sizes {sizes}, not in {size}. Would one of "
                               "these suit you?"),
        "facts_plural": "{availability} They are made of {materials}, at {price}. {follow_up}",
        "facts_no_materials": "{availability} It is priced at {price}. {follow_up}",
        "facts_no_materials_plural": "{availability} They are priced at {price}. {follow_up}",
        "price_only": "The {name} is priced at {price}{materials}. {follow_up}",
        "price_only_plural": "The {name} are priced at {price}{materials}. {follow_up}",
        "in_materials": ", in {materials}",
        "set_aside_plural": "Shall I ask a client advisor to set them aside for you?",
        "tell_me_plural": "Would you like me to let you know as soon as they return?",
    },
    "fr": {
        "and": "et", "at": "à ", "of": "de ",
        "subject": "Le modèle {name}", "in_colour": " en {colours}", "size": ", taille {size}",
        "in_size": " en taille {size}", "in_measure": " en {size}",
        "price": "{eur} ({gbp} à {london})",
        "nowhere_all": "{subject} n'est disponible dans aucune de nos trois boutiques pour le moment.",
        "nowhere": "{subject} n'est disponible dans aucune de nos boutiques pour le moment.",
        "plenty": "{subject} est disponible {plenty}.",
        "last": "{subject} est disponible {last}, où il n'en reste qu'une pièce.",
        "both": "{subject} est disponible {plenty} ; {last}, il n'en reste qu'une pièce.",
        "here_plenty": "{subject} est disponible {here}.",
        "here_last": "{subject} est disponible {here}, où il n'en reste qu'une pièce.",
        "here_none": "{subject} n'est pas disponible {here} pour le moment ; il l'est {elsewhere}.",
        "other_colours": ("Le modèle {name} existe en {colours}, mais pas en {colour}. L'un de "
                          "ces coloris vous tenterait-il ?"),
        "other_sizes": ("Le modèle {name} existe en tailles {sizes}, mais pas en {size}. L'une de "
                        "ces tailles vous conviendrait-elle ?"),
        "facts": "{availability} Il est réalisé en {materials}, au prix de {price}. {follow_up}",
        "facts_no_materials": "{availability} Son prix est de {price}. {follow_up}",
        "price_only": "Le modèle {name} est proposé au prix de {price}{materials}. {follow_up}",
        "in_materials": ", en {materials}",
        "set_aside": "Souhaitez-vous qu'un conseiller vous en réserve un ?",
        "tell_me": "Souhaitez-vous que je vous prévienne dès son retour ?",
        "boutique": "boutique {cities}", "boutiques": "boutiques {cities}",
    },
    "it": {
        "and": "e", "at": "a ", "of": "di ",
        "subject": "Il modello {name}", "in_colour": " in {colours}", "size": ", taglia {size}",
        "in_size": " nella taglia {size}", "in_measure": " da {size}",
        "price": "{eur} ({gbp} a {london})",
        "nowhere_all": ("{subject} al momento non è disponibile in nessuna delle nostre tre "
                        "boutique."),
        "nowhere": "{subject} al momento non è disponibile nelle nostre boutique.",
        "plenty": "{subject} è disponibile {plenty}.",
        "last": "{subject} è disponibile {last}, dove ne resta un solo pezzo.",
        "both": "{subject} è disponibile {plenty}; {last} ne resta un solo pezzo.",
        "here_plenty": "{subject} è disponibile {here}.",
        "here_last": "{subject} è disponibile {here}, dove ne resta un solo pezzo.",
        "here_none": "{subject} al momento non è disponibile {here}; lo trova {elsewhere}.",
        "other_colours": ("Il modello {name} è proposto in {colours}, ma non in {colour}. Uno di "
                          "questi colori potrebbe piacerLe?"),
        "other_sizes": ("Il modello {name} è proposto nelle taglie {sizes}, ma non nella {size}. "
                        "Una di queste taglie potrebbe andarLe bene?"),
        "facts": "{availability} È realizzato in {materials}; il prezzo è di {price}. {follow_up}",
        "facts_no_materials": "{availability} Il prezzo è di {price}. {follow_up}",
        "price_only": "Il modello {name} ha un prezzo di {price}{materials}. {follow_up}",
        "in_materials": ", in {materials}",
        "set_aside": "Desidera che un consulente ne metta da parte uno per Lei?",
        "tell_me": "Desidera che La avvisi non appena tornerà disponibile?",
        "boutique": "boutique {cities}", "boutiques": "boutique {cities}",
    },
}


#: The languages that repeat a preposition before each place of a list ("à Paris et à
#: Londres", "a Parigi e a Londra"); English says it once ("in Paris and London").


def _said(words: Mapping[str, str], key: str, facts: ProductFacts) -> str:
    """Sentence ``key``, agreeing with a plural name where the language words it so
    (French and Italian name the piece through "le modèle" / "il modello": singular).
    """
    return (words.get(f"{key}_plural") if facts.plural else None) or words[key]


def _join(items: Sequence[str], language: str) -> str:
    return say_list(items, language)


def _places(cities: Sequence[str], language: str, preposition: str = "at") -> str:
    """Cities (already said in ``language``) after "in" / "à" / "a" (``preposition="of"``:
    "de" / "di", nothing in English).
    """
    return say_list(cities, language, pick(_WORDS, language)[preposition].strip())


def _price(facts: ProductFacts, language: str) -> str:
    return pick(_WORDS, language)["price"].format(
        eur=say_price(facts.price_eur, "EUR", language),
        gbp=say_price(facts.price_gbp, "GBP", language), london=say_city("London", language))


def piece_words(name: str, language: str, colour: str | None = None,
                size: str | None = None) -> str:
    """A piece with its colour and size: "Aurore tote in Tan, size M" / "Aurore tote en
    Tan, taille M" / "Aurore tote in Tan, taglia M".
    """
    words = pick(_WORDS, language)
    return (name + (words["in_colour"].format(colours=colour) if colour else "")
            + (words["size"].format(size=size) if size else ""))


def where_in_stock(cities: Sequence[str], language: str) -> str:
    """The boutiques that have a piece: "Paris and London boutiques" / "boutiques de Paris
    et de Londres" / "boutique di Parigi e di Londra".
    """
    words = pick(_WORDS, language)
    said = _places([say_city(city, language) for city in cities], language, "of")
    return words["boutiques" if len(cities) > 1 else "boutique"].format(cities=said)


def size_made(facts: ProductFacts, asked: str) -> str | None:
    """The catalog size ``asked`` designates ("40" → "40", "50" → "50 ml", "m" → "M");
    None when the piece is not made in it.
    """
    wanted = fold(asked)
    for size in facts.sizes:
        made = fold(size)
        if made == wanted or (wanted.isdigit() and made.split(" ")[0] == wanted):
            return size
    return None


def _size_words(size: str, language: str, *, after_colour: bool) -> str:
    """" in size 40" / " en taille 40" / " nella taglia 40"; a measure as itself (" in 50
    ml", " da 50 ml"); after a colour, between commas (" in Camel, size 40,").
    """
    words = pick(_WORDS, language)
    measure = " " in size.strip()  # "50 ml", "38 mm"
    if after_colour:
        return (f", {size}," if measure else words["size"].format(size=size) + ",")
    return words["in_measure" if measure else "in_size"].format(size=size)


_PRICE = re.compile(r"\b(?:how much|price|prices|priced|cost|costs|combien|prix|tarif|coute|coutent|"
                    r"quanto|prezzo|prezzi|costa|costano)\b")
_WHERE = re.compile(r"\b(?:available|availability|in stock|do you have|have you got|where|disponible|"
                    r"disponibles|avez vous|vous avez|en stock|ou|disponibile|disponibili|avete|dove)\b")


def asks_price_only(text: str | None) -> bool:
    """Whether her message asks what a piece costs and not where it is ("how much is
    it?", "combien coûte-t-il ?", "quanto costa?"); "is it available, and the price?"
    asks both.
    """
    plain = fold(text or "").replace("'", " ")
    return bool(_PRICE.search(plain)) and not _WHERE.search(plain)


def _sized(facts: ProductFacts) -> bool:
    """Whether the piece comes in sizes to choose from (not "one size")."""
    return any(fold(size) != "one size" for size in facts.sizes)


def availability_sentence(
    facts: ProductFacts, cities: Mapping[str, str], colour: str | None = None,
    language: str = "en", size: str | None = None, boutique: str | None = None,
) -> str:
    """Where the piece (in a colour and a catalog size, when asked) is on hand today; in
    the boutique she asked about (its id) first, and elsewhere only when it has none.
    """
    words = pick(_WORDS, language)
    units = facts.units_by_boutique(colour=colour, size=size)
    shown = _join(list(facts.colours_matching(colour)), language) if colour else ""
    subject = (words["subject"].format(name=facts.name)
               + (words["in_colour"].format(colours=shown) if colour else "")
               + (_size_words(size, language, after_colour=bool(colour)) if size else ""))
    in_stock = [shop for shop, count in sorted(units.items()) if count > 0]
    if not in_stock:
        return _said(words, "nowhere_all" if len(cities) == 3 else "nowhere", facts).format(subject=subject)
    if boutique is not None and boutique in cities:
        here = _places([say_city(cities[boutique], language)], language)
        count = units.get(boutique, 0)
        if count > 0:
            return _said(words, "here_plenty" if count > 1 else "here_last", facts).format(
                subject=subject, here=here)
        elsewhere = _places([say_city(cities.get(b, b), language) for b in in_stock], language)
        return _said(words, "here_none", facts).format(subject=subject, here=here, elsewhere=elsewhere)
    last_pieces = [say_city(cities.get(b, b), language) for b in in_stock if units[b] == 1]
    plenty = [say_city(cities.get(b, b), language) for b in in_stock if units[b] > 1]
    key = "both" if plenty and last_pieces else "plenty" if plenty else "last"
    return _said(words, key, facts).format(subject=subject, plenty=_places(plenty, language),
                                           last=_places(last_pieces, language))


def product_answer(
    facts: ProductFacts, cities: Mapping[str, str], colour: str | None = None,
    language: str = "en", colour_said: str | None = None, size: str | None = None,
    boutique: str | None = None, price_only: bool = False,
) -> str:
    """A short answer about one product: availability, what it is made of, its price.
    ``colour`` is the colour asked for as the NLU normalises it ("red"); ``colour_said``
    the words she wrote for it ("rouge"), said back when the piece is not made in it.
    ``size``, the size she asked for ("40"): the availability in that size, or the sizes
    the piece is made in when not in hers (a piece in one size only is not sized).
    ``boutique``, the one she asked about (its id): the answer is about it first.
    ``price_only``: she asked what it costs and nothing else (:func:`asks_price_only`),
    so the price leads and where it is on hand is left out, unless a colour, a size or a
    boutique makes it a question of availability.
    """
    language = supported(language)
    words = _WORDS[language]
    made = None
    if size and _sized(facts):
        made = size_made(facts, size)
        if made is None:
            return _said(words, "other_sizes", facts).format(
                name=facts.name, size=size, sizes=_join(list(facts.sizes), language))
    if colour and not facts.colours_matching(colour):
        return _said(words, "other_colours", facts).format(
            name=facts.name, colour=colour_said or colour, colours=_join(list(facts.colours), language))
    if made is not None and colour:
        in_colour = [line.size for line in facts.stock if colour_matches(colour, line.colour)]
        if made not in in_colour:
            # Made in her size, and in her colour, but not in both: its sizes in that colour.
            shown = _join(list(facts.colours_matching(colour)), language)
            sizes = [size for size in facts.sizes if size in in_colour]
            return _said(words, "other_sizes", facts).format(
                name=facts.name + words["in_colour"].format(colours=shown), size=made,
                sizes=_join(sizes, language))
    materials = _join(list(facts.materials_in(language)[:2]), language)
    units = facts.units_by_boutique(colour=colour, size=made)
    follow_up = _said(words, "set_aside" if any(count > 0 for count in units.values()) else "tell_me",
                      facts)
    if price_only and not (colour or made or boutique):
        return _said(words, "price_only", facts).format(
            name=facts.name, price=_price(facts, language), follow_up=follow_up,
            materials=words["in_materials"].format(materials=materials) if materials else "")
    availability = availability_sentence(facts, cities, colour, language, made, boutique)
    return _said(words, "facts" if materials else "facts_no_materials", facts).format(
        availability=availability, materials=materials, price=_price(facts, language), follow_up=follow_up)
