"""Appointments: the booking form (boutique, service, day and time, a real free slot,
party size, confirmation), then the booking in the client's record; moving and
cancelling an appointment. The words and the slot choice live in ``salon.conversation.appointments``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Final

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.asking import AskedAloneAgain
from actions.greeting import conversation_language
from actions.handoff import hand_over
from salon.conversation.appointments import (
    MAX_PARTY,
    appointment_buttons,
    ask_party_size,
    booked,
    choose_slots,
    companions_named,
    confirm_question,
    describe,
    find_boutique,
    find_service,
    names_a_place,
    noted_moment,
    parse_party_size,
    slot_offer,
)
from salon.conversation.language import supported
from salon.conversation.phrasing import gender_of, pick, say_city, say_list, your_advisor
from salon.conversation.when import TimeWindow, names_a_day, parse_when, says_moment, with_its_day
from salon.integrations.bookings import Appointment, BookingError, Boutique, ClientBusy, SlotTaken
from salon.integrations.crm import ClientRecord

logger = logging.getLogger(__name__)

#: Slots of one booking, cleared when it is done (the reference stays for recall).
BOOKING_SLOTS = ("boutique", "service", "date_time", "appointment_start", "party_size",
                 "appointment_confirmed", "reschedule_id")


#: What the booking actions say themselves, by language (the sentences built from a
#: booking live in ``salon.conversation.appointments``).
_SAY: Final[dict[str, dict[str, str]]] = {
    "en": {
        "unreadable": "I could not quite place that moment.",
        "past": "That moment has already passed.",
        "boutiques": "Our boutiques are {cities}.",
        "at_each": "in",
        "services": ("I can arrange a styling session, a private viewing, a fitting, or receive a "
                     "piece for repair."),
        "not_here": "Our {city} boutique does not offer a {service}; you will find it {others}.",
        "choose_slot": ("Forgive me, I did not catch which time you would prefer; you may also tell me "
                        "another moment."),
        "just_taken": "I am sorry, that time has just been taken.",
        "how_many": "Forgive me, I did not quite catch how many of you there will be.",
        "too_many": ("A salon privé welcomes up to {most} people; for a larger party, {advisor} will "
                     "gladly arrange it with you."),
        "no_advisor": "one of our client advisors",
        "no_longer": "I am sorry, that time is no longer available. Here are other moments:",
        "none_upcoming": ("I find no upcoming appointment linked to this number. Would you like "
                          "to book one?"),
        "book": "Book a visit",
        "which_cancel": "Which appointment would you like to cancel?",
        "which_move": "Which appointment would you like to move?",
        "cancel_question": "Shall I cancel {what}?",
        "yes_cancel": "Yes, cancel it", "keep_it": "Keep it",
        "kept": "Very well, your appointment stays as planned.",
        "inactive": "That appointment is no longer active, so there is nothing to cancel.",
        "cancelled": ("It is cancelled: {what}. I will gladly find you another moment whenever "
                      "you wish."),
        "moving": "Of course, let us find another moment for {what}.",
    },
    "fr": {
        "unreadable": "Je n'ai pas bien saisi le jour ou l'heure.",
        "past": "Cette date est déjà passée.",
        "boutiques": "Nos boutiques sont {cities}.",
        "at_each": "à",
        "services": ("Je peux préparer une séance de stylisme, une présentation privée, un "
                     "essayage ou recevoir une pièce en réparation."),
        "not_here": ("Notre boutique de {city} ne propose pas ce service ({service}) ; vous le "
                     "trouverez {others}."),
        "choose_slot": ("Pardonnez-moi, je n'ai pas saisi le créneau qui vous conviendrait ; vous pouvez "
                        "aussi m'indiquer un autre moment."),
        "just_taken": "Ce créneau vient d'être pris, je le regrette.",
        "how_many": "Pardonnez-moi, je n'ai pas bien saisi combien vous serez.",
        "too_many": ("Un salon privé accueille jusqu'à {most} personnes ; pour un groupe plus "
                     "nombreux, {advisor} organisera volontiers votre venue avec vous."),
        "no_advisor": "l'un de nos conseillers",
        "no_longer": "Ce créneau n'est plus disponible, je le regrette. Voici d'autres créneaux :",
        "none_upcoming": ("Je ne trouve aucun rendez-vous à venir lié à ce numéro. Souhaitez-vous "
                          "en prendre un ?"),
        "book": "Prendre rendez-vous",
        "which_cancel": "Quel rendez-vous souhaitez-vous annuler ?",
        "which_move": "Quel rendez-vous souhaitez-vous déplacer ?",
        "cancel_question": "Souhaitez-vous que j'annule {what} ?",
        "yes_cancel": "Oui, annuler", "keep_it": "Le maintenir",
        "kept": "Très bien, votre rendez-vous est maintenu.",
        "inactive": "Ce rendez-vous n'est plus actif ; il n'y a rien à annuler.",
        "cancelled": ("C'est annulé : {what}. Je serai ravi de vous trouver un autre moment quand "
                      "vous le souhaiterez."),
        "moving": "Bien sûr, trouvons un autre moment pour {what}.",
    },
    "it": {
        "unreadable": "Non ho capito bene di quale momento si tratti.",
        "past": "Quel momento è già passato.",
        "boutiques": "Le nostre boutique si trovano {cities}.",
        "at_each": "a",
        "services": ("Posso organizzare una consulenza di stile, una presentazione privata, una "
                     "prova sartoriale, oppure ricevere un pezzo da riparare."),
        "not_here": ("La nostra boutique di {city} non offre questo servizio ({service}); lo "
                     "trova {others}."),
        "choose_slot": ("Mi perdoni, non ho capito quale orario preferisce; può anche indicarmene "
                        "un altro."),
        "just_taken": "Mi dispiace, quell'orario è appena stato prenotato.",
        "how_many": "Mi perdoni, non ho capito bene in quanti sarete.",
        "too_many": ("Un salotto privato accoglie fino a {most} persone; per un gruppo più numeroso "
                     "{advisor} organizzerà volentieri tutto con Lei."),
        "no_advisor": "uno dei nostri consulenti",
        "no_longer": ("Mi dispiace, quell'orario non è più disponibile. Ecco altri orari "
                      "disponibili:"),
        "none_upcoming": ("Non trovo appuntamenti in programma collegati a questo numero. "
                          "Desidera prenderne uno?"),
        "book": "Prenotare una visita",
        "which_cancel": "Quale appuntamento desidera annullare?",
        "which_move": "Quale appuntamento desidera spostare?",
        "cancel_question": "Desidera che annulli {what}?",
        "yes_cancel": "Sì, annulli pure", "keep_it": "No, lo mantengo",
        "kept": "Va bene, il Suo appuntamento resta confermato.",
        "inactive": "Quell'appuntamento non è più attivo, quindi non c'è nulla da annullare.",
        "cancelled": ("Fatto, ho annullato {what}. Le troverò volentieri un altro momento quando "
                      "lo desidera."),
        "moving": "Certamente, troviamo un altro momento per {what}.",
    },
}


def _say(language: str, key: str, **values: Any) -> str:
    return pick(_SAY, language)[key].format(**values)


def _language(tracker: Tracker) -> str:
    return supported(conversation_language(tracker, None))


_FORM_ENTITIES: Final = frozenset({"boutique", "service", "date_time", "party_size"})
_PLACE_MISREAD_AS: Final = frozenset({"boutique_info", "affirm"})
"""What NLU takes a place it does not know for, said alone when the boutique is asked
("Rome"); inform, nlu_fallback and out_of_scope reach the form by the slot's mappings."""


