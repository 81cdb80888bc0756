"""When Meta changes a client's ids, what Salon keeps about her follows her.

A client who changes her phone number gets a new BSUID too (``user_changed_number``); a
BSUID can also change alone (``user_changed_user_id``). Meta says so once, in a ``system``
message. A client who writes from a username alone may share her number when asked
(``contact_shared``): it joins her ids the same way. From then on her messages, and the statuses of what we send her, carry the new
ids: anything still keyed by the old ones would be orphaned. :func:`follow_identity`
moves her, before the webhook is acknowledged:

- her **session** (:meth:`salon.window.state.SessionStore.follow_identity`): the new ids are
  linked to it, so her window, parked content and conversation id (hence Rasa's
  tracker, and what the assistant recalls) stay hers; the old ids stay linked too;
- then, in **one transaction** on Salon's database:

  - her **consent**: every decision of the consent ledger recorded under an old id is
    recorded under the new one too, with the same decision id, time, source and text
    (a STOP given under the old id holds under the new one; the evidence is not
    rewritten), and likewise her marketing preferences (``wa_preferences``);
  - the **client book**: the record that named her by an old id names her by the new one
    (a new number also becomes her ``phone``); a number she shared from her username
    links her to the record that has it;
  - what is **still to come**: queued outbound requests, open restock requests and open
    handoffs address her by her new ids.

Each step is idempotent, so a retried webhook (after a failure answered 503) applies
the change again without duplicating anything. With an external CRM
(``SALON_CRM_URL``) there is no local client book: that step is skipped and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from salon.identity import ClientRef
from salon.window.state import SessionStore

logger = logging.getLogger(__name__)

__all__ = ["IdentityMove", "follow_identity"]


@dataclass(frozen=True, slots=True)
class IdentityMove:
    """What followed the client: rows changed (or copied) per store."""

    session: bool
    rows: Mapping[str, int]

    def __str__(self) -> str:
        moved = ", ".join(f"{name} {count}" for name, count in self.rows.items() if count)
        return f"session {'linked' if self.session else 'none'}; {moved or 'no rows'}"


def _ids_condition(table: Table, ref: ClientRef) -> Any:
    conditions = []
    if ref.wa_id:
        conditions.append(table.c.wa_id == ref.wa_id)
    if ref.user_id:
        conditions.append(table.c.user_id == ref.user_id)
    return or_(*conditions)


def _new_ids(before: ClientRef, after: ClientRef) -> dict[str, str]:
    """The columns to set: only ids that changed (an id Meta did not send stays)."""
    values = {}
    if after.wa_id and after.wa_id != before.wa_id:
        values["wa_id"] = after.wa_id
    if after.user_id and after.user_id != before.user_id:
        values["user_id"] = after.user_id
    return values


async def _existing(conn: AsyncConnection, names: list[str]) -> set[str]:
    return set(await conn.run_sync(lambda sync: [n for n in names if inspect(sync).has_table(n)]))


async def follow_identity(engine: AsyncEngine, sessions: SessionStore, before: ClientRef,
                          after: ClientRef) -> IdentityMove:
    """Move what Salon keeps about the client from ``before``'s ids to ``after``'s."""
    from salon.advisors.handoff import handoffs_table
    from salon.consent.book import preferences_table
    from salon.consent.ledger import ledger_table
    from salon.integrations.schema import clients as clients_table
    from salon.outbound.queue import QUEUED, requests_table, shard_of
    from salon.outbound.restock import WAITING, open_key, restock_table

    state = await sessions.follow_identity(before, after)
    values = _new_ids(before, after)
    rows: dict[str, int] = {}
    tables = [ledger_table, preferences_table, clients_table, requests_table, restock_table,
              handoffs_table]
    async with engine.begin() as conn:
        present = await _existing(conn, [t.name for t in tables])
        if ledger_table.name in present:
            rows["consent_ledger"] = await _copy_ledger(conn, ledger_table, before, after)
        if preferences_table.name in present:
            rows["wa_preferences"] = await _copy_preferences(conn, preferences_table, before, after)
        if not values:
            return IdentityMove(state is not None, rows)
        if clients_table.name in present:
            rows["client_book"] = await _move_book_record(conn, clients_table, before, after, values)
        else:
            logger.warning("identity change: no local client book; the CRM keeps the old ids")
        if requests_table.name in present:
            rows["outbound_requests"] = (await conn.execute(
                update(requests_table)
                .where(and_(_ids_condition(requests_table, before), requests_table.c.state == QUEUED,
                            requests_table.c.phone_number_id == before.phone_number_id))
                .values(**values, shard=shard_of(after))
            )).rowcount or 0
        if restock_table.name in present:
            rows["restock_requests"] = await _move_restock(conn, restock_table, WAITING, open_key,
                                                           before, after, values)
        if handoffs_table.name in present:
            rows["salon_handoffs"] = (await conn.execute(
                update(handoffs_table)
                .where(and_(_ids_condition(handoffs_table, before), handoffs_table.c.status == "open"))
                .values(**values)
            )).rowcount or 0
    return IdentityMove(state is not None, rows)


async def _move_book_record(conn: AsyncConnection, table: Table, before: ClientRef,
                            after: ClientRef, values: dict[str, str]) -> int:
    """The client book's record names her by her new ids. A phone learnt for a client
    known by her BSUID alone may be the one of a record that does not have that BSUID
    yet: that record is hers, and gets it. Two records (one by BSUID, one by phone) are
    left as they are, and logged: merging clients is the maison's call.
    """
    book = dict(values)
    if "wa_id" in book:
        book["phone"] = f"+{book['wa_id']}"
    if before.wa_id is None and after.wa_id and after.user_id:
        by_phone = or_(table.c.wa_id == after.wa_id, table.c.phone == f"+{after.wa_id}")
        by_bsuid = table.c.user_id == after.user_id
        found = (await conn.execute(select(table.c.id, table.c.user_id).where(or_(by_phone, by_bsuid)))).all()
        if len({row.id for row in found}) > 1:
            logger.warning("identity change: client book records %s name the same client; "
                           "not merged", sorted(row.id for row in found))
            return 0
        if found and found[0].user_id != after.user_id:
            return (await conn.execute(update(table).where(table.c.id == found[0].id)
                                       .values(user_id=after.user_id))).rowcount or 0
    return (await conn.execute(
        update(table).where(_ids_condition(table, before)).values(**book))).rowcount or 0


async def _copy_ledger(conn: AsyncConnection, table: Table, before: ClientRef, after: ClientRef) -> int:
    """Each decision recorded under an old id, recorded under each new id too (once)."""
    new_subjects = [a for a in after.aliases if a not in before.aliases]
    if not new_subjects:
        return 0
    old = (await conn.execute(
        select(table).where(table.c.subject.in_(before.aliases)).order_by(table.c.recorded_us)
    )).mappings().all()
    have = {(r.subject, r.decision) for r in (await conn.execute(
        select(table.c.subject, table.c.decision).where(table.c.subject.in_(new_subjects))
    ))}
    copies, seen = [], set()
    for row in old:
        for subject in new_subjects:
            if (subject, row["decision"]) in have or (subject, row["decision"]) in seen:
                continue
            seen.add((subject, row["decision"]))
            copies.append({**{k: v for k, v in row.items() if k != "id"}, "subject": subject})
    if copies:
        await conn.execute(table.insert(), copies)
    return len(copies)


async def _copy_preferences(conn: AsyncConnection, table: Table, before: ClientRef,
                            after: ClientRef) -> int:
    """Her marketing stops and resumes, under each new id too (once)."""
    new_ids = [a for a in after.aliases if a not in before.aliases]
    if not new_ids:
        return 0
    old = (await conn.execute(select(table).where(and_(
        table.c.phone_number_id == before.phone_number_id, table.c.client_id.in_(before.aliases)))
    )).mappings().all()
    have = {(r.client_id, r.category, r.at_us, r.value) for r in (await conn.execute(
        select(table.c.client_id, table.c.category, table.c.at_us, table.c.value).where(and_(
            table.c.phone_number_id == before.phone_number_id, table.c.client_id.in_(new_ids))))
    )}
    copies = []
    for row in old:
        for client_id in new_ids:
            marker = (client_id, row["category"], row["at_us"], row["value"])
            if marker not in have:
                have.add(marker)
                copies.append({**{k: v for k, v in row.items() if k != "id"}, "client_id": client_id})
    if copies:
        await conn.execute(table.insert(), copies)
    return len(copies)


async def _move_restock(conn: AsyncConnection, table: Table, waiting: str, open_key: Any,
                        before: ClientRef, after: ClientRef, values: dict[str, str]) -> int:
    """Open restock wishes: new ids, and the key that keeps one open wish per piece."""
    rows = (await conn.execute(select(table).where(and_(
        _ids_condition(table, before), table.c.state == waiting,
        table.c.phone_number_id == before.phone_number_id)))).mappings().all()
    for row in rows:
        client = ClientRef(row["phone_number_id"], values.get("user_id", row["user_id"]),
                           values.get("wa_id", row["wa_id"]))
        key = open_key(client, row["product_id"], row["colour"], row["size"], row["boutique_id"])
        await conn.execute(update(table).where(table.c.id == row["id"])
                           .values(**values, open_key=key))
    return len(rows)
