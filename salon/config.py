"""Settings read from the environment, with embedded defaults that need no server.

- ``DATABASE_URL``: SQLAlchemy URL for Salon's own tables (sessions, outbound queue,
  consent, audit, the maison's CRM/catalog/orders/bookings). Default: a SQLite file
  under ``var/``. ``postgresql://...`` selects PostgreSQL.
- ``REDIS_URL``: when set, the window state (session state, aliases, parked messages)
  lives in Redis; the inbox that deduplicates webhooks stays in SQL.
- ``SALON_VAR_DIR``: where embedded state files go (default ``<project>/var``).
- ``SALON_DATA_DIR``: where the maison's seed files are (default ``<project>/data/maison``).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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
    """The settings as the environment gives them now."""
    return Settings()


def is_loopback_host(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``…: only this machine can reach it."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (the emulator, a local stand-in)."""
    return is_loopback_host(urlsplit(url).hostname or "")