def _answers_another_question(tracker: Tracker, slot: str) -> bool:
    """Whether her message names another detail of the visit and not ``slot`` ("next
    Friday at 3" when the service was asked): the form keeps it and asks its question
    again, without a refusal.
    """
    named = {entity.get("entity") for entity in tracker.latest_message.get("entities") or []}
    return slot not in named and bool(named & _FORM_ENTITIES)


async def _shop(tracker: Tracker) -> Boutique | None:
    boutique_id = tracker.get_slot("boutique")
    if not boutique_id:
        return None
    return (await backends.bookings().boutiques()).get(str(boutique_id))


async def _reader(tracker: Tracker) -> Boutique | None:
    """The boutique whose time zone reads her words of a moment: the chosen one, else the
    first (a day and an hour she writes name the same wall-clock in any of them).
    """
    return await _shop(tracker) or next(iter((await backends.bookings().boutiques()).values()), None)


def _window(text: Any, shop: Boutique) -> TimeWindow | None:
    return parse_when(str(text) if text is not None else None, backends.clock().now(), shop.zone)


def _aware(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


async def _label(service: str, language: str) -> str:
    return (await backends.bookings().service_labels(language)).get(service, service)


def moment_words(slot_value: Any, tracker: Tracker) -> Any:
    """The whole moment the client wrote when NLU cut it in pieces ("martedì prossimo" and
    "nel pomeriggio"): every ``date_time`` of her message, in her order; else the value.
    A piece that is part of a garment ("evening" in "evening dresses", "soirée" in "robe
    de soirée") is no moment: left out, and None when nothing else is.
    """
    message = str(tracker.latest_message.get("text") or "")
    entities = sorted((e for e in tracker.latest_message.get("entities") or []
                       if e.get("entity") == "date_time" and isinstance(e.get("value"), str)),
                      key=lambda e: e.get("start") or 0)
    values = [str(e["value"]) for e in entities]
    kept = [value for value in values if says_moment(value, message)]
    if slot_value in values and slot_value not in kept:
        return " ".join(kept) or None
    if len(kept) > 1 and slot_value in kept:
        return " ".join(kept)
    return slot_value


def earlier_slot(tracker: Tracker, name: str) -> Any:
    """The value slot ``name`` had before her last message (what the form's validation
    sees with ``get_slot`` is the value just read from it).
    """
    events = list(tracker.events)
    last_user = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=len(events))
    for event in reversed(events[:last_user]):
        if event.get("event") == "slot" and event.get("name") == name:
            return event.get("value")
    return None


