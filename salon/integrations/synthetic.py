"""Synthetic clients for load tests and benchmarks: many reachable clients with a utility
opt-in in the maison's book (``S-0000001`` …, numbers ``3377xxxxxxxx``), added to a
seeded database. Never part of the demo maison's data.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import insert

from salon.integrations.schema import clients, consents
from salon.storage.db import make_sync_engine

__all__ = ["add_synthetic_clients", "synthetic_wa_id"]


def synthetic_wa_id(index: int) -> str:
    """The WhatsApp id of synthetic client number ``index`` (``3377`` and eight digits)."""
    return f"3377{index:08d}"


def add_synthetic_clients(url: str, count: int, *, start: int = 0, language: str = "en",
                          time_zone: str = "Europe/Paris") -> list[str]:
    """Add ``count`` clients with a utility opt-in to a seeded database; their wa_ids."""
    engine = make_sync_engine(url)
    at = datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc)
    wa_ids = [synthetic_wa_id(i) for i in range(start, start + count)]
    rows = [{"id": f"S-{start + i:07d}", "title": "Ms", "first_name": f"Client{start + i}",
             "last_name": "Test", "phone": f"+{wa}", "wa_id": wa, "language": language, "tier": "Gold",
             "home_boutique_id": "paris", "time_zone": time_zone, "sizes": {}, "preferences": {}}
            for i, wa in enumerate(wa_ids)]
    grants = [{"client_id": row["id"], "purpose": "utility", "granted": True, "source": "boutique_form",
               "recorded_at": at, "text_shown": "WhatsApp updates about my orders and appointments"}
              for row in rows]
    try:
        with engine.begin() as conn:
            for chunk in range(0, len(rows), 1000):
                conn.execute(insert(clients), rows[chunk:chunk + 1000])
                conn.execute(insert(consents), grants[chunk:chunk + 1000])
    finally:
        engine.dispose()
    return wa_ids
