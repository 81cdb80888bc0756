"""The action server's connections to the core, created once per process."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from salon.clock import clock_from_env
from salon.config import load_settings
from salon.db import make_async_engine
from salon.integrations.catalog import Catalog, SqlCatalog
from salon.integrations.orders import Orders, SqlOrders
from salon.llm.advisor import StylingAdvisor
from salon.llm.audit import LlmAudit
from salon.llm.config import load_llm_settings
from salon.restock import RestockBook


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The catalog on ``DATABASE_URL`` (the seeded ``var/salon.db`` by default)."""
    return SqlCatalog(make_async_engine(load_settings().effective_database_url))


@lru_cache(maxsize=1)
def orders() -> Orders:
    """Orders on ``DATABASE_URL``, read only for their owner."""
    return SqlOrders(make_async_engine(load_settings().effective_database_url))


@lru_cache(maxsize=1)
def styling_advisor() -> StylingAdvisor:
    """The styling fallback on ``DATABASE_URL``: a model only when ``SALON_LLM_BASE_URL``
    and ``SALON_LLM_MODEL`` are set, the offline responder otherwise."""
    settings = load_llm_settings()
    engine = make_async_engine(load_settings().effective_database_url)
    clock = clock_from_env()
    audit = LlmAudit(engine=engine, clock=clock, retention=timedelta(days=settings.audit_retention_days))
    return StylingAdvisor(engine, settings, clock=clock, audit=audit)


@lru_cache(maxsize=1)
def restock() -> RestockBook:
    """Restock requests on ``DATABASE_URL`` (alerts go through the outbound queue there)."""
    return RestockBook(engine=make_async_engine(load_settings().effective_database_url))
