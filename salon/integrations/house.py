"""The house's own rules, as the maison wrote them in ``maison.yml``: for now its returns
policy (the days a piece may come back, in what state, what never can, where, and how
long a refund takes), read from the seeded ``maison_house`` row.

The assistant states these rules only as written here: a maison without a returns policy
in its data gets an answer that hands the question to a client advisor, never a policy
of the assistant's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.integrations.schema import house

__all__ = ["HouseRules", "ReturnsPolicy", "ReturnsPolicyError", "SqlHouseRules"]


class ReturnsPolicyError(ValueError):
    """A stored returns policy that does not have the shape :class:`ReturnsPolicy` needs."""


@dataclass(frozen=True, slots=True)
class ReturnsPolicy:
    """What may come back and how. Texts are by language (``en`` at least)."""

    days: int
    """Days a piece may be returned once it has reached the client (its delivery, or its
    purchase in a boutique)."""
    refund_days: int
    """Days the refund takes, to the original means of payment, once the piece is back."""
    condition: Mapping[str, str]
    """The state it must come back in ("unworn, with its labels and in its packaging")."""
    excluded: Mapping[str, str]
    """A sentence: what can never be returned."""
    where: Mapping[str, str]
    """Where it may be returned ("in any of our boutiques, or collected …")."""

    def as_json(self) -> dict[str, Any]:
        return {key: dict(value) if isinstance(value, Mapping) else value
                for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, value: Any) -> ReturnsPolicy:
        """The policy as stored; :class:`ReturnsPolicyError` when a field is missing or wrong."""
        if not isinstance(value, Mapping):
            raise ReturnsPolicyError(f"a returns policy is a mapping, not {type(value).__name__}")
        fields: dict[str, Any] = {}
        for key in ("days", "refund_days"):
            number = value.get(key)
            if not isinstance(number, int) or isinstance(number, bool) or number < 1:
                raise ReturnsPolicyError(f"returns policy: {key!r} must be a whole number of days, got {number!r}")
            fields[key] = number
        for key in ("condition", "excluded", "where"):
            texts = value.get(key)
            if not isinstance(texts, Mapping) or not isinstance(texts.get("en"), str) \
                    or not all(isinstance(text, str) and text.strip() for text in texts.values()):
                raise ReturnsPolicyError(f"returns policy: {key!r} needs a text by language, 'en' at least")
            fields[key] = dict(texts)
        return cls(**fields)


class HouseRules(Protocol):
    """The house's rules, as its data states them."""

    async def returns_policy(self) -> ReturnsPolicy | None:
        """The returns policy; None when the maison's data states none."""


class SqlHouseRules:
    """:class:`HouseRules` read from the seeded ``maison_house`` row."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def returns_policy(self) -> ReturnsPolicy | None:
        async with self.engine.connect() as conn:
            stored = (await conn.execute(select(house.c.returns).limit(1))).scalar_one_or_none()
        return None if stored is None else ReturnsPolicy.from_json(stored)
