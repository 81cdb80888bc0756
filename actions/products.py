"""Product questions answered from the catalog, never from imagination."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions import backends
from actions.greeting import conversation_language
from actions.handoff import hand_over
from salon.advisors.handoff import PURCHASE_QUESTION, asks_whether, purchase_note
from salon.conversation.care_answers import asks_about_care, care_answer, names_a_kind, piece_meant
from salon.conversation.language import supported
from salon.conversation.product_answers import asks_price_only, product_answer
from salon.conversation.thread import points_elsewhere, the_other_piece
from salon.integrations.catalog import ProductFacts

logger = logging.getLogger(__name__)


#: What a follow-up question about the piece just discussed names instead of the piece.
THREAD_ENTITIES = frozenset({"colour", "size", "boutique"})
#: The slot keeping what "Which piece?" was asked for.
PIECE_ASKED_FOR = "piece_asked_for"


def keeps_the_thread(tracker: Tracker, named: str | None) -> bool:
    """Whether the message asks about the piece just discussed ("and in camel?", "et en
    noir ?", "same in Milan?"): no piece named, a colour, size or boutique instead, and a
    piece in the conversation's ``product`` slot.
    """
    if named or not tracker.get_slot("product"):
        return False
    entities = tracker.latest_message.get("entities") or []
    return any(entity.get("entity") in THREAD_ENTITIES for entity in entities)


def asked_which_piece(tracker: Tracker) -> str | None:
    """What the assistant asked "Which piece?" for ("care", "piece"), when that was its
    last word before her message: she is naming the piece, not starting anew.
    """
    asked = tracker.get_slot(PIECE_ASKED_FOR)
    if not asked:
        return None
    after_her_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if after_her_message:
                return None
            after_her_message = True
        elif after_her_message and event.get("event") == "action" and event.get("name") != "action_listen":
            return str(asked) if event.get("name") == "action_product_inquiry" else None
    return None


def asked_colour(tracker: Tracker) -> tuple[str | None, str | None]:
    """The colour her message asks for, as the NLU normalises it ("red"), and as she wrote
    it ("rouge"): the answer says her word back, in her language, not the value. A
    button's payload has no words of hers: the value is said then.
    """
    text = str(tracker.latest_message.get("text") or "")
    for entity in tracker.latest_message.get("entities") or []:
        value = entity.get("value")
        if entity.get("entity") != "colour" or not isinstance(value, str) or not value:
            continue
        start, end = entity.get("start"), entity.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            return value, text[start:end]
        return value, value
    return None, None


def settled(tracker: Tracker) -> list[EventType]:
    """Forgets that "Which piece?" was asked, when it was."""
    return [SlotSet(PIECE_ASKED_FOR, None)] if tracker.get_slot(PIECE_ASKED_FOR) else []


class ActionProductInquiry(Action):
    """Answer availability, materials and price of the piece the client names."""

    def name(self) -> str:
        return "action_product_inquiry"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        named = next(tracker.get_latest_entity_values("product"), None)
        said = str(tracker.latest_message.get("text") or "")
        pending = asked_which_piece(tracker)
        care = asks_about_care(said) or pending == "care"
        if care:
            try:
                answered = await self._care(dispatcher, tracker, named, said)
            except SQLAlchemyError:
                logger.exception("catalog unavailable while answering a care question")
                dispatcher.utter_message(response="utter_catalog_unavailable")
                return settled(tracker)
            if answered is not None:
                return [SlotSet("product", answered.name), *settled(tracker)]
        elif (tracker.latest_message.get("intent") or {}).get("name") == "inform" and not pending \
                and named is None and not keeps_the_thread(tracker, named):
            # A boutique, a date or a name right after an answer about a piece, saying
            # nothing of the piece: what it is about is asked, as anywhere else.
            dispatcher.utter_message(response="utter_inform_without_context")
            return settled(tracker)
        text = " ".join(part for part in (named, tracker.latest_message.get("text")) if part)
        colour, colour_said = asked_colour(tracker)
        size = next(tracker.get_latest_entity_values("size"), None)
        boutique = next(tracker.get_latest_entity_values("boutique"), None)
        suggested = tracker.get_slot("suggested_pieces") or []
        if named is None and suggested and points_elsewhere(tracker.latest_message.get("text")):
            # "the other one", "et l'autre ?": another of the pieces just suggested.
            text = the_other_piece(str(tracker.latest_message.get("text")), list(suggested),
                                   tracker.get_slot("product")) or text
        elif keeps_the_thread(tracker, named):
            # "and in camel?", "et à Londres ?": the piece just discussed, not a new search
            # (a camel coat is not what she asked about).
            text = str(tracker.get_slot("product"))
        elif not text and tracker.get_slot("product"):
            text = str(tracker.get_slot("product"))
        catalog = backends.catalog()
        try:
            facts = await catalog.find(text) if text else None
            if facts is None and tracker.get_slot("product") and not pending and not care:
                facts = await catalog.find(str(tracker.get_slot("product")))
            cities = await catalog.boutique_names() if facts else {}
        except SQLAlchemyError:
            logger.exception("catalog unavailable while answering a product question")
            dispatcher.utter_message(response="utter_catalog_unavailable")
            return settled(tracker)
        if facts is None:
            dispatcher.utter_message(response="utter_ask_which_piece")
            return [SlotSet(PIECE_ASKED_FOR, "care" if care else "piece")]
        language = supported(conversation_language(tracker, None))
        dispatcher.utter_message(text=product_answer(facts, cities, colour, language, colour_said,
                                                     str(size) if size else None,
                                                     str(boutique) if boutique else None,
                                                     price_only=asks_price_only(said)))
        return [SlotSet("product", facts.name), *settled(tracker)]

    async def _care(self, dispatcher: CollectingDispatcher, tracker: Tracker, named: str | None,
                    said: str) -> ProductFacts | None:
        """A care question: the piece named, else the one of hers her words designate,
        else the one piece of the catalog they do, else the piece just discussed when her
        words name no kind of piece ("how do I clean it?"); its care notes said. None when no
        piece is clear (she is asked which, as for any question about a piece).
        """
        catalog = backends.catalog()
        facts = await catalog.find(named or said)
        owned = False
        record = await backends.known_client(tracker)
        mine = {p.product_id: p.product_name for p in record.purchases} if record is not None else {}
        if facts is None:
            products = {p.id: p for p in await catalog.all_products()}
            chosen = piece_meant(said, mine.items())
            owned = chosen is not None
            chosen = chosen or piece_meant(said, ((p.id, p.name) for p in products.values()))
            facts = products.get(chosen) if chosen is not None else None
        if facts is None and tracker.get_slot("product") and not names_a_kind(said):
            # "How do I clean it?": the piece just discussed.
            facts = await catalog.find(str(tracker.get_slot("product")))
        if facts is None:
            return None
        owned = owned or facts.id in mine
        reply = care_answer(facts, supported(conversation_language(tracker, None)), owned=owned)
        dispatcher.utter_message(text=reply.text, buttons=reply.buttons)
        return facts


class ActionPurchase(Action):
    """She is ready to buy ("I'll take it", "je le prends", "la prendo, come pago?"): her
    advisor holds the piece and arranges the payment, so the conversation goes to them
    (reason ``purchase``) with the piece in their note: the one she names, else the one
    just discussed, else none (the advisor asks; nothing is guessed).
    """

    def name(self) -> str:
        return "action_purchase"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        named = next(tracker.get_latest_entity_values("product"), None)
        piece = tracker.get_slot("product")
        if named:
            try:
                facts = await backends.catalog().find(named)
            except SQLAlchemyError:
                logger.exception("catalog unavailable while noting a piece to buy")
                facts = None
            piece = facts.name if facts is not None else named
        words = str(tracker.latest_message.get("text") or "")
        note = purchase_note(words, str(piece) if piece else None)
        # "Can I pay by bank transfer?": her advisor answers; "With pleasure, we will
        # arrange it" would read as a yes.
        lead = PURCHASE_QUESTION if asks_whether(words) else None
        events = await hand_over(dispatcher, tracker, "purchase", note=note, lead=lead)
        return ([SlotSet("product", piece)] if piece else []) + events
