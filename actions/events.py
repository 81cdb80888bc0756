"""Private events: the RSVP form (which event, how many guests, confirmation), the reply
kept in the client's record within the event's capacity (or on its waiting list), and
withdrawing a reply. The reading and the words live in ``salon.conversation.rsvp``; who may come,
the guests, the deadline and the capacity are the events port's
(``salon.integrations.events``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language
from salon.conversation.greetings import Reply
from salon.conversation.language import supported
from salon.conversation.phrasing import gender_of
from salon.conversation.rsvp import (
    OFFER_ATTEND,
    OFFER_WAITLIST,
    already_declined,
    ask_guests,
    choose_event,
    closed_line,
    confirm_question,
    declined_offer_line,
    event_begun,
    find_event,
    full_lead,
    guests_allowed,
    guests_not_understood,
    invitations_unavailable,
    no_event_line,
    not_sure_which,
    nothing_to_withdraw,
    parse_guests,
    replied_line,
    taken_meanwhile,
    upcoming_events,
    which_to_withdraw,
    withdraw_question,
    withdrawn_line,
)
from salon.integrations.crm import ClientRecord
from salon.integrations.events import (
    EventFull,
    NotInvited,
    RsvpClosed,
    Standing,
    TooManyGuests,
    UnknownEvent,
)

logger = logging.getLogger(__name__)

#: Slots of one reply, cleared when it is done.
RSVP_SLOTS = ("rsvp_event", "rsvp_guests", "rsvp_confirmed", "rsvp_offer", "rsvp_outcome")


def _language(tracker: Tracker) -> str:
    return supported(conversation_language(tracker, None))


def _say(dispatcher: CollectingDispatcher, reply: Reply) -> None:
    dispatcher.utter_message(text=reply.text, buttons=reply.buttons)


@dataclass
class _Context:
    """Who is writing and the events they may attend, read once per turn."""

    record: ClientRecord | None
    standings: list[Standing] = field(default_factory=list)
    failed: bool = False

    @property
    def open(self) -> list[Standing]:
        return [s for s in self.standings if s.open]

    def find(self, event_id: Any) -> Standing | None:
        return next((s for s in self.standings if s.event.id == event_id), None)


_TURN: ContextVar[_Context | None] = ContextVar("rsvp_turn", default=None)


async def _load(tracker: Tracker) -> _Context:
    record = await backends.known_client(tracker)
    if record is None:
        return _Context(None)
    try:
        return _Context(record, await backends.events().upcoming_for(record.id))
    except SQLAlchemyError:
        logger.exception("events unavailable for %s", tracker.sender_id)
        return _Context(record, failed=True)


async def _context(tracker: Tracker) -> _Context:
    current = _TURN.get()
    return current if current is not None else await _load(tracker)


def _previous(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the client's latest message."""
    value = before = None
    for event in tracker.events:
        if event.get("event") == "slot" and event.get("name") == slot:
            value = event.get("value")
        elif event.get("event") == "user":
            before = value
    return before


def _guests(tracker: Tracker) -> int:
    return parse_guests(tracker.get_slot("rsvp_guests")) or 0


