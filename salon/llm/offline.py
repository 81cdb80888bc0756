"""The offline responder: styling answers composed only from retrieved catalog facts.

It is the fallback's answer whenever no model is configured (the default, and ``make
demo``), when the client has not agreed to model-drafted replies, when the model fails or
runs out of time, and when a model's draft cannot be repaired. It is deterministic: the
same question, catalog, client and language give the same words. Each answer names at
most two retrieved pieces with a material and the price in the client's currency, says
where the first is on hand today, and offers the client's advisor by name. Nothing in it
comes from anywhere but the catalog and the client's record, so it passes the same
guardrails as a model's answer (a test holds it to that for every held-out question, in
every language).

When nothing in the catalog respects what the client said (her budget, for whom, the
kind, size or colour she asked for, what she already owns), :func:`nothing_fits_answer`
says so plainly, naming those constraints, and offers her advisor by name: no other
piece is put forward in their place.

Every sentence exists in English, French and Italian (:data:`PHRASES`), in the maison's
register: "vous" in French, "Lei" in Italian. The pieces keep their catalog names; in
French and Italian they are "le modèle …" / "il modello …", the way an advisor speaks of
a house model, and a material is said in the client's language when
the catalog names it in that language (``data/maison/materials.yml``; otherwise only the
price is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from salon.conversation.language import supported
from salon.conversation.phrasing import say_city, say_list, say_price
from salon.integrations.catalog import ProductFacts
from salon.llm.constraints import Budget, Fit
from salon.llm.context import ClientContext
from salon.llm.retrieval import Ranked

__all__ = ["NOTHING_FITS", "PHRASES", "NothingFits", "Phrases", "advisor_offer", "availability",
           "money", "nothing_fits_answer", "offline_answer", "safe_answer", "salutation"]

_NNBSP = "\u202f"


@dataclass(frozen=True, slots=True)
class Phrases:
    """Every sentence of the offline responder in one language.

    Placeholders: ``{name}`` a client's salutation or a piece's name, ``{pieces}`` the
    pieces suggested, ``{advisor}`` the advisor's first name, ``{places}`` / ``{plenty}``
    / ``{last}`` boutique cities with their preposition (before each city in French and
    Italian: :func:`salon.conversation.phrasing.say_list`), ``{everywhere}`` the boutiques. ``…_one`` / ``…_many``: for one
    piece or two. ``thousands``: how digits are grouped in a currency the maison does not price
    in (its own, euro and pound, are said by :func:`salon.conversation.phrasing.say_price`).
    """

    opening: str
    opening_named: str
    suggest: str
    piece: str
    subject: str
    available: str
    last_piece: str
    available_and_last: str
    unavailable: str
    everywhere_three: str
    everywhere: str
    offer_advisor_one: str
    offer_advisor_many: str
    offer_anyone_one: str
    offer_anyone_many: str
    rather_advisor: str
    rather_anyone: str
    pass_on: str
    conjunction: str
    preposition: str
    titles: Mapping[str, str]
    thousands: str


PHRASES: Final[Mapping[str, Phrases]] = {
    "en": Phrases(
        opening="With pleasure.",
        opening_named="With pleasure, {name}.",
        suggest="I would suggest {pieces}.",
        piece="the {name} ({facts})",
        subject="The {name}",
        available="{subject} is available {places}.",
        last_piece="{subject} is down to its last piece {places}.",
        available_and_last="{subject} is available {plenty} and down to its last piece {last}.",
        unavailable="{subject} is not available in {everywhere} at the moment.",
        everywhere_three="our three boutiques",
        everywhere="our boutiques",
        offer_advisor_one="Shall I ask {advisor}, your client advisor, to set it aside for you or arrange a fitting?",
        offer_advisor_many="Shall I ask {advisor}, your client advisor, to set them aside for you or arrange a fitting?",
        offer_anyone_one="Shall I ask a client advisor to set it aside for you or arrange a fitting?",
        offer_anyone_many="Shall I ask a client advisor to set them aside for you or arrange a fitting?",
        rather_advisor="I would rather {advisor}, your client advisor, answer this personally.",
        rather_anyone="I would rather a client advisor answer this personally.",
        pass_on="Shall I pass your message on?",
        conjunction="and",
        preposition="in ",
        titles={"Ms": "Ms", "Mrs": "Mrs", "Miss": "Miss", "Mx": "Mx", "Mr": "Mr", "Dr": "Dr", "Mme": "Mrs",
                "Mlle": "Miss", "M.": "Mr"},
        thousands=",",
    ),
    "fr": Phrases(
        opening="Avec plaisir.",
        opening_named="Avec plaisir, {name}.",
        suggest="Je vous conseillerais {pieces}.",
        piece="le modèle {name} ({facts})",
        subject="Le modèle {name}",
        available="{subject} est disponible {places}.",
        last_piece="Il reste une dernière pièce du modèle {name} {places}.",
        available_and_last="{subject} est disponible {plenty}, et il en reste une dernière pièce {last}.",
        unavailable="{subject} n'est pas disponible dans {everywhere} pour le moment.",
        everywhere_three="nos trois boutiques",
        everywhere="nos boutiques",
        offer_advisor_one=("Souhaitez-vous que je demande à {advisor}, qui vous suit personnellement, "
                           f"de vous le réserver ou d'organiser un essayage{_NNBSP}?"),
        offer_advisor_many=("Souhaitez-vous que je demande à {advisor}, qui vous suit personnellement, "
                            f"de vous les réserver ou d'organiser un essayage{_NNBSP}?"),
        offer_anyone_one=("Souhaitez-vous que je demande à l'un de nos conseillers de vous le réserver "
                          f"ou d'organiser un essayage{_NNBSP}?"),
        offer_anyone_many=("Souhaitez-vous que je demande à l'un de nos conseillers de vous les réserver "
                           f"ou d'organiser un essayage{_NNBSP}?"),
        rather_advisor="Je préférerais que {advisor}, qui vous suit personnellement, vous réponde directement.",
        rather_anyone="Je préférerais que l'un de nos conseillers vous réponde directement.",
        pass_on=f"Souhaitez-vous que je lui transmette votre message{_NNBSP}?",
        conjunction="et",
        preposition="à ",
        titles={"Ms": "Madame", "Mme": "Madame", "Mrs": "Madame", "Miss": "Madame", "Mlle": "Madame",
                "Mr": "Monsieur", "M.": "Monsieur", "Dr": "Docteur"},
        thousands=_NNBSP,
    ),
    "it": Phrases(
        opening="Con piacere.",
        opening_named="Con piacere, {name}.",
        suggest="Le suggerirei {pieces}.",
        piece="il modello {name} ({facts})",
        subject="Il modello {name}",
        available="{subject} è disponibile {places}.",
        last_piece="Del modello {name} resta un ultimo pezzo {places}.",
        available_and_last="{subject} è disponibile {plenty}, mentre {last} ne resta un ultimo pezzo.",
        unavailable="{subject} al momento non è disponibile nelle {everywhere}.",
        everywhere_three="nostre tre boutique",
        everywhere="nostre boutique",
        offer_advisor_one=("Desidera che chieda a {advisor}, che La segue personalmente, "
                           "di tenerlo da parte per Lei o di fissare una prova?"),
        offer_advisor_many=("Desidera che chieda a {advisor}, che La segue personalmente, "
                            "di tenerli da parte per Lei o di fissare una prova?"),
        offer_anyone_one=("Desidera che chieda a uno dei nostri consulenti di tenerlo da parte per Lei "
                          "o di fissare una prova?"),
        offer_anyone_many=("Desidera che chieda a uno dei nostri consulenti di tenerli da parte per Lei "
                           "o di fissare una prova?"),
        rather_advisor="Preferirei che fosse {advisor}, che La segue personalmente, a risponderLe direttamente.",
        rather_anyone="Preferirei che fosse uno dei nostri consulenti a risponderLe direttamente.",
        pass_on="Desidera che inoltri il Suo messaggio?",
        conjunction="e",
        preposition="a ",
        titles={"Ms": "Signora", "Mme": "Signora", "Mrs": "Signora", "Miss": "Signora", "Mlle": "Signora",
                "Mr": "Signor", "M.": "Signor"},
        thousands=".",
    ),
}
"""The offline responder's sentences, by language."""



