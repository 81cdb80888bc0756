"""The booking conversation without Rasa: reading what the client says (boutique,
service, party size), choosing real free slots for the day and time they asked, and the
sentences that ask, offer, confirm and report, in English and French.

Every slot offered comes from :class:`~salon.integrations.bookings.Bookings`; every date
said is the booked one, in the boutique's own time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from salon.conversation.greetings import Reply
from salon.conversation.phrasing import say_day, say_day_short, say_time
from salon.conversation.when import TimeWindow
from salon.integrations.bookings import Appointment, Bookings, Boutique, Slot
from salon.integrations.catalog import fold

__all__ = [
    "MAX_PARTY",
    "SlotChoice",
    "choose_slots",
    "find_boutique",
    "find_service",
    "parse_party_size",
    "slot_offer",
]

MAX_PARTY = 4
"""A salon privé welcomes the client and up to three guests."""

SEARCH_AHEAD = timedelta(days=14)

_BOUTIQUE_WORDS = {
    "paris": ("paris", "faubourg", "saint honore", "st honore", "paname"),
    "london": ("london", "londres", "londra", "mount street", "mount st", "mayfair"),
    "milan": ("milan", "milano", "spiga", "montenapoleone", "monte napoleone"),
}
_SERVICE_WORDS = {
    "styling_session": ("styling", "style", "stylisme", "personal shopping", "look"),
    "private_viewing": ("private viewing", "viewing", "presentation privee", "presentation",
                        "see the", "voir"),
    "repair_dropoff": ("repair", "reparation", "drop off", "depot", "service my", "mend"),
    "fitting": ("fitting", "essayage", "alteration", "retouche", "try on", "essayer"),
}
_NUMBER_WORDS = {
    "one": 1, "un": 1, "une": 1, "two": 2, "deux": 2, "three": 3, "trois": 3, "four": 4,
    "quatre": 4, "five": 5, "cinq": 5, "six": 6,
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
    husband", "nous serons trois".
    """
    if text is None:
        return None
    plain = fold(str(text))
    digits = re.search(r"\b(\d{1,2})\b", plain)
    if digits:
        return int(digits.group(1))
    for word, value in _NUMBER_WORDS.items():
        if re.search(rf"\b{word}\b", plain):
            return value
    if re.search(r"\b(just me|only me|myself|alone|moi seule?|seule?|juste moi)\b", plain):
        return 1
    if re.search(r"\b(with my|avec mon|avec ma|my (wife|husband|partner|daughter|son|friend)|"
                 r"a deux|nous deux|both of us)\b", plain):
        return 2
    return None


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
    """A button title (≤ 20 characters): "Fri 4 Dec, 15:00" / "ven. 4 déc., 15h00"."""
    local = slot.starts_at.astimezone(shop.zone)
    return f"{say_day_short(local, language)}, {say_time(local, language)}"[:20]


def slot_payload(slot: Slot) -> str:
    return f'/inform{{"appointment_start": "{slot.starts_at.isoformat()}"}}'


def slot_offer(choice: SlotChoice, shop: Boutique, language: str) -> Reply:
    """The message offering the free slots as buttons (or saying there are none)."""
    buttons = [{"title": slot_title(s, shop, language), "payload": slot_payload(s)}
               for s in choice.offers[:3]]
    if not choice.offers:
        if language == "fr":
            return Reply(f"Notre boutique de {shop.city} n'a plus de créneau libre dans les deux "
                         "semaines à venir. Quel autre jour vous conviendrait ?")
        return Reply(f"Our {shop.city} boutique has no free time in the next two weeks. "
                     "Which other day might suit you?")
    if choice.in_window:
        text = ("Voici les créneaux libres les plus proches à {city}. Lequel vous convient ?"
                if language == "fr" else
                "Here are the nearest free times in {city}. Which would suit you?")
    else:
        text = ("Ce moment est complet à {city}, je le regrette. Voici les prochains créneaux "
                "libres :" if language == "fr" else
                "I am sorry, that time is fully booked in {city}. These are the next free times:")
    return Reply(text.format(city=shop.city), buttons)


