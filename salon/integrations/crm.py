"""The CRM port: who is writing, as the maison's client book knows them.

``Crm`` is what the actions depend on: one lookup by the ids WhatsApp gives us (the
business-scoped user id, BSUID, and/or the number) returning a :class:`ClientRecord`
(name and title, tier, language, sizes, preferences, assigned advisor, purchase history,
the latest consent per purpose), or ``None`` for someone the book does not know.

Two adapters:

- :class:`SqlCrm` reads the maison's seeded tables (``maison_clients``,
  ``maison_advisors``, ``maison_purchases``, ``maison_consents``) on SQLite or PostgreSQL.
- :class:`HttpCrm` asks a generic REST CRM over HTTP (``GET {base}/clients/lookup?wa_id=…
  &user_id=…`` with a bearer token; 200 with the JSON of :func:`record_to_mapping`, 404
  for an unknown client). It is the seam a hosted CRM plugs into.

How a commercial CRM plugs in: write a class with the same ``find`` coroutine that maps
its objects onto :class:`ClientRecord`. Salesforce: query ``Contact`` (or ``PersonAccount``)
by ``MobilePhone``/a custom BSUID field over the REST API, the owner ``User`` is the
advisor, ``Order``/``Asset`` lines are the purchases, and consent comes from
``ContactPointTypeConsent``. HubSpot: search ``contacts`` by ``phone``/a custom property,
``hubspot_owner_id`` is the advisor, deals or line items are the purchases, and
subscription statuses are the consents. Shopify: ``customers/search.json?query=phone:…``,
tags or metafields for tier, sizes and advisor, ``orders.json`` for the purchases and
``sms_marketing_consent``/``email_marketing_consent`` for consent. Or run a small service
that speaks :class:`HttpCrm`'s contract in front of any of them. Use async HTTP only
(``httpx.AsyncClient``): the adapters run inside the action server's event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import httpx
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.integrations.schema import (
    GENDERS,
    LANGUAGES,
    TIERS,
    advisors,
    clients,
    consents,
    products,
    purchases,
)

logger = logging.getLogger(__name__)

__all__ = [
    "Advisor",
    "ClientRecord",
    "Crm",
    "CrmUnavailable",
    "HttpCrm",
    "Purchase",
    "SqlCrm",
    "owner_condition",
    "record_from_mapping",
    "record_to_mapping",
]


class CrmUnavailable(Exception):
    """The CRM could not answer (down, timing out, or an answer that is not a client)."""


@dataclass(frozen=True, slots=True)
class Advisor:
    """A client's advisor: name, boutique, languages and e-mail."""

    id: str
    first_name: str
    last_name: str
    boutique_id: str
    languages: tuple[str, ...] = ()
    email: str | None = None
    gender: str | None = None
    """"f" or "m" for the words that agree with the advisor in French and Italian; None
    when the book does not say (the copy then names her without a gendered noun)."""


@dataclass(frozen=True, slots=True)
class Purchase:
    """A piece the client bought: which variant, when and where."""

    product_id: str
    product_name: str
    colour: str
    size: str
    purchased_on: date
    boutique_id: str


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """One client as the CRM holds them; nothing here is guessed."""

    id: str
    title: str
    first_name: str
    last_name: str
    language: str
    tier: str
    home_boutique_id: str
    time_zone: str
    advisor: Advisor | None = None
    sizes: Mapping[str, str] = field(default_factory=dict)
    preferences: Mapping[str, Any] = field(default_factory=dict)
    purchases: tuple[Purchase, ...] = ()
    consents: Mapping[str, bool] = field(default_factory=dict)
    wa_id: str | None = None
    user_id: str | None = None

    @property
    def is_vic(self) -> bool:
        return self.tier == "VIC"

    def consents_to(self, purpose: str) -> bool:
        return bool(self.consents.get(purpose, False))

    def size_for(self, category: str) -> str | None:
        """The remembered size for ``ready_to_wear``, ``shoes`` or ``ring``, if any."""
        value = self.sizes.get(category)
        return str(value) if value else None