def _phrases(language: str | None) -> Phrases:
    return PHRASES[supported(language)]


def salutation(client: ClientContext, language: str | None = "en") -> str | None:
    """How the client is addressed: "Ms Laurent" / "Mrs Vasseur" (Mme), "Madame Laurent",
    "Signora Bellini"; without a title in that language (Mx in French or Italian, Dr in
    Italian), the full name; None for someone not in the book.
    """
    words = _phrases(language)
    if not client.last_name:
        return None
    title = words.titles.get(client.title or "")
    if title is not None:
        return f"{title} {client.last_name}"
    return " ".join(part for part in (client.first_name, client.last_name) if part)


def money(amount: int, currency: str, language: str | None = "en") -> str:
    """An amount as the maison writes it in ``language``: "€3,300", "3 300 €", "3.300 €";
    a currency the catalog has no price in keeps its code ("USD 800").
    """
    if currency not in ("EUR", "GBP"):
        return f"{currency} {amount:,}".replace(",", _phrases(language).thousands)
    return say_price(amount, currency, supported(language))


def _price(product: ProductFacts, client: ClientContext, language: str, currency: str | None = None) -> str:
    """The piece's price in ``currency`` (the one her budget is in), else the client's."""
    code = currency if currency in ("EUR", "GBP") else client.currency
    return money(product.price_gbp if code == "GBP" else product.price_eur, code, language)


