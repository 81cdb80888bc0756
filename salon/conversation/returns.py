"""Returns and exchanges in the maison's voice: the policy as the maison wrote it, applied
to the piece she most likely means, in English, French and Italian.

Which order: one she names; else the newest delivered within the policy's days (the
piece she can still send back); else the only one on its way (she asks ahead); else the
newest delivered (its days are over, and she is told so, with the advisor to see what
can be done); else none, and the policy is said as it stands. The last day is the
delivery day plus the policy's days, in her calendar. Nothing beyond the policy is
promised: an exception is the advisor's to make, never the assistant's. A question
about the refund gets the refund's delay in place of what can never come back, so that
the message stays short.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from salon.conversation.order_status import on_their_way, order_subject
from salon.conversation.phrasing import button_title, pick, say_day, supported
from salon.integrations.house import ReturnsPolicy
from salon.integrations.orders import OrderFacts

__all__ = ["ReturnsAnswer", "asks_about_refund", "order_to_return", "return_deadline", "returns_answer"]

_REFUND: Final = re.compile(r"\brefund|money back|reimburs|rembours|rimbors|soldi indietro", re.IGNORECASE)

_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "within": ("{subject} reached you on {delivered}: it may be returned or exchanged until "
                   "{last}, {condition}, {where}."),
        "past": ("{subject} reached you on {delivered}, and its {days} days for a return ended "
                 "on {last}. {advisor} can see what may be done."),
        "coming": ("Once {subject_lower} reaches you, you will have {days} days to return or "
                   "exchange it, {condition}, {where}."),
        "returned": "{subject} is already back with us.",
        "cancelled": "{subject} was cancelled, so there is nothing to send back.",
        "general": ("A piece may be returned or exchanged within {days} days of reaching you, "
                    "{condition}, {where}."),
        "refund": ("A refund reaches your original means of payment within {refund_days} days of "
                   "the piece arriving with us."),
        "refund_general": " A piece may come back within {days} days of reaching you, {condition}.",
        "none": "{advisor} can explain how a return works and arrange it with you.",
        "arrange": "Arrange a return",
        "visit": "Book a visit",
    },
    "fr": {
        "within": ("{subject} vous a été livrée le {delivered} : vous pouvez la retourner ou "
                   "l'échanger jusqu'au {last}, {condition}, {where}."),
        "past": ("{subject} vous a été livrée le {delivered}, et le délai de {days} jours pour "
                 "un retour a pris fin le {last}. {advisor} peut voir ce qu'il est possible "
                 "de faire."),
        "coming": ("Dès que {subject_lower} vous sera parvenue, vous disposerez de {days} jours "
                   "pour la retourner ou l'échanger, {condition}, {where}."),
        "returned": "{subject} nous est déjà revenue.",
        "cancelled": "{subject} a été annulée : il n'y a rien à nous renvoyer.",
        "general": ("Une pièce peut être retournée ou échangée dans les {days} jours suivant sa "
                    "livraison, {condition}, {where}."),
        "refund": ("Le remboursement est effectué sur votre moyen de paiement d'origine dans les "
                   "{refund_days} jours suivant le retour de la pièce chez nous."),
        "refund_general": " Une pièce peut nous revenir dans les {days} jours suivant sa livraison, {condition}.",
        "none": ("{advisor} peut vous expliquer comment se passe un retour et l'organiser "
                 "avec vous."),
        "arrange": "Organiser un retour",
        "visit": "Prendre rendez-vous",
    },
    "it": {
        "within": ("{subject} Le è stato consegnato il {delivered}: può restituirlo o cambiarlo "
                   "fino al {last}, {condition}, {where}."),
        "past": ("{subject} Le è stato consegnato il {delivered}, e i {days} giorni per un reso "
                 "sono terminati il {last}. {advisor} può vedere cosa si può fare."),
        "coming": ("Quando {subject_lower} Le sarà consegnato, avrà {days} giorni per "
                   "restituirlo o cambiarlo, {condition}, {where}."),
        "returned": "{subject} è già tornato da noi.",
        "cancelled": "{subject} è stato annullato: non c'è nulla da restituire.",
        "general": ("Un pezzo può essere restituito o cambiato entro {days} giorni dalla "
                    "consegna, {condition}, {where}."),
        "refund": ("Il rimborso avviene sul mezzo di pagamento originale entro {refund_days} giorni "
                   "dal ritorno del pezzo da noi."),
        "refund_general": " Un pezzo può tornare da noi entro {days} giorni dalla consegna, {condition}.",
        "none": "{advisor} può spiegarLe come funziona un reso e organizzarlo con Lei.",
        "arrange": "Organizzare un reso",
        "visit": "Prenotare una visita",
    },
}
# Who takes it up, as a sentence's subject: her own advisor by first name, else one of
# the maison's (no noun after it that would have to agree with a gender).
_ADVISOR: Final = {"en": "Your client advisor", "fr": "Un conseiller", "it": "Uno dei nostri consulenti"}
_NAMED_BUTTON: Final = {"en": "Ask {name}", "fr": "Parler à {name}", "it": "Parlare con {name}"}


@dataclass(frozen=True, slots=True)
class ReturnsAnswer:
    """The message and its reply buttons (title, payload)."""

    text: str
    buttons: tuple[dict[str, str], ...]


def return_deadline(delivered: date, policy: ReturnsPolicy) -> date:
    """The last day a piece delivered on ``delivered`` (her calendar) may be returned."""
    return delivered + timedelta(days=policy.days)


def order_to_return(orders: Sequence[OrderFacts], today: date, policy: ReturnsPolicy | None,
                    named: OrderFacts | None = None) -> OrderFacts | None:
    """The order she most likely means (``orders``: hers, newest first; see the module's
    docstring); ``named``: the one she named, which wins.
    """
    if named is not None:
        return named
    delivered = [o for o in orders if o.status == "delivered" and o.delivered_at is not None]
    if policy is not None:
        for order in delivered:
            assert order.delivered_at is not None
            if today <= return_deadline(order.delivered_at.date(), policy):
                return order
    going = on_their_way(orders)
    if len(going) == 1:
        return going[0]
    return delivered[0] if delivered else None


def asks_about_refund(text: str | None) -> bool:
    """Whether her message asks about the refund ("how do I get a refund?", "quand serai-je
    remboursée ?", "il rimborso").
    """
    return bool(text and _REFUND.search(text))


def returns_answer(policy: ReturnsPolicy | None, order: OrderFacts | None, *, today: date,
                   language: str = "en", advisor: str | None = None,
                   about_refund: bool = False) -> ReturnsAnswer:
    """What may come back, for ``order`` (None: the policy as it stands) on ``today`` (her
    date), in ``language``; ``advisor``: her own advisor's first name, if she has one;
    ``about_refund``: she asked about the refund, whose delay is then said. Buttons: the
    advisor arranges the return (a courier, an exchange), or a visit to bring it in.
    """
    language = supported(language)
    words = _WORDS[language]
    who = advisor or _ADVISOR[language]
    arrange = {"title": words["arrange"], "payload": "/talk_to_advisor"}
    visit = {"title": words["visit"], "payload": "/book_appointment"}
    ask = button_title(_NAMED_BUTTON[language].format(name=advisor), words["arrange"]) \
        if advisor else words["arrange"]
    if policy is None:
        return ReturnsAnswer(words["none"].format(advisor=who), ({"title": ask, "payload": "/talk_to_advisor"},))
    facts = {
        "days": policy.days, "refund_days": policy.refund_days, "advisor": who,
        "condition": pick(policy.condition, language), "where": pick(policy.where, language),
    }
    excluded = " " + pick(policy.excluded, language)
    refund = words["refund"].format(**facts)
    if order is None:
        if about_refund:
            return ReturnsAnswer(refund + words["refund_general"].format(**facts), (arrange, visit))
        return ReturnsAnswer(words["general"].format(**facts) + excluded, (arrange, visit))
    subject = order_subject(order, language)
    facts["subject"] = subject
    if order.status in ("returned", "cancelled"):
        return ReturnsAnswer(words[order.status].format(**facts), ())
    if order.status != "delivered" or order.delivered_at is None:
        lower = subject[:1].lower() + subject[1:]
        coming = words["coming"].format(subject_lower=lower, **facts)
        return ReturnsAnswer((refund + " " + coming) if about_refund else coming + excluded, ())
    delivered = order.delivered_at.date()
    last = return_deadline(delivered, policy)
    facts.update(delivered=say_day(delivered, language), last=say_day(last, language))
    if today > last:
        return ReturnsAnswer(words["past"].format(**facts), ({"title": ask, "payload": "/talk_to_advisor"},))
    within = words["within"].format(**facts)
    return ReturnsAnswer(within + " " + refund if about_refund else within + excluded, (arrange, visit))
