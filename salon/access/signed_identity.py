"""Who is writing, as the action server may believe it: ids sealed by the WhatsApp channel.

A Rasa turn carries metadata from whichever channel received it, and anyone who can reach
a channel (Rasa's REST channel, a raw call to the action server) chooses the metadata and
the conversation id. So the actions take a client's ids from nothing but a **seal**: the
WhatsApp channel, having checked Meta's signature on the webhook, adds to each turn's
metadata an HMAC-SHA256, keyed with ``SALON_IDENTITY_KEY`` (shared by the Rasa server and
the action server, never by anyone else), of the conversation id and the client's phone
number and BSUID. The action server checks it for the conversation it is asked about; a
turn without a valid seal is nobody in particular: the assistant answers it, but reads no
client's book, orders or appointments for it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

logger = logging.getLogger(__name__)

__all__ = ["ENV_KEY", "SEAL_KEY", "identity_key", "seal", "sealed_ids", "unseal"]

ENV_KEY: Final = "SALON_IDENTITY_KEY"
#: Where the seal travels in a turn's metadata.
SEAL_KEY: Final = "identity_seal"
_VERSION: Final = "v1"


def identity_key(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The shared key, or None when it is not configured (then no identity is trusted)."""
    value = (os.environ if environ is None else environ).get(ENV_KEY, "").strip()
    return value.encode() if value else None


def _mac(key: bytes, conversation: str, wa_id: str | None, user_id: str | None) -> str:
    message = "\n".join((_VERSION, conversation, wa_id or "", user_id or "")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal(key: bytes, conversation: str, wa_id: str | None, user_id: str | None) -> str:
    """The seal of ``conversation`` belonging to the client with these ids."""
    return f"{_VERSION}.{_mac(key, conversation, wa_id, user_id)}"


def unseal(key: bytes | None, conversation: str,
           metadata: Mapping[str, Any] | None) -> tuple[str | None, str | None] | None:
    """(wa_id, user_id) from a turn's metadata when its seal is valid for
    ``conversation`` (compared in constant time), else None.
    """
    if key is None or not isinstance(metadata, Mapping):
        return None
    given = metadata.get(SEAL_KEY)
    wa_id, user_id = metadata.get("wa_id") or None, metadata.get("user_id") or None
    if not isinstance(given, str) or not (wa_id or user_id):
        return None
    if not all(isinstance(v, str) for v in (wa_id, user_id) if v is not None):
        return None
    expected = seal(key, conversation, wa_id, user_id)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return wa_id, user_id


def sealed_ids(key: bytes | None, conversation: str,
               metadatas: Iterable[Mapping[str, Any] | None]) -> tuple[str | None, str | None]:
    """The ids of the first validly sealed metadata among ``metadatas`` (the latest turn
    first, then earlier ones: a turn the assistant starts itself carries no metadata, the
    client's earlier WhatsApp turns do); (None, None) when there is none.
    """
    for metadata in metadatas:
        found = unseal(key, conversation, metadata)
        if found is not None:
            return found
    return None, None
