"""Which store holds the window's state: Redis when configured, else SQL."""

from __future__ import annotations

from salon.clock import Clock
from salon.config import Settings
from salon.window.redis_store import RedisSessionStore
from salon.window.sql_store import SqlSessionStore
from salon.window.state import SessionStore

__all__ = ["session_store_from_settings"]


def session_store_from_settings(
    settings: Settings, *, clock: Clock | None = None, prefix: str = "salon:session"
) -> SessionStore:
    """Redis when ``REDIS_URL`` is set, else SQL on ``effective_database_url``.

    Call ``await store.initialize()`` (or use ``async with``) before use.
    """
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url, prefix=prefix, clock=clock)
    return SqlSessionStore(settings.effective_database_url, clock=clock)
