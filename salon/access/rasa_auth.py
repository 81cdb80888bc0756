"""How Salon's processes call Rasa's HTTP API: a JSON Web Token in a header, never a
secret in a URL.

``rasa run`` is started with ``--jwt-secret $SALON_RASA_JWT_SECRET --jwt-method HS256``
(no ``--auth-token``: Rasa reads that one from the query string, where proxies, access
logs and error messages copy it). Each caller signs a short-lived token with the shared
secret and sends it as ``Authorization: Bearer …``; Rasa checks it with sanic-jwt and
lets the ``admin`` role reach every conversation.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final

import jwt

__all__ = ["ENV_SECRET", "TOKEN_LIFETIME", "rasa_headers", "rasa_jwt"]

ENV_SECRET: Final = "SALON_RASA_JWT_SECRET"
TOKEN_LIFETIME: Final = timedelta(minutes=10)


def rasa_jwt(secret: str, *, now: datetime | None = None, username: str = "salon",
             lifetime: timedelta = TOKEN_LIFETIME) -> str:
    """A token Rasa accepts for every conversation (role ``admin``), valid ``lifetime``.
    ``now`` is the real time (the token's expiry is checked against Rasa's own clock).
    """
    if not secret:
        raise ValueError(f"{ENV_SECRET} is empty")
    issued = now or datetime.now(timezone.utc)
    payload = {"user": {"username": username, "role": "admin"},
               "iat": int(issued.timestamp()), "exp": int((issued + lifetime).timestamp())}
    return jwt.encode(payload, secret, algorithm="HS256")


def rasa_headers(secret: str, *, now: datetime | None = None) -> dict[str, str]:
    """The ``Authorization`` header of a call to Rasa's HTTP API."""
    return {"Authorization": f"Bearer {rasa_jwt(secret, now=now)}"}