def _material(product: ProductFacts, language: str) -> str:
    named = product.materials_in(supported(language))
    return named[0] if named else ""


def _piece(product: ProductFacts, client: ClientContext, language: str, currency: str | None = None) -> str:
    words = _phrases(language)
    facts = ", ".join(part for part in (_material(product, language), _price(product, client, language, currency))
                      if part)
    return words.piece.format(name=product.name, facts=facts)


def _chosen(ranked: Sequence[Ranked]) -> list[ProductFacts]:
    if not ranked:
        return []
    chosen = [ranked[0].product]
    if len(ranked) > 1 and ranked[1].score >= 0.5 * ranked[0].score:
        chosen.append(ranked[1].product)
    return chosen


def _places(cities: Sequence[str], words: Phrases, language: str) -> str:
    """"in London, Milan and Paris" / "à Londres, à Milan et à Paris" / "a Londra, a
    Milano e a Parigi".
    """
    return say_list([say_city(city, language) for city in cities], language,
                    words.preposition.strip())


def availability(product: ProductFacts, cities: Mapping[str, str], language: str | None = "en") -> str:
    """Where the piece is on hand today, in the client's language."""
    code = supported(language)
    words = _phrases(language)
    units = product.units_by_boutique()
    subject = words.subject.format(name=product.name)
    in_stock = [boutique for boutique, count in sorted(units.items()) if count > 0]
    if not in_stock:
        everywhere = words.everywhere_three if len(cities) == 3 else words.everywhere
        return words.unavailable.format(subject=subject, everywhere=everywhere)
    last = [cities.get(b, b) for b in in_stock if units[b] == 1]
    plenty = [cities.get(b, b) for b in in_stock if units[b] > 1]
    if plenty and last:
        return words.available_and_last.format(subject=subject, plenty=_places(plenty, words, code),
                                               last=_places(last, words, code))
    if last:
        return words.last_piece.format(subject=subject, name=product.name, places=_places(last, words, code))
    return words.available.format(subject=subject, places=_places(plenty, words, code))


