"""Settings read from the environment, with embedded defaults that need no server.

- ``DATABASE_URL``: SQLAlchemy URL for Salon's own tables (sessions, outbound queue,
  consent, audit, the maison's CRM/catalog/orders/bookings). Default: a SQLite file
  under ``var/``. ``postgresql://...`` selects PostgreSQL.
- ``REDIS_URL``: when set, session state and dedup live in Redis.
- ``SALON_VAR_DIR``: where embedded state files go (default ``<project>/var``).
- ``SALON_DATA_DIR``: where the maison's seed files are (default ``<project>/data/maison``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment-driven configuration."""

    var_dir: Path = field(default_factory=lambda: _env_path("SALON_VAR_DIR", PROJECT_ROOT / "var"))
    data_dir: Path = field(
        default_factory=lambda: _env_path("SALON_DATA_DIR", PROJECT_ROOT / "data" / "maison")
    )
    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", ""))
    redis_url: str | None = field(default_factory=lambda: os.environ.get("REDIS_URL") or None)

    @property
    def effective_database_url(self) -> str:
        """``DATABASE_URL`` if set, else the embedded SQLite file under ``var/``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'salon.db'}"


def load_settings() -> Settings:
    return Settings()
