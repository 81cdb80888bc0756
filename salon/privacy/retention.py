"""Retention: conversations older than their retention period are purged from Rasa's tracker store."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import (
    delete,
    inspect,
)

from salon.clock import Clock, clock_from_env, to_us
from salon.config import Settings
from salon.privacy.rasa_stores import RasaSqlTrackers, rasa_stores
from salon.storage.db import make_async_engine

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CONVERSATION_RETENTION_DAYS", "purge_retention"]


DEFAULT_CONVERSATION_RETENTION_DAYS = 365


async def purge_retention(
    settings: Settings, *, conversation_days: int | None = None, clock: Clock | None = None,
    endpoints: str | Path | None = None,
) -> dict[str, int]:
    """Delete conversations older than the retention (``SALON_CONVERSATION_RETENTION_DAYS``,
    365 by default): handled inbox rows, outbound records, Rasa's SQL tracker events (the
    tracker store of Rasa's endpoints file, see :func:`rasa_stores`). The LLM audit has
    its own retention (``salon llm-audit-purge``).
    """
    from salon.guard.sent import outbound_table
    from salon.webhook.inbox import inbox_table

    days = conversation_days if conversation_days is not None else int(
        os.environ.get("SALON_CONVERSATION_RETENTION_DAYS", DEFAULT_CONVERSATION_RETENTION_DAYS))
    if days < 1:
        raise ValueError("the retention must be at least one day")
    now = (clock or clock_from_env()).now()
    cutoff = now - timedelta(days=days)
    cutoff_us = to_us(cutoff, "cutoff")
    engine = make_async_engine(settings.effective_database_url)
    removed: dict[str, int] = {}
    try:
        async with engine.begin() as conn:
            names = await conn.run_sync(lambda s: set(inspect(s).get_table_names()))
            if inbox_table.name in names:
                result = await conn.execute(delete(inbox_table).where(
                    inbox_table.c.received_us < cutoff_us, inbox_table.c.state != "pending"))
                removed["wa_inbox"] = int(result.rowcount or 0)
            if outbound_table.name in names:
                result = await conn.execute(delete(outbound_table).where(outbound_table.c.created_us < cutoff_us))
                removed["wa_outbound"] = int(result.rowcount or 0)
    finally:
        await engine.dispose()
    rasa = rasa_stores(endpoints=endpoints)
    for name, why in rasa.problems.items():
        logger.warning("retention purge: %s not purged: %s", name, why)
    for source in rasa.sources:
        if not isinstance(source, RasaSqlTrackers):
            continue  # Redis trackers expire by Rasa's record_exp
        try:
            removed[source.name] = await source.purge(cutoff)
        finally:
            await source.close()
    return removed