def advisor_offer(client: ClientContext, plural: bool = False, language: str | None = "en") -> str:
    """The closing question: shall their advisor (by first name when known) set the piece,
    or pieces, aside or arrange a fitting?
    """
    words = _phrases(language)
    if client.advisor_first_name:
        template = words.offer_advisor_many if plural else words.offer_advisor_one
        return template.format(advisor=client.advisor_first_name)
    return words.offer_anyone_many if plural else words.offer_anyone_one


def _opening(client: ClientContext, language: str) -> str:
    words = _phrases(language)
    name = salutation(client, language)
    return words.opening_named.format(name=name) if name else words.opening


def offline_answer(
    ranked: Sequence[Ranked], client: ClientContext, cities: Mapping[str, str], language: str | None = "en",
    currency: str | None = None,
) -> tuple[str, list[str]] | None:
    """The answer, in ``language`` (English, French or Italian; anything else is
    English), and the ids of the pieces it names, or None when nothing was retrieved.
    Prices are in ``currency`` (EUR or GBP: the one her budget is in), else the client's.
    """
    chosen = _chosen(ranked)
    if not chosen:
        return None
    lang = supported(language)
    words = _phrases(lang)
    pieces = f" {words.conjunction} ".join(_piece(p, client, lang, currency) for p in chosen)
    text = " ".join((
        _opening(client, lang),
        words.suggest.format(pieces=pieces),
        availability(chosen[0], cities, lang),
        advisor_offer(client, plural=len(chosen) > 1, language=lang),
    ))
    return text, [p.id for p in chosen]


def safe_answer(
    ranked: Sequence[Ranked], client: ClientContext, cities: Mapping[str, str], language: str | None = "en",
    currency: str | None = None,
) -> tuple[str, list[str]]:
    """What goes out when a model's draft could not be made right: the grounded offline
    answer, or, with nothing retrieved, the advisor alone (in ``language``).
    """
    grounded = offline_answer(ranked, client, cities, language, currency)
    if grounded is not None:
        return grounded
    lang = supported(language)
    words = _phrases(lang)
    rather = (words.rather_advisor.format(advisor=client.advisor_first_name) if client.advisor_first_name
              else words.rather_anyone)
    return f"{_opening(client, lang)} {rather} {words.pass_on}", []


# --------------------------------------------------------------------------- nothing fits
@dataclass(frozen=True, slots=True)
class NothingFits:
    """The "nothing fits" answer in one language.

    ``sentence`` holds ``{what}``: the constraints, each fragment in its own words
    (``of_kind``; a budget by kind, ``{amount}``, ``{low}``, ``{high}``; for whom;
    ``size``, ``colour`` with her ``{value}``; ``not_owned``). It opens with its own
    ``opening`` / ``opening_named`` (``{name}``): not the suggestions' "with pleasure",
    which would announce what does not follow.
    """

    opening: str
    opening_named: str
    sentence: str
    of_kind: str
    budget: Mapping[str, str]
    for_man: str
    for_woman: str
    for_child: str
    for_anyone: str
    size: str
    colour: str
    not_owned: str
    ask_advisor: str
    ask_anyone: str


