"""The action server's connections to the core, created once per process."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from functools import lru_cache

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.access.signed_identity import identity_key, sealed_ids
from salon.advisors.handoff import HandoffBook
from salon.advisors.repairs import RepairBook
from salon.clock import Clock, clock_from_env
from salon.config import load_settings
from salon.conversation.contact_request import contact_request
from salon.integrations.bookings import Bookings, SqlBookings
from salon.integrations.catalog import Catalog, SqlCatalog
from salon.integrations.crm import ClientRecord, Crm, CrmUnavailable, HttpCrm, SqlCrm
from salon.integrations.events import Events, SqlEvents
from salon.integrations.house import HouseRules, SqlHouseRules
from salon.integrations.orders import Orders, SqlOrders
from salon.llm.audit import LlmAudit
from salon.llm.config import load_llm_settings
from salon.llm.responder import StylingAdvisor
from salon.outbound.restock import RestockBook
from salon.storage.db import make_async_engine

logger = logging.getLogger(__name__)

SESSION_METADATA_SLOT = "session_started_metadata"
"""Where Rasa keeps the metadata of the message that started the session."""

#: The action that takes a username-only client's request up again once she shared her number.
RESUME_SLOT = "resume_after_contact"


@lru_cache(maxsize=1)
def engine() -> AsyncEngine:
    """One pool on ``DATABASE_URL`` (the seeded ``var/salon.db`` by default) for every port."""
    return make_async_engine(load_settings().effective_database_url)


@lru_cache(maxsize=1)
def clock() -> Clock:
    """The system clock, shifted by ``SALON_CLOCK_FILE`` when set (demo, end-to-end)."""
    return clock_from_env()


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The product catalog on ``DATABASE_URL``."""
    return SqlCatalog(engine())


@lru_cache(maxsize=1)
def orders() -> Orders:
    """Orders on ``DATABASE_URL``, read only for their owner."""
    return SqlOrders(engine())


@lru_cache(maxsize=1)
def house() -> HouseRules:
    """The house's rules (its returns policy) on ``DATABASE_URL``."""
    return SqlHouseRules(engine())


@lru_cache(maxsize=1)
def crm() -> Crm:
    """``SALON_CRM_URL`` set: the REST CRM there (token ``SALON_CRM_TOKEN``); else the
    maison's client book on ``DATABASE_URL``.
    """
    url = os.environ.get("SALON_CRM_URL", "").strip()
    if url:
        return HttpCrm(url, os.environ.get("SALON_CRM_TOKEN", ""))
    return SqlCrm(engine())


@lru_cache(maxsize=1)
def bookings() -> Bookings:
    """The boutiques' appointment book on ``DATABASE_URL``."""
    return SqlBookings(engine(), clock())


@lru_cache(maxsize=1)
def events() -> Events:
    """The maison's private events and the clients' replies on ``DATABASE_URL``."""
    return SqlEvents(engine(), clock())


def reset() -> None:
    """Forget every connection (tests switch ``DATABASE_URL`` between cases)."""
    for cached in (engine, clock, catalog, orders, house, crm, bookings, events, styling_advisor, restock,
                   _handoff_book, _repair_book):
        cached.cache_clear()
    _tables_ready.clear()


async def close() -> None:
    """Close the pool when the server stops: its SQLite connections each hold a
    (non-daemon) thread that would otherwise keep the process from exiting.
    """
    if engine.cache_info().currsize:
        await engine().dispose()
    reset()


def client_ids(tracker: Tracker) -> tuple[str | None, str | None]:
    """(wa_id, user_id) of the person writing, as the WhatsApp channel sealed them for
    this conversation (:mod:`salon.access.signed_identity`): the latest turn's, else an earlier
    turn's (a turn the assistant starts itself carries none), else the metadata of the
    message that started the session (a brand-new conversation's ``action_session_start``
    runs before any turn is recorded). Nothing a caller merely says counts: not another
    channel's metadata, not the conversation id. (None, None) for nobody in particular.
    """
    metadatas = [tracker.latest_message.get("metadata")]
    metadatas += [event.get("metadata") for event in reversed(tracker.events or [])
                  if isinstance(event, dict) and event.get("event") == "user"]
    metadatas.append(tracker.get_slot(SESSION_METADATA_SLOT))
    return sealed_ids(identity_key(), tracker.sender_id or "", metadatas)


def username_only(tracker: Tracker) -> bool:
    """The client writes from a WhatsApp username: Meta gave her BSUID, not her number."""
    wa_id, user_id = client_ids(tracker)
    return wa_id is None and user_id is not None


def ask_for_number(dispatcher: CollectingDispatcher, about: str, language: str,
                   resume: str) -> list[EventType]:
    """Ask a username-only client for her number (``about``: ``orders`` or
    ``appointments``); ``resume`` is the action that takes her request up again once she
    has shared it (see ``action_contact_shared``).
    """
    dispatcher.utter_message(json_message=contact_request(about, language))
    return [SlotSet(RESUME_SLOT, resume)]


async def known_client(tracker: Tracker) -> ClientRecord | None:
    """The client's record, or None when unknown or when the CRM cannot answer (logged:
    the conversation goes on without personalisation rather than failing).
    """
    wa_id, user_id = client_ids(tracker)
    try:
        return await crm().find(wa_id=wa_id, user_id=user_id)
    except (CrmUnavailable, OSError) as exc:
        logger.error("CRM unavailable for %s: %s", tracker.sender_id, exc)
    except Exception:  # a SQL error: the same, with its traceback
        logger.exception("CRM lookup failed for %s", tracker.sender_id)
    return None


_tables_ready: set[int] = set()


@lru_cache(maxsize=1)
def _handoff_book() -> HandoffBook:
    return HandoffBook(engine=engine())


async def handoffs() -> HandoffBook:
    """The handoff records on ``DATABASE_URL`` (their table is created on first use)."""
    book = _handoff_book()
    if id(book) not in _tables_ready:
        await book.initialize()
        _tables_ready.add(id(book))
    return book


def advisor_webhook_url() -> str | None:
    """``SALON_ADVISOR_WEBHOOK_URL``: where a handoff is POSTed (unset: the record only)."""
    return os.environ.get("SALON_ADVISOR_WEBHOOK_URL", "").strip() or None


@lru_cache(maxsize=1)
def _repair_book() -> RepairBook:
    return RepairBook(engine=engine())


async def repairs() -> RepairBook:
    """Repair requests on ``DATABASE_URL`` (their table is created on first use)."""
    book = _repair_book()
    if id(book) not in _tables_ready:
        await book.initialize()
        _tables_ready.add(id(book))
    return book


@lru_cache(maxsize=1)
def styling_advisor() -> StylingAdvisor:
    """The styling fallback on ``DATABASE_URL``: a model only when ``SALON_LLM_BASE_URL``
    and ``SALON_LLM_MODEL`` are set, the offline responder otherwise.
    """
    settings = load_llm_settings()
    audit = LlmAudit(engine=engine(), clock=clock(),
                     retention=timedelta(days=settings.audit_retention_days))
    return StylingAdvisor(engine(), settings, clock=clock(), audit=audit)


@lru_cache(maxsize=1)
def restock() -> RestockBook:
    """Restock requests on ``DATABASE_URL`` (alerts go through the outbound queue there)."""
    return RestockBook(engine=engine())
