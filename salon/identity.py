"""Who a client is to Salon: our business number and her ids (BSUID and/or phone number).

From 2026 Meta identifies users by a business-scoped user id (BSUID, ``user_id``) and may
omit the phone number (``wa_id``). A client's key is ``u:<user_id>`` when the BSUID is
known, else ``w:<wa_id>``; both ids are kept as aliases of the key her state was first
recorded under.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientRef", "conversation_id"]


@dataclass(frozen=True, slots=True)
class ClientRef:
    """Who a session belongs to: our business number and the client's ids."""

    phone_number_id: str
    user_id: str | None = None
    wa_id: str | None = None

    def __post_init__(self) -> None:
        if not self.phone_number_id:
            raise ValueError("phone_number_id is required")
        if not self.user_id and not self.wa_id:
            raise ValueError("a client needs a BSUID (user_id) or a wa_id")

    @property
    def key(self) -> str:
        """The key a new state is recorded under: the BSUID if known, else the wa_id."""
        return f"u:{self.user_id}" if self.user_id else f"w:{self.wa_id}"

    @property
    def aliases(self) -> tuple[str, ...]:
        """The ids this client is known by, BSUID first."""
        out: list[str] = []
        if self.user_id:
            out.append(f"u:{self.user_id}")
        if self.wa_id:
            out.append(f"w:{self.wa_id}")
        return tuple(out)


def conversation_id(client_key: str) -> str:
    """The assistant's conversation id for a client: the id her session was first recorded
    under (``u:FR.…`` → ``FR.…``, ``w:336…`` → ``336…``). It stays when she becomes known
    by another id too (a phone number shared, a new BSUID after an identity change,
    writing from a username): the ids are linked to that session, so the conversation,
    and what the assistant remembers of it, follow her.
    """
    return client_key.split(":", 1)[1]