NOTHING_FITS: Final[Mapping[str, NothingFits]] = {
    "en": NothingFits(
        opening="With pleasure.",
        opening_named="With pleasure, {name}.",
        sentence="I'm afraid we have nothing{what} at the moment.",
        of_kind="of that kind",
        budget={"under": "under {amount}", "max": "up to {amount}", "around": "around {amount}",
                "between": "between {low} and {high}", "min": "from {amount}"},
        for_man="for a man", for_woman="for a woman", for_child="for a child",
        for_anyone="that anyone could wear", size="in size {value}", colour="in {value}",
        not_owned="that you do not already have",
        ask_advisor="Shall I ask {advisor}, your client advisor, to look into it with you?",
        ask_anyone="Shall I ask a client advisor to look into it with you?",
    ),
    "fr": NothingFits(
        opening="Merci.",
        opening_named="Merci, {name}.",
        sentence="Je crains que nous n'ayons rien{what} en ce moment.",
        of_kind="de ce type",
        budget={"under": "à moins de {amount}", "max": "jusqu'à {amount}", "around": "autour de {amount}",
                "between": "entre {low} et {high}", "min": "à partir de {amount}"},
        for_man="pour un homme", for_woman="pour une femme", for_child="pour un enfant",
        for_anyone="que chacun puisse porter", size="en taille {value}", colour="en {value}",
        not_owned="que vous n'ayez déjà",
        ask_advisor=f"Souhaitez-vous que je demande à {{advisor}}, qui vous suit personnellement, d'y réfléchir avec vous{_NNBSP}?",
        ask_anyone=f"Souhaitez-vous que je demande à l'un de nos conseillers d'y réfléchir avec vous{_NNBSP}?",
    ),
    "it": NothingFits(
        opening="Grazie.",
        opening_named="Grazie, {name}.",
        sentence="Purtroppo al momento non abbiamo nulla{what}.",
        of_kind="di questo tipo",
        budget={"under": "per meno di {amount}", "max": "entro {amount}", "around": "per circa {amount}",
                "between": "tra {low} e {high}", "min": "da {amount} in su"},
        for_man="per un uomo", for_woman="per una donna", for_child="per un bambino",
        for_anyone="adatto a chiunque", size="nella taglia {value}", colour="in {value}",
        not_owned="che Lei non abbia già",
        ask_advisor=("Desidera che chieda a {advisor}, che La segue personalmente, di cercare insieme a Lei "
                     "un'alternativa?"),
        ask_anyone="Desidera che chieda a uno dei nostri consulenti di cercare insieme a Lei un'alternativa?",
    ),
}
"""The "nothing fits" answer's words, by language."""


def _budget_words(budget: Budget, currency: str, words: NothingFits, language: str) -> str:
    amount = money(budget.amount, currency, language)
    high = money(budget.upper if budget.upper is not None else budget.amount, currency, language)
    return words.budget[budget.kind].format(amount=amount, low=amount, high=high)


def _for_whom_words(fit: Fit, words: NothingFits) -> str | None:
    """Who the pieces were for, when that narrowed them (never the client herself)."""
    others = [r for r in fit.constraints.for_whom if not r.is_self]
    if not others:
        return None
    if any(r.child for r in others):
        return words.for_child
    genders = {r.gender for r in others}
    if genders == {"man"}:
        return words.for_man
    if genders == {"woman"}:
        return words.for_woman
    return None if fit.constraints.kinds else words.for_anyone


def nothing_fits_answer(fit: Fit, language: str | None = "en", *, of_kind: bool = False,
                        owned: bool = False) -> str:
    """The plain answer when no piece respects the client's constraints, in ``language``:
    what she asked for (``of_kind``: the kind of piece, or what her words named), her
    budget, for whom, size and colour, and (``owned``) that she has the pieces that would
    have fitted, then her advisor (by first name when known). No piece is named.
    """
    lang = supported(language)
    words = NOTHING_FITS[lang]
    c = fit.constraints
    parts = [words.of_kind if of_kind or c.kinds else ""]
    if c.budget is not None:
        parts.append(_budget_words(c.budget, fit.currency, words, lang))
    parts.append(_for_whom_words(fit, words) or "")
    if c.size is not None:
        parts.append(words.size.format(value=c.size.value))
    if c.colours:
        parts.append(words.colour.format(value=c.colours[0].word))
    if owned:
        parts.append(words.not_owned)
    what = "".join(f" {part}" for part in parts if part)
    advisor = (words.ask_advisor.format(advisor=fit.client.advisor_first_name) if fit.client.advisor_first_name
               else words.ask_anyone)
    name = salutation(fit.client, lang)
    opening = words.opening_named.format(name=name) if name else words.opening
    return " ".join((opening, words.sentence.format(what=what), advisor))

