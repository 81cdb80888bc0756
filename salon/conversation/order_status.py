"""Order answers in the maison's voice, composed only from the order's own data, in
English, French and Italian.

Dates are said as the client reads them ("Wednesday 25 November", "mercredi 25
novembre", "mercoledì 25 novembre"); a tracking link is given when the carrier has one;
a delay is said plainly with its reason. The record is read against the client's today:
an order still on its way after its promised date is late, and said to be, with an
apology and the next step. Nothing is promised that the order record does not hold (a
delay's reason is said as the record words it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

from salon.conversation.phrasing import button_title, pick, say_city, say_day, supported
from salon.integrations.orders import OrderFacts

__all__ = [
    "LATE_ORDER_BUTTON", "SETTLED", "is_late", "late_order_button", "on_their_way", "order_answer",
    "order_subject",
    "order_in_question", "which_order",
]

# The late order's button: the client's advisor by first name when the book has one (no
# noun, so nothing to agree with), else a generic title.
_LATE_BUTTON_TITLES: Final = {"en": "Ask my advisor", "fr": "Un conseiller", "it": "Un consulente"}
_LATE_BUTTON_NAMED: Final = {"en": "Ask my advisor", "fr": "Parler à {name}", "it": "Parlare con {name}"}
LATE_ORDER_BUTTON = {"title": _LATE_BUTTON_TITLES["en"], "payload": "/talk_to_advisor"}
"""Offered under a late order's answer: the advisor takes it from there (English; see
:func:`late_order_button`)."""

#: The words of this module, by language. English names the pieces first ("Your coat
#: (order SOL-1)"); French and Italian the order, so the sentence agrees with it.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "subject": "{pieces} (order {number})",
        "order": "Order {number}",
        "on": " on {day}", "by": " with {carrier}", "ask": " with {carrier}",
        "where": " at {place}", "towards": " to {city}",
        "eta": ", expected on {day}",
        "url": " You can follow it here: {url}",
        "tracking": " The {carrier} tracking number is {number}.",
        "late": ("{subject} was due on {due} and has not reached you yet. I am sorry.{news} "
                 "{advisor} can look into it{ask} for you."),
        "news": " It left us{when}{by}.{tracking}",
        "confirmed": "{subject} is confirmed and will be prepared shortly{eta}.",
        "in_preparation": "{subject} is being prepared{where}{eta}.",
        "shipped": "{subject} left us{when}{by}{towards}{eta}.{tracking}",
        "out_for_delivery": "{subject} is out for delivery today{eta}.{tracking}",
        "delivered": ("{subject} was delivered{when}. If anything is not as it should be, I "
                      "will ask {to_advisor} to look after it."),
        "delayed": ("{subject} is delayed, and I am sorry for it.{reason}{new_eta} {advisor} is "
                    "following it closely."),
        "new_eta": " It is now expected on {day}.",
        "cancelled": "{order} was cancelled. {advisor} can tell you more if you wish.",
        "returned": ("{order} has been returned to us. {advisor} will confirm the "
                     "refund with you."),
        "other": "{order} is {status}. {advisor} can tell you more.",
    },
    "fr": {
        "subject": "Votre commande {number}{pieces}",
        "order": "Votre commande {number}",
        "on": " le {day}", "by": " par {carrier}", "ask": " auprès de {carrier}",
        "where": " ({place})", "towards": " à destination de {city}",
        "eta": " ; sa livraison est prévue le {day}",
        "url": " Vous pouvez la suivre ici : {url}",
        "tracking": " Son numéro de suivi {carrier} est le {number}.",
        "late": ("{subject} était attendue le {due} et ne vous est pas encore parvenue ; je "
                 "vous prie de nous en excuser.{news} {advisor} peut se renseigner{ask} "
                 "pour vous."),
        "news": " Elle a été expédiée{when}{by}.{tracking}",
        "confirmed": "{subject} est confirmée et sera préparée très prochainement{eta}.",
        "in_preparation": "{subject} est en cours de préparation{where}{eta}.",
        "shipped": "{subject} a été expédiée{when}{by}{towards}{eta}.{tracking}",
        "out_for_delivery": "{subject} est en cours de livraison et vous parviendra aujourd'hui.{tracking}",
        "delivered": ("{subject} a été livrée{when}. Si quelque chose n'allait pas, je demanderai "
                      "à {to_advisor} de s'en occuper."),
        "delayed": ("{subject} a pris du retard, et je vous prie de nous en excuser.{reason}"
                    "{new_eta} {advisor} la suit de près."),
        "new_eta": " Elle est désormais attendue le {day}.",
        "cancelled": ("{order} a été annulée. {advisor} pourra vous en dire davantage si "
                      "vous le souhaitez."),
        "returned": ("{order} nous a été retournée. {advisor} confirmera le remboursement "
                     "avec vous."),
        "other": "{order} est au statut « {status} ». {advisor} pourra vous en dire davantage.",
    },
    "it": {
        "subject": "Il Suo ordine {number}{pieces}",
        "order": "Il Suo ordine {number}",
        "on": " {day}", "by": " con {carrier}", "ask": " con {carrier}",
        "where": " presso {place}", "towards": " a {city}",
        "eta": "; la consegna è prevista per {day}",
        "url": " Può seguirlo qui: {url}",
        "tracking": " Il numero di tracciamento {carrier} è {number}.",
        "late": ("{subject} era previsto per {due} e non Le è ancora arrivato: Le chiedo scusa."
                 "{news} {advisor} può verificare{ask} per Lei."),
        "news": " È stato spedito{when}{by}.{tracking}",
        "confirmed": "{subject} è confermato e sarà preparato a breve{eta}.",
        "in_preparation": "{subject} è in preparazione{where}{eta}.",
        "shipped": "{subject} è stato spedito{when}{by}{towards}{eta}.{tracking}",
        "out_for_delivery": "{subject} è in consegna e Le arriverà oggi.{tracking}",
        "delivered": ("{subject} è stato consegnato{when}. Se qualcosa non fosse come dovrebbe, "
                      "chiederò {to_advisor} di occuparsene."),
        "delayed": ("{subject} è in ritardo, e me ne scuso.{reason}{new_eta} {advisor} "
                    "lo sta seguendo da vicino."),
        "new_eta": " Ora è previsto per {day}.",
        "cancelled": ("{order} è stato annullato. {advisor} potrà dirLe di più, se lo "
                      "desidera."),
        "returned": ("{order} ci è stato restituito. {advisor} confermerà con Lei il "
                     "rimborso."),
        "other": "{order} risulta «{status}». {advisor} potrà dirLe di più.",
    },
}
# Who follows the order up: the client's own advisor by first name when the book has one
# (no noun, so nothing to agree with), else one of the maison's advisors (she may have
# none of her own; no adjective follows, so nothing fixes a gender). ``to_advisor``
# follows "ask" / "demander à" / "chiedere" (Italian carries its own preposition).
_ADVISOR: Final[dict[str, dict[str, str]]] = {
    "en": {"advisor": "Your client advisor", "to_advisor": "your client advisor",
           "named": "{name}", "to_named": "{name}"},
    "fr": {"advisor": "Un conseiller", "to_advisor": "un conseiller",
           "named": "{name}", "to_named": "{name}"},
    "it": {"advisor": "Uno dei nostri consulenti", "to_advisor": "a uno dei nostri consulenti",
           "named": "{name}", "to_named": "a {name}"},
}
_AND: Final = {"en": "and", "fr": "et", "it": "e"}
_ON_ITS_WAY = frozenset({"placed", "confirmed", "in_preparation", "shipped", "out_for_delivery"})


def late_order_button(language: str, advisor: str | None = None) -> dict[str, str]:
    """The button under a late order's answer, in ``language``: the advisor takes it up
    ("Parler à Sophie" when ``advisor``, her advisor's first name, is known and fits a
    button; else "Un conseiller" / "Un consulente").
    """
    anyone = pick(_LATE_BUTTON_TITLES, language)
    title = button_title(pick(_LATE_BUTTON_NAMED, language).format(name=advisor), anyone) if advisor else anyone
    return {"title": title, "payload": "/talk_to_advisor"}


def _piece(item: str, language: str) -> str:
    """A piece as the order record names it ("Riviera cashmere coat in Camel"), its colour
    said in French with "en".
    """
    if language == "fr" and " in " in item:
        name, colour = item.rsplit(" in ", 1)
        return f"{name} en {colour}"
    return item


def _pieces(items: Sequence[str], language: str) -> str:
    """"Your coat and scarf" (en) / " (coat et scarf)" (fr, it: after the order's number)."""
    said = [_piece(item, language) for item in items]
    conjunction = pick(_AND, language)
    if language == "it" and said and said[-1][:1].casefold() in "eéè":
        conjunction = "ed"
    listed = said[0] if len(said) == 1 else \
        f"{', '.join(said[:-1])} {conjunction} {said[-1]}" if said else ""
    if language in ("fr", "it"):
        return f" ({listed})" if listed else ""
    return f"Your {listed}" if listed else "Your order"


def order_subject(facts: OrderFacts, language: str) -> str:
    """"Your coat (order SOL-1)", "Votre commande SOL-1 (coat)": the order and its pieces,
    as the first words of a sentence.
    """
    return _WORDS[language]["subject"].format(pieces=_pieces(facts.items, language),
                                              number=facts.number)


def _tracking(facts: OrderFacts, words: dict[str, str]) -> str:
    if facts.tracking_url:
        return words["url"].format(url=facts.tracking_url)
    if facts.tracking_number and facts.carrier:
        return words["tracking"].format(carrier=facts.carrier, number=facts.tracking_number)
    return ""


def _when(value: date | datetime | None, words: dict[str, str], language: str) -> str:
    return words["on"].format(day=say_day(value, language)) if value else ""


def _advisor(language: str, name: str | None) -> dict[str, str]:
    words = _ADVISOR[language]
    if name:
        return {"advisor": words["named"].format(name=name), "to_advisor": words["to_named"].format(name=name)}
    return {"advisor": words["advisor"], "to_advisor": words["to_advisor"]}


def _late(facts: OrderFacts, language: str, advisor: dict[str, str]) -> str:
    """An order on its way past its promised date: said plainly, with the next step."""
    assert facts.eta is not None
    words = _WORDS[language]
    news = ask = ""
    if facts.status in ("shipped", "out_for_delivery"):
        by = words["by"].format(carrier=facts.carrier) if facts.carrier else ""
        ask = words["ask"].format(carrier=facts.carrier) if facts.carrier else ""
        news = words["news"].format(when=_when(facts.shipped_at, words, language), by=by,
                                    tracking=_tracking(facts, words))
    return words["late"].format(subject=order_subject(facts, language), news=news, ask=ask,
                                due=say_day(facts.eta, language), **advisor)


def is_late(facts: OrderFacts, today: date) -> bool:
    """Whether the order is still on its way after its promised date (``today`` is the client's)."""
    return facts.status in _ON_ITS_WAY and facts.eta is not None and facts.eta < today


def _on_its_way(facts: OrderFacts, words: dict[str, str], language: str) -> str:
    """An order not yet delivered, on time."""
    eta = words["eta"].format(day=say_day(facts.eta, language)) if facts.eta else ""
    status = "confirmed" if facts.status == "placed" else facts.status
    parts = {"subject": order_subject(facts, language), "eta": eta,
             "tracking": _tracking(facts, words),
             "when": _when(facts.shipped_at, words, language),
             "by": words["by"].format(carrier=facts.carrier) if facts.carrier else "",
             "where": words["where"].format(place=facts.shipped_from) if facts.shipped_from else "",
             "towards": (words["towards"].format(city=say_city(facts.delivery_city, language))
                    if facts.delivery_city else "")}
    return words[status].format(**parts)


def order_answer(facts: OrderFacts, *, today: date, language: str = "en",
                 advisor: str | None = None) -> str:
    """One short message on where the order stands on ``today`` (the client's date), from
    its record only, in ``language``; ``advisor``: the first name of the client's own
    advisor, who is then named as the one who follows it up.
    """
    language = supported(language)
    words = _WORDS[language]
    who = _advisor(language, advisor)
    if is_late(facts, today):
        return _late(facts, language, who)
    status = facts.status
    if status in _ON_ITS_WAY:
        return _on_its_way(facts, words, language)
    if status == "delivered":
        return words["delivered"].format(subject=order_subject(facts, language),
                                         when=_when(facts.delivered_at, words, language), **who)
    if status == "delayed":
        reason = f" {facts.delay_reason.rstrip('.')}." if facts.delay_reason else ""
        new_eta = words["new_eta"].format(day=say_day(facts.eta, language)) if facts.eta else ""
        return words["delayed"].format(subject=order_subject(facts, language), reason=reason,
                                       new_eta=new_eta, **who)
    order = words["order"].format(number=facts.number)
    if status in ("cancelled", "returned"):
        return words[status].format(order=order, **who)
    return words["other"].format(order=order, status=status.replace("_", " "), **who)


SETTLED: Final = frozenset({"delivered", "cancelled", "returned"})
"""Statuses of an order that has reached its end."""
RECENTLY_DELIVERED_DAYS: Final = 30
"""A delivered order is still "my order" this many days after it arrived."""
_MAX_CHOICES: Final = 3
"""Orders offered as reply buttons when she has several on their way."""

_WHICH: Final = {
    "en": "You have {count} orders on their way: {listed}. Which one would you like news of?",
    "fr": "Vous avez {count} commandes en cours : {listed}. Laquelle souhaitez-vous suivre ?",
    "it": "Ha {count} ordini in corso: {listed}. Di quale desidera notizie?",
}
_WHICH_TYPED: Final = {
    "en": " Its number is enough.",
    "fr": " Son numéro suffit.",
    "it": " Basta il suo numero.",
}
_COUNTS: Final = {
    "en": {2: "two", 3: "three"},
    "fr": {2: "deux", 3: "trois"},
    "it": {2: "due", 3: "tre"},
}


def on_their_way(orders: Sequence[OrderFacts]) -> list[OrderFacts]:
    """The orders that have not reached their end yet, in the order given."""
    return [order for order in orders if order.status not in SETTLED]


def order_in_question(orders: Sequence[OrderFacts], today: date) -> OrderFacts | None:
    """The order a client means by "my order" when she names none (``orders``: hers,
    newest first): the only one still on its way; when none is, the newest one if it was
    delivered in the last 30 days (``today``: her date). None when several are on their
    way (she is asked which) or nothing is recent (she is asked for its number).
    """
    going = on_their_way(orders)
    if len(going) == 1:
        return going[0]
    if going or not orders:
        return None
    newest = orders[0]
    delivered = newest.delivered_at
    if newest.status == "delivered" and delivered is not None \
            and (today - delivered.date()).days <= RECENTLY_DELIVERED_DAYS:
        return newest
    return None


def which_order(orders: Sequence[OrderFacts], language: str) -> tuple[str, list[dict[str, str]]]:
    """Which of her orders on their way she means: each named with its pieces, and one
    reply button per order (its number) when there are at most three.
    """
    language = supported(language)
    if language == "en":
        items = [f"{order.number} ({', '.join(order.items)})" if order.items else order.number
                 for order in orders]
    else:
        items = [f"{order.number}{_pieces(order.items, language)}" for order in orders]
    listed = ", ".join(items[:-1]) + f" {pick(_AND, language)} {items[-1]}" if len(items) > 1 else items[0]
    count = pick(_COUNTS, language).get(len(orders), str(len(orders)))
    text = pick(_WHICH, language).format(count=count, listed=listed)
    if len(orders) > _MAX_CHOICES:
        return text + pick(_WHICH_TYPED, language), []
    buttons = [{"title": button_title(order.number), "payload": f'/inform{{"order_number": "{order.number}"}}'}
               for order in orders]
    return text, buttons
