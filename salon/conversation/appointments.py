"""The booking conversation without Rasa: reading what the client says (boutique,
service, party size), choosing real free slots for the day and time they asked, and the
sentences that ask, offer, confirm and report, in English, French and Italian.

Every slot offered comes from :class:`~salon.integrations.bookings.Bookings`; every date
said is the booked one, in the boutique's own time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import agreed, pick, say_city, say_day, say_moment_short, say_time
from salon.conversation.when import TimeWindow
from salon.integrations.bookings import Appointment, Bookings, Boutique, Slot
from salon.integrations.catalog import fold

__all__ = [
    "MAX_PARTY",
    "SlotChoice",
    "choose_slots",
    "find_boutique",
    "companions_named",
    "find_service",
    "noted_moment",
    "parse_party_size",
    "slot_offer",
]

MAX_PARTY = 4
"""A salon privé welcomes the client and up to three guests."""

SEARCH_AHEAD = timedelta(days=14)

_BOUTIQUE_WORDS = {
    "paris": ("paris", "parigi", "faubourg", "saint honore", "st honore", "paname"),
    "london": ("london", "londres", "londra", "mount street", "mount st", "mayfair"),
    "milan": ("milan", "milano", "spiga", "montenapoleone", "monte napoleone"),
}
_SERVICE_WORDS = {
    "styling_session": ("styling", "style", "stylisme", "personal shopping", "look", "stile",
                        "consulenza", "personal shopper"),
    "private_viewing": ("private viewing", "viewing", "presentation privee", "presentation",
                        "see the", "voir", "visione privata", "visita privata", "presentazione",
                        "vedere"),
    "repair_dropoff": ("repair", "reparation", "drop off", "depot", "service my", "mend",
                       "riparazione", "riparare", "aggiustare"),
    "fitting": ("fitting", "essayage", "alteration", "retouche", "try on", "essayer", "prova",
                "ritocc", "orlo"),
}
_NUMBER_WORDS = {
    "one": 1, "un": 1, "une": 1, "two": 2, "deux": 2, "due": 2,
    "three": 3, "trois": 3, "tre": 3, "four": 4, "quatre": 4, "quattro": 4, "five": 5,
    "cinq": 5, "cinque": 5, "six": 6,
}


#: The sentences of the booking conversation, by language.
_WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "no_slot": ("Our {city} boutique has no free time in the next two weeks. Which other "
                    "day might suit you?"),
        "nearest": "Here are the nearest free times in {city}. Which would suit you?",
        "next_free": "I am sorry, that time is fully booked in {city}. These are the next free times:",
        "party_question": "Will anyone be joining you?",
        "party_1": "Just me", "party_2": "Two of us", "party_3": "Three of us",
        "party": ", for {size}",
        "confirm_book": "So that is a {service} on {day} at {hour} in {city}{party}. Shall I confirm?",
        "confirm_move": ("I shall move your appointment to {day} at {hour} in {city}{party}. "
                         "Shall I confirm?"),
        "yes": "Yes, please confirm", "another": "Another time",
        "host": " {advisor} will be expecting you.",
        "booked": ("It is booked: a {service} on {day} at {hour}, {shop}.{host} Your reference "
                   "is {reference}."),
        "moved": ("Done, your appointment is now on {day} at {hour}, {shop}.{host} Your "
                  "reference is {reference}."),
        "describe": "your {service} on {day} at {hour} in {city}",
        "noted_at": "Very well, {day} at {hour}{party}. ",
        "noted_day": "Very well, {day}{party}. ",
        "noted": "Very well{party}. ",
    },
    "fr": {
        "no_slot": ("Notre boutique de {city} n'a plus de créneau libre dans les deux semaines à "
                    "venir. Quel autre jour vous conviendrait ?"),
        "nearest": "Voici les créneaux libres les plus proches à {city}. Lequel vous convient ?",
        "next_free": ("Je regrette, ce créneau est déjà réservé à {city}. Voici les prochains "
                      "créneaux libres :"),
        "party_question": "Viendrez-vous avec quelqu'un ?",
        "party_question_f": "Serez-vous accompagnée ?", "party_question_m": "Serez-vous accompagné ?",
        "party_1": "Rien que moi", "party_1_f": "Je viendrai seule", "party_1_m": "Je viendrai seul",
        "party_2": "Nous serons deux",
        "party_3": "Nous serons trois",
        "party": ", pour {size} personnes",
        "confirm_book": ("Je réserve donc votre rendez-vous ({service}) le {day} à {hour}, "
                         "boutique de {city}{party}. Est-ce bien cela ?"),
        "confirm_move": ("Je déplace donc votre rendez-vous au {day} à {hour}, boutique de "
                         "{city}{party}. Est-ce bien cela ?"),
        "yes": "Oui, c'est parfait", "another": "Un autre moment",
        "host": " {advisor} vous recevra.",
        "booked": ("C'est réservé : votre rendez-vous ({service}) le {day} à {hour}, {shop}.{host} "
                   "Votre référence : {reference}."),
        "moved": ("C'est noté, votre rendez-vous est déplacé au {day} à {hour}, {shop}.{host} "
                  "Votre référence : {reference}."),
        "describe": "votre rendez-vous ({service}) du {day} à {hour} à {city}",
        "noted_at": "Très bien, le {day} à {hour}{party}. ",
        "noted_day": "Très bien, le {day}{party}. ",
        "noted": "Très bien{party}. ",
    },
    "it": {
        "no_slot": ("La nostra boutique di {city} non ha disponibilità nelle prossime due "
                    "settimane. Quale altro giorno potrebbe andarLe bene?"),
        "nearest": ("Ecco gli orari disponibili a {city} più vicini alla Sua richiesta. Quale "
                    "preferisce?"),
        "next_free": ("Mi dispiace, a {city} quell'orario è già occupato. Ecco i prossimi orari "
                      "disponibili:"),
        "party_question": "Ci sarà qualcuno con Lei?",
        "party_1": "Solo io", "party_2": "Saremo in due", "party_3": "Saremo in tre",
        "party": ", per {size} persone",
        "confirm_book": ("Prenoto quindi il Suo appuntamento ({service}) per {day} alle {hour} "
                         "nella boutique di {city}{party}. Va bene così?"),
        "confirm_move": ("Sposto quindi il Suo appuntamento a {day} alle {hour} nella boutique "
                         "di {city}{party}. Va bene così?"),
        "yes": "Sì, confermo", "another": "Un altro orario",
        "host": " {advisor} La accoglierà.",
        "booked": ("Prenotazione confermata: il Suo appuntamento ({service}) di {day} alle {hour} "
                   "presso {shop}.{host} Il Suo codice di riferimento è {reference}."),
        "moved": ("Fatto: il Suo appuntamento è ora fissato per {day} alle {hour} presso "
                  "{shop}.{host} Il Suo codice di riferimento è {reference}."),
        "describe": "il Suo appuntamento ({service}) di {day} alle {hour} a {city}",
        "noted_at": "Molto bene, {day} alle {hour}{party}. ",
        "noted_day": "Molto bene, {day}{party}. ",
        "noted": "Molto bene{party}. ",
    },
}


def find_boutique(text: str | None, shops: Mapping[str, Boutique]) -> str | None:
    """The boutique id ``text`` names (an id, a city or a street), or None."""
    if not text:
        return None
    plain = f" {fold(text)} "
    for shop_id in shops:
        if f" {shop_id} " in plain:
            return shop_id
    for shop_id, words in _BOUTIQUE_WORDS.items():
        if shop_id in shops and any(f" {w} " in plain for w in words):
            return shop_id
    for shop_id, shop in shops.items():
        if f" {fold(shop.city)} " in plain:
            return shop_id
    return None


_ASKING_WORDS: Final = frozenset({
    "where", "when", "what", "which", "how", "hours", "open", "opening", "close", "address",
    "ou", "quand", "quel", "quels", "quelle", "quelles", "comment", "horaires", "ouvert", "adresse",
    "dove", "quando", "quale", "quali", "come", "orari", "aperto", "aperti", "indirizzo",
})
"""Words that make a short message a question about the boutiques, not the name of a place."""


def names_a_place(text: str | None) -> bool:
    """Whether ``text`` reads as a bare answer naming a place ("Rome", "à Lyon", "New York
    please") rather than a question about the boutiques ("opening hours?", "où êtes-vous ?").
    """
    if not text or "?" in text:
        return False
    words = re.findall(r"[\w'-]+", fold(text))
    return 0 < len(words) <= 4 and not _ASKING_WORDS.intersection(words)


def find_service(text: str | None) -> str | None:
    """The service id ``text`` names, or None."""
    if not text:
        return None
    plain = f" {fold(text).replace('_', ' ')} "
    for service_id in _SERVICE_WORDS:
        if f" {service_id.replace('_', ' ')} " in plain:
            return service_id
    for service_id, words in _SERVICE_WORDS.items():
        if any(f" {w}" in plain for w in words):
            return service_id
    return None


def parse_party_size(text: str | None) -> int | None:
    """How many are coming, counting the client: "2", "two of us", "just me", "with my
    husband", "nous serons trois", "saremo in due", "solo io".
    """
    if text is None:
        return None
    plain = fold(str(text))
    digits = re.search(r"\b(\d{1,2})\b", plain)
    if digits:
        return int(digits.group(1))
    for word, value in _NUMBER_WORDS.items():
        # "avec une amie", "con un amico": an article, not a count (two are coming).
        if re.search(rf"(?<!avec )(?<!with )(?<!con )\b{word}\b", plain):
            return value
    if re.search(r"\b(just me|only me|myself|alone|moi seule?|seule?|juste moi|solo io|"
                 r"soltanto io|da sol[ao]|io sol[ao])\b", plain):
        return 1
    if re.search(r"\b(with my|with an?|avec mon|avec ma|avec une?|my (wife|husband|partner|daughter|son|friend)|"
                 r"a deux|nous deux|both of us|con (il |la )?mi[oa]|con un[ao]?|noi due)\b", plain):
        return 2
    return None


_RELATIONS = (
    r"husband|wife|partner|fiance|fiancee|daughter|son|mother|mum|mom|father|dad|sister|brother|"
    r"friend|niece|nephew|aunt|grandmother|granddaughter|mari|femme|compagnon|compagne|fille|fils|"
    r"mere|maman|pere|soeur|frere|amie?|neveu|tante|grand mere|petite fille|marito|moglie|"
    r"compagn[ao]|fidanzat[ao]|figlia|figlio|madre|mamma|padre|papa|sorella|fratello|amic[ao]|"
    r"nipote|zia|nonna")
_COMPANION = re.compile(
    rf"\b(?:with|avec|con|insieme a)\s+(?:my|mon|ma|mes|mia|mio|il mio|la mia|a|an|une?|un)\s+"
    rf"(?:{_RELATIONS})\b")
_ANOTHER = re.compile(
    rf"\b(?:and|et|e)\s+(?:my|mon|ma|mia|mio|il mio|la mia|a|an|une?|un)\s+(?:{_RELATIONS})\b")


_MORE = re.compile(r"\b(?:and|et|e)\s+(?:my|mes|mon|ma|mia|mio|i miei|le mie|our|nos|a|an|une?|un)\b")


def companions_named(text: str | None) -> int | None:
    """How many are coming when her sentence says with whom ("with my daughter": 2, "avec
    mon mari et ma fille": 3, "con mia sorella": 2); None when it names no one. Only a
    person she comes with counts: "with a question" names no one.
    """
    if not text:
        return None
    plain = fold(str(text)).replace("'", " ")
    first = _COMPANION.search(plain)
    if first is None:
        return None
    rest = plain[first.end():]
    others = _ANOTHER.findall(rest)
    if len(others) < len(_MORE.findall(rest)):
        return None  # "and my two sons", "et mes enfants": not counted here, she is asked
    return 2 + len(others)


@dataclass(frozen=True)
class SlotChoice:
    """The slots found for what the client asked (:func:`choose_slots`)."""

    exact: Slot | None
    """The very time asked, when it is free."""
    offers: tuple[Slot, ...]
    """Free slots to offer (at most three), earliest first."""
    in_window: bool
    """Whether the offers lie within the day and time asked (else they are the next ones)."""


async def choose_slots(bookings: Bookings, shop: Boutique, window: TimeWindow,
                       *, limit: int = 3) -> SlotChoice:
    """Free slots for what the client asked: the exact time if free, else the nearest
    free times that day, else the next free ones in the following two weeks.
    """
    if window.exact:
        local = window.start.astimezone(shop.zone)
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        same_day = await bookings.free_slots(shop.id, day_start, day_start + timedelta(days=1),
                                             limit=48)
        for slot in same_day:
            if slot.starts_at == window.start:
                return SlotChoice(slot, (slot,), True)
        nearest = sorted(same_day, key=lambda s: abs(s.starts_at - window.start))[:limit]
        if nearest:
            return SlotChoice(None, tuple(sorted(nearest, key=lambda s: s.starts_at)), True)
        after = day_start + timedelta(days=1)
    else:
        inside = await bookings.free_slots(shop.id, window.start, window.end, limit=limit)
        if inside:
            return SlotChoice(None, tuple(inside), True)
        after = window.end
    later = await bookings.free_slots(shop.id, after, after + SEARCH_AHEAD, limit=limit)
    return SlotChoice(None, tuple(later), False)


def slot_title(slot: Slot, shop: Boutique, language: str) -> str:
    """A button title (≤ 20 characters): "Fri 4 Dec, 15:00" / "ven. 4 déc., 15 h" /
    "ven 4 dic, 15:00".
    """
    return say_moment_short(slot.starts_at.astimezone(shop.zone), language)


def slot_payload(slot: Slot) -> str:
    """The button payload that picks ``slot``."""
    return f'/inform{{"appointment_start": "{slot.starts_at.isoformat()}"}}'


def slot_offer(choice: SlotChoice, shop: Boutique, language: str) -> Reply:
    """The message offering the free slots as buttons (or saying there are none)."""
    words = pick(_WORDS, language)
    city = say_city(shop.city, language)
    if not choice.offers:
        return Reply(words["no_slot"].format(city=city))
    buttons = [{"title": slot_title(s, shop, language), "payload": slot_payload(s)}
               for s in choice.offers[:3]]
    text = words["nearest" if choice.in_window else "next_free"]
    return Reply(text.format(city=city), buttons)


def ask_party_size(language: str, gender: str | None = None) -> Reply:
    """Whether anyone joins the client, with buttons for one, two or three; in French,
    agreed with her title (``gender``: :func:`salon.conversation.phrasing.gender_of`).
    """
    words = pick(_WORDS, language)
    return Reply(agreed(words, "party_question", gender), [
        {"title": agreed(words, f"party_{n}", gender), "payload": f'/inform{{"party_size": "{n}"}}'}
        for n in (1, 2, 3)])


def _party(size: int, language: str) -> str:
    return "" if size <= 1 else pick(_WORDS, language)["party"].format(size=size)


def confirm_question(shop: Boutique, service_label: str, start: datetime, party: int,
                     language: str, *, moving: bool = False) -> Reply:
    """The summary of the booking (or of the move) to confirm, with yes/another time."""
    words = pick(_WORDS, language)
    local = start.astimezone(shop.zone)
    text = words["confirm_move" if moving else "confirm_book"].format(
        service=service_label.lower(), day=say_day(local, language),
        hour=say_time(local, language), city=say_city(shop.city, language),
        party=_party(party, language))
    return Reply(text, [{"title": words["yes"], "payload": "/affirm"},
                        {"title": words["another"], "payload": "/deny"}])


def noted_moment(window: TimeWindow | None, language: str, party: int | None = None) -> str:
    """What she gave before it was asked, said back ahead of the question the form asks
    again ("Very well, Saturday 12 December at 15:00, for 2. "): an exact time with its
    day, a single day (or part of one) as its day, a span of days as a plain "Very well";
    the party when she named it (more than her alone). In the window's own time zone;
    ends with a space, to go before the question.
    """
    words = pick(_WORDS, language)
    company = _party(party, language) if party else ""
    if window is None:
        return words["noted"].format(party=company)
    start = window.start
    if window.exact:
        return words["noted_at"].format(day=say_day(start, language), hour=say_time(start, language),
                                        party=company)
    last = (window.end - timedelta(microseconds=1)).astimezone(start.tzinfo)
    if last.date() == start.date():
        return words["noted_day"].format(day=say_day(start, language), party=company)
    return words["noted"].format(party=company)


def booked(appointment: Appointment, shop: Boutique, service_label: str, advisor_name: str | None,
           language: str, *, moved: bool = False) -> str:
    """The confirmation, with what matters: service, boutique, day, time, reference."""
    words = pick(_WORDS, language)
    local = appointment.starts_at.astimezone(shop.zone)
    host = words["host"].format(advisor=advisor_name) if advisor_name else ""
    return words["moved" if moved else "booked"].format(
        service=service_label.lower(), day=say_day(local, language),
        hour=say_time(local, language), shop=shop.name, host=host, reference=appointment.id)


def describe(appointment: Appointment, shop: Boutique, service_label: str, language: str) -> str:
    """"your styling session on Friday 4 December at 15:00 in Paris" / "votre rendez-vous
    (séance de stylisme) du vendredi 4 décembre à 15 h à Paris" / "il Suo appuntamento
    (consulenza di stile) di venerdì 4 dicembre alle 15:00 a Parigi".
    """
    local = appointment.starts_at.astimezone(shop.zone)
    return pick(_WORDS, language)["describe"].format(
        service=service_label.lower(), day=say_day(local, language),
        hour=say_time(local, language), city=say_city(shop.city, language))


def appointment_buttons(items: Sequence[tuple[Appointment, Boutique]], intent: str,
                        language: str) -> list[dict[str, str]]:
    """One button per appointment (for "which one?"), at most three."""
    return [{"title": say_moment_short(appointment.starts_at.astimezone(shop.zone), language),
             "payload": f'/{intent}{{"appointment_id": "{appointment.id}"}}'}
            for appointment, shop in items[:3]]