class ValidateEventRsvpForm(FormValidationAction):
    """Checks the RSVP form's answers (event, guests, confirmation) against the events the
    client may reply to; the confirmation records the reply.
    """

    def name(self) -> str:
        return "validate_event_rsvp_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        token = _TURN.set(await _load(tracker))
        try:
            return await super().run(dispatcher, tracker, domain)
        finally:
            _TURN.reset(token)

    async def required_slots(self, domain_slots: list[str], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> list[str]:
        # Someone unknown, or no event open to replies: nothing to ask, the submit says why.
        ctx = await _context(tracker)
        if ctx.record is None or not ctx.open:
            return []
        chosen = ctx.find(tracker.get_slot("rsvp_event"))
        if chosen is not None and chosen.event.guests_per_invitation == 0:
            return [slot for slot in domain_slots if slot != "rsvp_guests"]
        return domain_slots

    async def extract_rsvp_event(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                 domain: DomainDict) -> dict[str, Any]:
        # One event open to replies: no need to ask which.
        if tracker.get_slot("rsvp_event") is not None:
            return {}
        ctx = await _context(tracker)
        return {"rsvp_event": ctx.open[0].event.id} if len(ctx.open) == 1 else {}

    async def validate_rsvp_event(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                  tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        ctx = await _context(tracker)
        previous = _previous(tracker, "rsvp_event")
        still = ctx.find(previous)
        found = find_event(str(slot_value) if slot_value is not None else None, ctx.standings)
        if found is None:
            if still is not None:
                return {"rsvp_event": previous}  # words that name no event keep the one chosen
            if len(ctx.open) == 1:
                found = ctx.open[0]
            else:
                if tracker.get_slot("requested_slot") == "rsvp_event":
                    dispatcher.utter_message(text=not_sure_which(language))
                return {"rsvp_event": None}
        if not found.open:
            assert ctx.record is not None
            dispatcher.utter_message(text=closed_line(found.event, ctx.record, language).text)
            return {"rsvp_event": previous if still is not None and still.open else None}
        result: dict[str, Any] = {"rsvp_event": found.event.id}
        if previous is not None and previous != found.event.id:
            result["rsvp_confirmed"] = None
        if "rsvp_guests" not in tracker.slots_to_validate():
            held = parse_guests(tracker.get_slot("rsvp_guests"))
            if held is not None and held > found.event.guests_per_invitation:
                result["rsvp_guests"] = None
        if not found.has_room_for(0):
            dispatcher.utter_message(text=full_lead(found.event, language))
        return result

    async def validate_rsvp_guests(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                   tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        requested = tracker.get_slot("requested_slot") == "rsvp_guests"
        previous = _previous(tracker, "rsvp_guests")
        count = parse_guests(str(slot_value) if slot_value is not None else None, bare=requested)
        if count is None:
            if requested:
                dispatcher.utter_message(text=guests_not_understood(language))
            return {"rsvp_guests": previous}  # words about something else change nothing
        chosen = (await _context(tracker)).find(tracker.get_slot("rsvp_event"))
        if chosen is not None and count > chosen.event.guests_per_invitation:
            dispatcher.utter_message(text=guests_allowed(chosen.event, language))
            return {"rsvp_guests": None if requested else previous}
        result: dict[str, Any] = {"rsvp_guests": str(count)}
        if previous is not None and previous != str(count):
            result["rsvp_confirmed"] = None  # a correction: the summary is asked again
        return result

    async def validate_rsvp_confirmed(self, slot_value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        language = _language(tracker)
        ctx = await _context(tracker)
        chosen = ctx.find(tracker.get_slot("rsvp_event"))
        if chosen is None or ctx.record is None:
            return {"rsvp_confirmed": None}
        offer = tracker.get_slot("rsvp_offer") or OFFER_ATTEND
        if slot_value is not True:
            if offer == OFFER_WAITLIST or chosen.event.guests_per_invitation == 0:
                return {"rsvp_confirmed": False, "rsvp_outcome": "declined_offer"}
            return {"rsvp_confirmed": None, "rsvp_guests": None}  # other guests: asked again
        try:
            rsvp = await backends.events().reply(chosen.event.id, ctx.record.id, guests=_guests(tracker),
                                                 waitlist_if_full=offer == OFFER_WAITLIST)
        except EventFull as exc:
            logger.info("RSVP for %s not taken: %s", ctx.record.id, exc)
            dispatcher.utter_message(text=taken_meanwhile(language))
            return {"rsvp_confirmed": None}  # asked again, now with the waiting list
        except TooManyGuests:
            dispatcher.utter_message(text=guests_allowed(chosen.event, language))
            return {"rsvp_confirmed": None, "rsvp_guests": None}
        except RsvpClosed as exc:
            logger.info("RSVP for %s refused: %s", ctx.record.id, exc)
            return {"rsvp_confirmed": False, "rsvp_outcome": "closed"}
        except (NotInvited, UnknownEvent, SQLAlchemyError):
            logger.exception("RSVP for %s to %s not recorded", ctx.record.id, chosen.event.id)
            return {"rsvp_confirmed": False, "rsvp_outcome": "unavailable"}
        outcome = "changed" if chosen.attending and rsvp.status == "accepted" else rsvp.status
        return {"rsvp_confirmed": True, "rsvp_outcome": outcome}


class ActionAskRsvpEvent(Action):
    """Which event: the ones open to the client's reply, as buttons (a list beyond three)."""

    def name(self) -> str:
        return "action_ask_rsvp_event"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = await _load(tracker)
        _say(dispatcher, choose_event(ctx.open, _language(tracker)))
        return []


class ActionAskRsvpGuests(Action):
    """Asks whether anyone joins the client at the chosen event."""

    def name(self) -> str:
        return "action_ask_rsvp_guests"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = await _load(tracker)
        chosen = ctx.find(tracker.get_slot("rsvp_event"))
        if chosen is None:
            _say(dispatcher, choose_event(ctx.open, _language(tracker)))
            return [SlotSet("rsvp_event", None)]
        _say(dispatcher, ask_guests(chosen, _language(tracker), gender_of(ctx.record)))
        return []


class ActionAskRsvpConfirmed(Action):
    """The summary to confirm, or the waiting list when the party no longer fits."""

    def name(self) -> str:
        return "action_ask_rsvp_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        ctx = await _load(tracker)
        chosen = ctx.find(tracker.get_slot("rsvp_event"))
        if chosen is None or ctx.record is None:
            _say(dispatcher, choose_event(ctx.open, _language(tracker)))
            return [SlotSet("rsvp_event", None)]
        advisor = ctx.record.advisor.first_name if ctx.record.advisor else None
        reply, offer = confirm_question(chosen, _guests(tracker), _language(tracker), advisor)
        _say(dispatcher, reply)
        return [SlotSet("rsvp_offer", offer)]


class ActionEventRsvp(Action):
    """After the form: the reply as recorded, in one line (or why there was nothing to
    record), then a clean slate.
    """

    def name(self) -> str:
        return "action_event_rsvp"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        cleared: list[EventType] = [SlotSet(slot, None) for slot in RSVP_SLOTS]
        ctx = await _load(tracker)
        record = ctx.record
        if record is None:
            dispatcher.utter_message(response="utter_rsvp_invitation_only")
            return cleared
        outcome = tracker.get_slot("rsvp_outcome")
        chosen = ctx.find(tracker.get_slot("rsvp_event"))
        if outcome in ("accepted", "changed", "waitlisted") and chosen is not None and chosen.reply:
            dispatcher.utter_message(text=replied_line(chosen.reply, chosen.event, record, language,
                                                       changed=outcome == "changed"))
        elif outcome == "declined_offer":
            dispatcher.utter_message(text=declined_offer_line(record, language))
        elif outcome == "closed" and chosen is not None:
            _say(dispatcher, closed_line(chosen.event, record, language))
        elif outcome is not None or ctx.failed:
            dispatcher.utter_message(response="utter_rsvp_not_recorded")
        elif ctx.standings:
            _say(dispatcher, closed_line(ctx.standings[0].event, record, language))
        else:
            _say(dispatcher, no_event_line(record, language))
        return cleared


class ActionUpcomingEvents(Action):
    """"Are there any events coming up?": the evenings the client is invited to, with a
    button to reply to each; someone the book does not know hears that they are by
    invitation (nothing about a private event is said to her).
    """

    def name(self) -> str:
        return "action_upcoming_events"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        ctx = await _load(tracker)
        if ctx.record is None:
            dispatcher.utter_message(response="utter_rsvp_invitation_only")
        elif ctx.failed:
            dispatcher.utter_message(text=invitations_unavailable(language))
        else:
            boutique = next(tracker.get_latest_entity_values("boutique"), None)
            shop = (await backends.bookings().boutiques()).get(str(boutique)) if boutique else None
            _say(dispatcher, upcoming_events(ctx.standings, ctx.record, language,
                                             shop.id if shop else None, shop.city if shop else None))
        return []


class ActionCancelEventRsvp(Action):
    """Find the reply to withdraw (named, the only one, or asked which) and ask once."""

    def name(self) -> str:
        return "action_cancel_event_rsvp"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        not_now: list[EventType] = [SlotSet("cancelling_rsvp", False)]
        ctx = await _load(tracker)
        if ctx.record is None:
            dispatcher.utter_message(response="utter_rsvp_invitation_only")
            return not_now
        if ctx.failed:
            dispatcher.utter_message(response="utter_rsvp_not_recorded")
            return not_now
        named = next(tracker.get_latest_entity_values("rsvp_event"), None) or tracker.latest_message.get("text")
        chosen = find_event(named, ctx.standings)
        if chosen is None:
            standing = [s for s in ctx.standings if s.reply and s.reply.status in ("accepted", "waitlisted")]
            standing = standing or [s for s in ctx.standings if s.reply and s.reply.status == "invited"]
            if len(standing) > 1:
                _say(dispatcher, which_to_withdraw(standing, language))
                return not_now
            if not standing:
                _say(dispatcher, nothing_to_withdraw(language))
                return not_now
            chosen = standing[0]
        if chosen.reply is not None and chosen.reply.status == "declined":
            dispatcher.utter_message(text=already_declined(chosen.event, language))
            return not_now
        _say(dispatcher, withdraw_question(chosen, language))
        return [SlotSet("rsvp_event", chosen.event.id), SlotSet("cancelling_rsvp", True)]


class ActionSettleRsvpCancellation(Action):
    """The client's yes (withdraw) or no (keep it) to the question."""

    def name(self) -> str:
        return "action_settle_rsvp_cancellation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        language = _language(tracker)
        done: list[EventType] = [SlotSet("cancelling_rsvp", False), SlotSet("rsvp_event", None)]
        event_id = tracker.get_slot("rsvp_event")
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent != "affirm" or not event_id:
            dispatcher.utter_message(response="utter_rsvp_kept")
            return done
        ctx = await _load(tracker)
        chosen = ctx.find(event_id)
        if ctx.record is None or chosen is None:
            dispatcher.utter_message(response="utter_rsvp_not_recorded")
            return done
        previous = chosen.reply.status if chosen.reply else None
        try:
            declined = await backends.events().decline(chosen.event.id, ctx.record.id)
        except RsvpClosed:
            dispatcher.utter_message(text=event_begun(chosen.event, language))
            return done
        except (NotInvited, UnknownEvent, SQLAlchemyError):
            logger.exception("withdrawal of %s from %s not recorded", ctx.record.id, chosen.event.id)
            dispatcher.utter_message(response="utter_rsvp_not_recorded")
            return done
        if declined is None:
            dispatcher.utter_message(text=already_declined(chosen.event, language))
        else:
            dispatcher.utter_message(text=withdrawn_line(chosen.event, previous, ctx.record, language))
        return done
