"""The salt that keys what Salon keeps about people it cannot name (an HMAC of their ids):
``SALON_PRIVACY_SALT``, else one made once and kept in ``var/privacy.salt``.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from salon.config import Settings

__all__ = ["existing_privacy_salt", "privacy_salt"]


def existing_privacy_salt(settings: Settings | None = None) -> bytes | None:
    """``SALON_PRIVACY_SALT``, else the salt in ``var/privacy.salt`` if one was made; None
    before any (nothing was ever hashed with it).
    """
    value = os.environ.get("SALON_PRIVACY_SALT")
    if value:
        return value.encode()
    path = Path((settings or Settings()).var_dir) / "privacy.salt"
    try:
        saved = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return saved.encode() if saved else None


def privacy_salt(settings: Settings) -> bytes:
    """``SALON_PRIVACY_SALT``, else a random salt kept in ``var/privacy.salt`` (created once;
    two processes creating it at the same time agree on the first one written).
    """
    found = existing_privacy_salt(settings)
    if found is not None:
        return found
    path = Path(settings.var_dir) / "privacy.salt"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    for _ in range(100):  # another process may be writing it this very moment
        found = existing_privacy_salt(settings)
        if found is not None:
            return found
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: remove it or set SALON_PRIVACY_SALT")