def set_since_her_message(tracker: Tracker, name: str) -> Any:
    """The value slot ``name`` was given since her last message (None when none was)."""
    events = list(tracker.events)
    last_user = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=-1)
    value = None
    for event in events[last_user + 1:]:
        if event.get("event") == "slot" and event.get("name") == name:
            value = event.get("value")
    return value


class ValidateAppointmentForm(FormValidationAction):
    """Checks the appointment form's answers: boutique, service, moment, party and
    confirmation; a known client's confirmation books (or moves) the appointment.
    """

    def name(self) -> str:
        return "validate_appointment_form"

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        # Moving an appointment keeps its boutique, service and party.
        if tracker.get_slot("reschedule_id"):
            return [slot for slot in domain_slots if slot != "party_size"]
        return domain_slots

    async def _plan(self, text: Any, shop: Boutique, dispatcher: CollectingDispatcher,
                    language: str) -> dict[str, Any]:
        """Read the day and time; take the exact slot when it is free, else leave the
        choice to the buttons.
        """
        window = _window(text, shop)
        if window is None:
            dispatcher.utter_message(text=_say(language, "unreadable"))
            return {"date_time": None, "appointment_start": None}
        if window.end <= backends.clock().now():
            dispatcher.utter_message(text=_say(language, "past"))
            return {"date_time": None, "appointment_start": None}
        choice = await choose_slots(backends.bookings(), shop, window)
        start = choice.exact.starts_at.isoformat() if choice.exact is not None else None
        return {"date_time": str(text), "appointment_start": start, "appointment_confirmed": None}

    async def extract_date_time(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: DomainDict) -> dict[str, Any]:
        """A day her sentence names that NLU did not read as one ("I'd like to come in
        saturday with my daughter"): her sentence, which the validation reads as the
        moment (without the garments named after a moment of the day). Only before the
        moment is known and while it is not the question (her answer to it is read by the
        slot's own mapping), and only for a day: a bare number is no moment.
        """
        if tracker.get_slot("date_time") or tracker.get_slot("requested_slot") in ("date_time",
                                                                                  "appointment_start"):
            return {}
        if any(e.get("entity") == "date_time" for e in tracker.latest_message.get("entities") or []):
            return {}
        text = str(tracker.latest_message.get("text") or "")
        if not text or text.startswith("/"):
            return {}
        shop = await _reader(tracker)
        if shop is None or not names_a_day(text, backends.clock().now(), shop.zone, strict=True):
            return {}
        return {"date_time": text}

    async def extract_party_size(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict[str, Any]:
        """Whom she comes with, when her sentence says it before she is asked ("tomorrow
        with my daughter", "avec mon mari et ma fille"): the party, so the form does not
        ask "Will anyone be joining you?" of a client who has just said so. Not when the
        party is asked (its answer is read as such) or already known.
        """
        if tracker.get_slot("party_size") or tracker.get_slot("requested_slot") == "party_size":
            return {}
        if any(e.get("entity") == "party_size" for e in tracker.latest_message.get("entities") or []):
            return {}
        count = companions_named(tracker.latest_message.get("text"))
        return {"party_size": str(count)} if count else {}

    async def extract_boutique(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> dict[str, Any]:
        """A bare place name given when the boutique is asked, which NLU read as a question
        about the boutiques or as a yes ("Rome"): her answer, which the validation checks
        (and says where the boutiques are), instead of every address and a "Book a visit"
        button, or the fallback's "Is this about an order…?", in the middle of the
        booking. A real question ("what time do you open?") is left to its answer.
        """
        if tracker.get_slot("requested_slot") != "boutique" or tracker.get_slot("boutique"):
            return {}
        if (tracker.latest_message.get("intent") or {}).get("name") not in _PLACE_MISREAD_AS:
            return {}
        text = tracker.latest_message.get("text")
        return {"boutique": text} if names_a_place(text) else {}

    async def validate_boutique(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        shops = await backends.bookings().boutiques()
        found = find_boutique(str(slot_value) if slot_value is not None else None, shops)
        if found is None and _answers_another_question(tracker, "boutique"):
            return {"boutique": None}
        if found is None:
            cities = say_list([say_city(shop.city, language) for shop in shops.values()],
                              language, _say(language, "at_each"))
            dispatcher.utter_message(text=_say(language, "boutiques", cities=cities))
            return {"boutique": None}
        result: dict[str, Any] = {"boutique": found}
        service = tracker.get_slot("service")
        if service and service not in shops[found].services:
            result["service"] = None
        if tracker.get_slot("date_time"):
            result.update(await self._plan(tracker.get_slot("date_time"), shops[found],
                                           dispatcher, language))
        return result

    async def validate_service(self, slot_value: Any, dispatcher: CollectingDispatcher,
                               tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        service = find_service(str(slot_value) if slot_value is not None else None)
        if service is None and _answers_another_question(tracker, "service"):
            return {"service": None}
        if service is None and slot_value is not None:
            moment = await self._moment_instead(str(slot_value), tracker, dispatcher, language)
            if moment is not None:
                return {"service": None, **moment}
        if service is None:
            dispatcher.utter_message(text=_say(language, "services"))
            return {"service": None}
        shop = await _shop(tracker)
        if shop is not None and service not in shop.services:
            shops = await backends.bookings().boutiques()
            others = [say_city(s.city, language) for s in shops.values() if service in s.services]
            label = await _label(service, language)
            where = say_list(others, language, _say(language, "at_each"))
            dispatcher.utter_message(text=_say(language, "not_here", city=say_city(shop.city, language),
                                               service=label.lower(), others=where))
            return {"service": None}
        return {"service": service}

    async def _keep_moment(self, words: str, tracker: Tracker, dispatcher: CollectingDispatcher,
                           language: str) -> dict[str, Any]:
        """Her moment, with the day she gave before when it names none of its own: its
        free slots in the chosen boutique, else kept to be read once one is chosen.
        """
        reader = await _reader(tracker)
        if reader is not None:
            words = with_its_day(earlier_slot(tracker, "date_time"), words, backends.clock().now(), reader.zone)
        shop = await _shop(tracker)
        if shop is None:
            return {"date_time": words}
        return await self._plan(words, shop, dispatcher, language)

    async def _moment_instead(self, words: str, tracker: Tracker, dispatcher: CollectingDispatcher,
                              language: str) -> dict[str, Any] | None:
        """A moment her answer gives instead of the one asked ("around 11" when the service
        was asked, which NLU did not read as a moment): kept (:meth:`_keep_moment`); None
        when her words name no moment.
        """
        reader = await _reader(tracker)
        if reader is None or _window(words, reader) is None:
            return None
        return await self._keep_moment(words, tracker, dispatcher, language)

    async def validate_date_time(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                 tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        slot_value = moment_words(slot_value, tracker)
        if slot_value is None:
            return {"date_time": earlier_slot(tracker, "date_time")}
        return await self._keep_moment(str(slot_value), tracker, dispatcher, _language(tracker))

    async def validate_appointment_start(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                         tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        shop = await _shop(tracker)
        if shop is None:
            return {"appointment_start": None}
        start = _aware(slot_value)
        if start is None:
            # Typed instead of tapped: a time that day (the day offered), or another day.
            window = _window(slot_value, shop)
            if window is None:
                dispatcher.utter_message(text=_say(language, "choose_slot"))
                return {"appointment_start": None}
            moment = with_its_day(tracker.get_slot("date_time"), str(slot_value), backends.clock().now(),
                                  shop.zone)
            return await self._plan(moment, shop, dispatcher, language)
        free = await backends.bookings().free_slots(shop.id, start, start + timedelta(minutes=1),
                                                    limit=1)
        if not free or free[0].starts_at != start:
            dispatcher.utter_message(text=_say(language, "just_taken"))
            return {"appointment_start": None}
        return {"appointment_start": start.isoformat()}

    async def validate_party_size(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                  tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        size = parse_party_size(slot_value)
        if size is None or size < 1:
            dispatcher.utter_message(text=_say(language, "how_many"))
            return {"party_size": None}
        if size > MAX_PARTY:
            name = tracker.get_slot("advisor_name")
            advisor = (your_advisor(language, str(name), tracker.get_slot("advisor_gender"))
                       if name else _say(language, "no_advisor"))
            dispatcher.utter_message(text=_say(language, "too_many", most=MAX_PARTY,
                                               advisor=advisor))
            return {"party_size": None}
        return {"party_size": str(size)}

    async def validate_appointment_confirmed(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                             tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        if slot_value is not True:
            # Another moment: ask the day again.
            return {"appointment_confirmed": None, "appointment_start": None, "date_time": None}
        shop = await _shop(tracker)
        start = _aware(tracker.get_slot("appointment_start"))
        service = tracker.get_slot("service")
        if shop is None or start is None or not service:
            return {"appointment_confirmed": None}
        record = await backends.known_client(tracker)
        if record is None:
            return {"appointment_confirmed": True}  # an advisor confirms (see the submit)
        party = parse_party_size(tracker.get_slot("party_size")) or 1
        advisor = record.advisor.id if record.advisor and record.advisor.boutique_id == shop.id else None
        try:
            moving = tracker.get_slot("reschedule_id")
            if moving:
                appointment = await backends.bookings().reschedule(str(moving), record.id, start)
            else:
                appointment = await backends.bookings().book(
                    client_id=record.id, boutique_id=shop.id, service=str(service), starts_at=start,
                    advisor_id=advisor, notes=f"Party of {party}." if party > 1 else None)
        except (SlotTaken, ClientBusy) as exc:
            logger.info("booking for %s not made: %s", record.id, exc)
            dispatcher.utter_message(text=_say(language, "no_longer"))
            return {"appointment_confirmed": None, "appointment_start": None}
        except BookingError as exc:
            logger.warning("booking for %s refused: %s", record.id, exc)
            return {"appointment_confirmed": None, "appointment_start": None, "date_time": None}
        return {"appointment_confirmed": True, "appointment_id": appointment.id}


async def details_noted(tracker: Tracker) -> str:
    """The moment and the party her last message gave while the form asked something
    else, said back ("Very well, Saturday 12 December at 15:00, for 2. "), so she knows
    they were kept; "" when it gave neither, or the form did not keep them (its
    validation then said why). A moment is read in the chosen boutique's time zone, else
    in the first boutique's: her words name the same wall-clock day and hour in any.
    """
    words = set_since_her_message(tracker, "date_time")
    if words and tracker.get_slot("date_time") != words:
        words = None
    party = parse_party_size(set_since_her_message(tracker, "party_size"))
    if not words and not party:
        return ""
    window = None
    if words:
        shop = await _reader(tracker)
        window = _window(words, shop) if shop is not None else None
        if window is None and not party:
            return ""
    return noted_moment(window, _language(tracker), party)


class ActionAskBoutique(AskedAloneAgain):
    """Which boutique, with its buttons; asked again, the question alone (its validation has
    just named the boutiques).
    """

    slot = "boutique"
    again_response = "utter_ask_boutique_again"

    async def noted(self, tracker: Tracker) -> str:
        return await details_noted(tracker)

    def name(self) -> str:
        return "action_ask_boutique"


class ActionAskService(AskedAloneAgain):
    """What to prepare for the visit, with its buttons; asked again, the question alone
    (its validation has just said what can be arranged, or where).
    """

    slot = "service"
    again_response = "utter_ask_service_again"

    async def noted(self, tracker: Tracker) -> str:
        return await details_noted(tracker)

    def name(self) -> str:
        return "action_ask_service"


class ActionAskAppointmentStart(Action):
    """Offer real free slots for the day and time asked, as buttons."""

    def name(self) -> str:
        return "action_ask_appointment_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        shop = await _shop(tracker)
        window = _window(tracker.get_slot("date_time"), shop) if shop else None
        if shop is None or window is None:
            dispatcher.utter_message(response="utter_ask_date_time")
            return [SlotSet("date_time", None)]
        reply = slot_offer(await choose_slots(backends.bookings(), shop, window), shop, language)
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return []


class ActionAskPartySize(Action):
    """Asks whether the client comes alone or with others, with buttons."""

    def name(self) -> str:
        return "action_ask_party_size"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        # French agrees with her title: "Serez-vous accompagnée ?"
        reply = ask_party_size(_language(tracker), gender_of(await backends.known_client(tracker)))
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return []


class ActionAskAppointmentConfirmed(Action):
    """The summary, to be confirmed or changed."""

    def name(self) -> str:
        return "action_ask_appointment_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        shop = await _shop(tracker)
        start = _aware(tracker.get_slot("appointment_start"))
        if shop is None or start is None:
            dispatcher.utter_message(response="utter_ask_date_time")
            return [SlotSet("date_time", None), SlotSet("appointment_start", None)]
        label = await _label(str(tracker.get_slot("service")), language)
        party = parse_party_size(tracker.get_slot("party_size")) or 1
        reply = confirm_question(shop, label, start, party, language,
                                 moving=bool(tracker.get_slot("reschedule_id")))
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return []


async def _owned(reference: Any, record: ClientRecord | None) -> Appointment | None:
    """The appointment ``reference`` names when it is the writing client's own: a slot may
    hold any id (a client can name one), and an appointment is read only for its owner.
    """
    if not reference or record is None:
        return None
    appointment = await backends.bookings().get(str(reference))
    if appointment is None or appointment.client_id != record.id:
        if appointment is not None:
            logger.warning("appointment %s asked about by a client who does not hold it", reference)
        return None
    return appointment


class ActionAppointmentBooked(Action):
    """After the form: the confirmation from the booked record (the client's own: an id
    in the slot that is not hers confirms nothing), then a clean slate.
    """

    def name(self) -> str:
        return "action_appointment_booked"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        reference = tracker.get_slot("appointment_id")
        record = await backends.known_client(tracker)
        appointment = await _owned(reference, record)
        moved = bool(tracker.get_slot("reschedule_id"))
        events: list[EventType] = [SlotSet(slot, None) for slot in BOOKING_SLOTS]
        if tracker.get_slot("rescheduling"):
            events.append(SlotSet("rescheduling", False))
        if appointment is None or appointment.status != "booked":
            # Someone the book does not know (or a booking that could not be made): the
            # request goes to an advisor of that boutique, who confirms it here.
            return events + await hand_over(dispatcher, tracker, "booking_request",
                                            boutique_id=tracker.get_slot("boutique"))
        shops = await backends.bookings().boutiques()
        shop = shops[appointment.boutique_id]
        advisor = record.advisor.first_name if (
            record and record.advisor and record.advisor.id == appointment.advisor_id) else None
        label = await _label(appointment.service, language)
        dispatcher.utter_message(text=booked(appointment, shop, label, advisor, language,
                                             moved=moved))
        return events


async def _choose(tracker: Tracker, dispatcher: CollectingDispatcher, intent: str,
                  question: str, events: list[EventType]) -> tuple[Appointment, Boutique] | None:
    """The client's upcoming appointment this request is about: the one named by a
    button, the only one, or None after asking which (or saying there is none, or asking
    a username-only client for her number: ``events`` then gets what resumes it).
    """
    language = _language(tracker)
    record = await backends.known_client(tracker)
    if record is None and backends.username_only(tracker):
        # Writing from a username, not in the book: her number tells whose they are.
        events.extend(backends.ask_for_number(dispatcher, "appointments", language,
                                              resume=f"action_{intent}"))
        return None
    try:
        upcoming = await backends.bookings().upcoming(record.id) if record else []
        shops = await backends.bookings().boutiques()
    except SQLAlchemyError:
        logger.exception("bookings unavailable for %s", tracker.sender_id)
        upcoming, shops = [], {}
    if not upcoming:
        dispatcher.utter_message(text=_say(language, "none_upcoming"), buttons=[
            {"title": _say(language, "book"), "payload": "/book_appointment"}])
        return None
    named = next(tracker.get_latest_entity_values("appointment_id"), None)
    chosen = next((a for a in upcoming if a.id == named), None)
    if chosen is None and len(upcoming) == 1:
        chosen = upcoming[0]
    if chosen is None:
        items = [(a, shops[a.boutique_id]) for a in upcoming]
        dispatcher.utter_message(text=_say(language, question),
                                 buttons=appointment_buttons(items, intent, language))
        return None
    return chosen, shops[chosen.boutique_id]


class ActionCancelAppointment(Action):
    """Find the appointment to cancel and ask once before cancelling it."""

    def name(self) -> str:
        return "action_cancel_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        events: list[EventType] = [SlotSet("cancelling", False)]
        found = await _choose(tracker, dispatcher, "cancel_appointment", "which_cancel", events)
        if found is None:
            return events
        appointment, shop = found
        what = describe(appointment, shop, await _label(appointment.service, language), language)
        dispatcher.utter_message(text=_say(language, "cancel_question", what=what), buttons=[
            {"title": _say(language, "yes_cancel"), "payload": "/affirm"},
            {"title": _say(language, "keep_it"), "payload": "/deny"}])
        return [SlotSet("appointment_id", appointment.id), SlotSet("cancelling", True)]


class ActionSettleCancellation(Action):
    """The client's yes (cancel) or no (keep it) to the cancellation question."""

    def name(self) -> str:
        return "action_settle_cancellation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        events: list[EventType] = [SlotSet("cancelling", False), SlotSet("appointment_id", None)]
        reference = tracker.get_slot("appointment_id")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent != "affirm" or not reference:
            dispatcher.utter_message(text=_say(language, "kept"))
            return events
        record = await backends.known_client(tracker)
        cancelled = await backends.bookings().cancel(str(reference), record.id) if record else None
        if cancelled is None:
            dispatcher.utter_message(text=_say(language, "inactive"))
            return events
        shop = (await backends.bookings().boutiques())[cancelled.boutique_id]
        what = describe(cancelled, shop, await _label(cancelled.service, language), language)
        dispatcher.utter_message(text=_say(language, "cancelled", what=what))
        return events


class ActionRescheduleAppointment(Action):
    """Find the appointment to move; the booking form then asks for the new moment."""

    def name(self) -> str:
        return "action_reschedule_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        events: list[EventType] = [SlotSet("rescheduling", False)]
        found = await _choose(tracker, dispatcher, "reschedule_appointment", "which_move", events)
        if found is None:
            return events
        appointment, shop = found
        what = describe(appointment, shop, await _label(appointment.service, language), language)
        dispatcher.utter_message(text=_say(language, "moving", what=what))
        return [
            SlotSet("reschedule_id", appointment.id), SlotSet("boutique", appointment.boutique_id),
            SlotSet("service", appointment.service), SlotSet("date_time", None),
            SlotSet("appointment_start", None), SlotSet("appointment_confirmed", None),
            SlotSet("rescheduling", True),
        ]