class Crm(Protocol):
    """Where the actions find the client who writes (see the module's docstring)."""

    async def find(self, *, wa_id: str | None, user_id: str | None) -> ClientRecord | None:
        """The client writing from this BSUID and/or number, or None if unknown.

        Raises :class:`CrmUnavailable` when the CRM cannot answer.
        """


def owner_condition(wa_id: str | None, user_id: str | None) -> Any | None:
    """The SQL condition matching the client row of a BSUID and/or WhatsApp number
    (``wa_id`` digits, or the E.164 phone with "+"); None when neither is given.
    """
    conditions = []
    if wa_id:
        digits = wa_id.lstrip("+")
        conditions += [clients.c.wa_id == digits, clients.c.phone == f"+{digits}"]
    if user_id:
        conditions.append(clients.c.user_id == user_id)
    return or_(*conditions) if conditions else None


class SqlCrm:
    """The client book in the maison's SQL tables (the seeded demo maison by default)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def find(self, *, wa_id: str | None, user_id: str | None) -> ClientRecord | None:
        owner = owner_condition(wa_id, user_id)
        if owner is None:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(clients).where(owner).limit(1))).first()
            if row is None:
                return None
            advisor = None
            if row.advisor_id:
                found = (
                    await conn.execute(select(advisors).where(advisors.c.id == row.advisor_id))
                ).first()
                if found is not None:
                    advisor = Advisor(found.id, found.first_name, found.last_name,
                                      found.boutique_id, tuple(found.languages), found.email,
                                      found.gender if found.gender in GENDERS else None)
            bought = (
                await conn.execute(
                    select(purchases, products.c.name)
                    .join(products, products.c.id == purchases.c.product_id)
                    .where(purchases.c.client_id == row.id)
                    .order_by(purchases.c.purchased_on, purchases.c.id)
                )
            ).all()
            history = (
                await conn.execute(
                    select(consents.c.purpose, consents.c.granted)
                    .where(consents.c.client_id == row.id)
                    .order_by(consents.c.recorded_at, consents.c.id)
                )
            ).all()
        latest: dict[str, bool] = {}
        for purpose, granted in history:
            latest[purpose] = bool(granted)  # append-only: the last decision counts
        return ClientRecord(
            id=row.id, title=row.title, first_name=row.first_name, last_name=row.last_name,
            language=row.language, tier=row.tier, home_boutique_id=row.home_boutique_id,
            time_zone=row.time_zone, advisor=advisor,
            sizes={k: str(v) for k, v in (row.sizes or {}).items()},
            preferences=dict(row.preferences or {}),
            purchases=tuple(
                Purchase(p.product_id, p.name, p.colour, p.size, p.purchased_on, p.boutique_id)
                for p in bought
            ),
            consents=latest, wa_id=row.wa_id, user_id=row.user_id,
        )


def record_to_mapping(record: ClientRecord) -> dict[str, Any]:
    """The JSON body of the REST contract :class:`HttpCrm` reads."""
    advisor = record.advisor
    return {
        "id": record.id, "title": record.title, "first_name": record.first_name,
        "last_name": record.last_name, "language": record.language, "tier": record.tier,
        "home_boutique_id": record.home_boutique_id, "time_zone": record.time_zone,
        "advisor": None if advisor is None else {
            "id": advisor.id, "first_name": advisor.first_name, "last_name": advisor.last_name,
            "boutique_id": advisor.boutique_id, "languages": list(advisor.languages),
            "email": advisor.email, "gender": advisor.gender,
        },
        "sizes": dict(record.sizes), "preferences": dict(record.preferences),
        "purchases": [
            {"product_id": p.product_id, "product_name": p.product_name, "colour": p.colour,
             "size": p.size, "purchased_on": p.purchased_on.isoformat(),
             "boutique_id": p.boutique_id}
            for p in record.purchases
        ],
        "consents": dict(record.consents), "wa_id": record.wa_id, "user_id": record.user_id,
    }


def _gender(value: Any) -> str | None:
    if value is None or value in GENDERS:
        return value
    raise ValueError(f"advisor gender {value!r} is not one of {GENDERS} or null")


def _text(data: Mapping[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def record_from_mapping(data: Any) -> ClientRecord:
    """A :class:`ClientRecord` from the REST contract's JSON; ``ValueError`` naming the
    first bad field otherwise.
    """
    if not isinstance(data, Mapping):
        raise ValueError("a client must be a JSON object")
    language = _text(data, "language")
    tier = _text(data, "tier")
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {LANGUAGES}")
    if tier not in TIERS:
        raise ValueError(f"tier {tier!r} is not one of {TIERS}")
    raw_advisor = data.get("advisor")
    advisor = None
    if raw_advisor is not None:
        if not isinstance(raw_advisor, Mapping):
            raise ValueError("advisor must be an object or null")
        advisor = Advisor(
            str(_text(raw_advisor, "id")), str(_text(raw_advisor, "first_name")),
            str(_text(raw_advisor, "last_name")), str(_text(raw_advisor, "boutique_id")),
            tuple(str(x) for x in raw_advisor.get("languages") or ()),
            _text(raw_advisor, "email", optional=True),
            _gender(raw_advisor.get("gender")),
        )
    bought: list[Purchase] = []
    for item in _sequence(data, "purchases"):
        if not isinstance(item, Mapping):
            raise ValueError("each purchase must be an object")
        try:
            day = date.fromisoformat(str(item.get("purchased_on")))
        except ValueError as exc:
            raise ValueError(f"purchased_on {item.get('purchased_on')!r} is not a date") from exc
        bought.append(Purchase(
            str(_text(item, "product_id")), str(_text(item, "product_name")),
            str(_text(item, "colour")), str(_text(item, "size")), day,
            str(_text(item, "boutique_id")),
        ))
    sizes, preferences, granted = (data.get(k) or {} for k in ("sizes", "preferences", "consents"))
    for name, value in (("sizes", sizes), ("preferences", preferences), ("consents", granted)):
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be an object")
    return ClientRecord(
        id=str(_text(data, "id")), title=str(_text(data, "title")),
        first_name=str(_text(data, "first_name")), last_name=str(_text(data, "last_name")),
        language=str(language), tier=str(tier),
        home_boutique_id=str(_text(data, "home_boutique_id")),
        time_zone=str(_text(data, "time_zone")), advisor=advisor,
        sizes={str(k): str(v) for k, v in sizes.items()}, preferences=dict(preferences),
        purchases=tuple(bought), consents={str(k): bool(v) for k, v in granted.items()},
        wa_id=_text(data, "wa_id", optional=True), user_id=_text(data, "user_id", optional=True),
    )


def _sequence(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value


class HttpCrm:
    """A generic REST CRM: ``GET {base_url}/clients/lookup`` with ``wa_id`` and/or
    ``user_id`` query parameters and ``Authorization: Bearer {token}``; 200 and the JSON
    of :func:`record_to_mapping`, or 404 for a client it does not know.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"CRM base URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._own_client = client is None

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def find(self, *, wa_id: str | None, user_id: str | None) -> ClientRecord | None:
        params = {k: v for k, v in (("wa_id", (wa_id or "").lstrip("+")), ("user_id", user_id)) if v}
        if not params:
            return None
        url = f"{self.base_url}/clients/lookup"
        try:
            response = await self._client.get(url, params=params, headers=self._headers)
        except httpx.HTTPError as exc:
            raise CrmUnavailable(f"CRM {url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise CrmUnavailable(f"CRM {url} answered HTTP {response.status_code}")
        try:
            return record_from_mapping(response.json())
        except ValueError as exc:
            logger.error("CRM %s sent a client Salon cannot read: %s", url, exc)
            raise CrmUnavailable(f"CRM {url} sent an unreadable client: {exc}") from exc