def ask_party_size(language: str) -> Reply:
    if language == "fr":
        return Reply("Serez-vous accompagné(e) ?", [
            {"title": "Je viendrai seul(e)", "payload": '/inform{"party_size": "1"}'},
            {"title": "Nous serons deux", "payload": '/inform{"party_size": "2"}'},
            {"title": "Nous serons trois", "payload": '/inform{"party_size": "3"}'},
        ])
    return Reply("Will anyone be joining you?", [
        {"title": "Just me", "payload": '/inform{"party_size": "1"}'},
        {"title": "Two of us", "payload": '/inform{"party_size": "2"}'},
        {"title": "Three of us", "payload": '/inform{"party_size": "3"}'},
    ])


def _party(size: int, language: str) -> str:
    if size <= 1:
        return ""
    return f", pour {size} personnes" if language == "fr" else f", for {size}"


def confirm_question(shop: Boutique, service_label: str, start: datetime, party: int,
                     language: str, *, moving: bool = False) -> Reply:
    local = start.astimezone(shop.zone)
    day, hour = say_day(local, language), say_time(local, language)
    if language == "fr":
        verb = "Je déplace votre rendez-vous à" if moving else "Je réserve donc"
        what = "" if moving else f"{service_label.lower()}, "
        return Reply(f"{verb} {what}{day} à {hour}, boutique de {shop.city}{_party(party, language)}. "
                     "Est-ce bien cela ?", [
                         {"title": "Oui, c'est parfait", "payload": "/affirm"},
                         {"title": "Un autre moment", "payload": "/deny"}])
    verb = "I shall move your appointment to" if moving else "So that is a"
    what = "" if moving else f"{service_label.lower()} on "
    return Reply(f"{verb} {what}{day} at {hour} in {shop.city}{_party(party, language)}. "
                 "Shall I confirm?", [
                     {"title": "Yes, please confirm", "payload": "/affirm"},
                     {"title": "Another time", "payload": "/deny"}])


def booked(appointment: Appointment, shop: Boutique, service_label: str, advisor_name: str | None,
           language: str, *, moved: bool = False) -> str:
    """The confirmation, with what matters: service, boutique, day, time, reference."""
    local = appointment.starts_at.astimezone(shop.zone)
    day, hour = say_day(local, language), say_time(local, language)
    if language == "fr":
        head = "C'est noté, votre rendez-vous est déplacé" if moved else \
            f"C'est réservé : {service_label.lower()}"
        host = f" {advisor_name} vous recevra." if advisor_name else ""
        return (f"{head} {day} à {hour}, {shop.name}.{host} "
                f"Votre référence : {appointment.id}.")
    head = "Done, your appointment is now on" if moved else f"It is booked: a {service_label.lower()} on"
    host = f" {advisor_name} will be expecting you." if advisor_name else ""
    return f"{head} {day} at {hour}, {shop.name}.{host} Your reference is {appointment.id}."


def describe(appointment: Appointment, shop: Boutique, service_label: str, language: str) -> str:
    """"your styling session on Friday 4 December at 15:00 in Paris"."""
    local = appointment.starts_at.astimezone(shop.zone)
    if language == "fr":
        return (f"votre rendez-vous ({service_label.lower()}) du {say_day(local, language)} "
                f"à {say_time(local, language)} à {shop.city}")
    return (f"your {service_label.lower()} on {say_day(local, language)} at "
            f"{say_time(local, language)} in {shop.city}")


def appointment_buttons(items: Sequence[tuple[Appointment, Boutique]], intent: str,
                        language: str) -> list[dict[str, str]]:
    """One button per appointment (for "which one?"), at most three."""
    out = []
    for appointment, shop in items[:3]:
        local = appointment.starts_at.astimezone(shop.zone)
        title = f"{say_day_short(local, language)}, {say_time(local, language)}"[:20]
        out.append({"title": title,
                    "payload": f'/{intent}{{"appointment_id": "{appointment.id}"}}'})
    return out
