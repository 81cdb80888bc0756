"""The maison's systems of record: CRM, catalog (PIM), orders, events and bookings.

``schema`` holds the SQL tables of the default adapters (SQLite or PostgreSQL);
``seed`` loads the demo maison (Maison Solenne) from ``data/maison/*.yml`` into them.
"""

from __future__ import annotations

from salon.integrations.schema import AwareDateTime, maison_metadata

__all__ = ["AwareDateTime", "maison_metadata"]
