"""The inbox claim (the webhook's deduplication) on SQLite and PostgreSQL: batches larger
than one statement, duplicates inside a batch, and concurrent claims of the same wamids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest

from salon.webhook.inbox import CLAIM_CHUNK, Inbox, InboxItem

AT = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def _item(wamid: str, text: str = "Hello") -> InboxItem:
    return InboxItem(wamid=wamid, phone_number_id="100", sender_id="33600000001", sent_at=AT,
                     text=text, metadata={"wa_id": "33600000001", "note": "é ✓"}, state="pending",
                     attempts=0)


@pytest.fixture()
async def records(database_url: str) -> AsyncIterator[Inbox]:
    store = Inbox(database_url)
    await store.initialize()
    try:
        yield store
    finally:
        await store.close()


async def test_a_batch_over_several_statements_claims_each_new_message_once(records: Inbox) -> None:
    assert await records.claim_inbound([_item("wamid.seen.3"), _item("wamid.seen.70")], AT) == [True, True]
    size = 2 * CLAIM_CHUNK + 30
    batch = [_item(f"wamid.seen.{n}", text=f"message {n}") for n in range(size)]
    batch.insert(10, _item("wamid.seen.5"))  # twice in the batch: its first item claims it
    claimed = await records.claim_inbound(batch, AT)
    expected = [item.wamid not in ("wamid.seen.3", "wamid.seen.70") for item in batch]
    expected[10] = False
    assert claimed == expected
    pending = await records.pending_inbound(limit=1000)
    assert sorted(item.wamid for item in pending) == sorted(f"wamid.seen.{n}" for n in range(size))
    stored = {item.wamid: item for item in pending}
    assert stored["wamid.seen.5"].text == "message 5"
    assert stored["wamid.seen.120"].text == "message 120"
    assert stored["wamid.seen.120"].metadata == {"wa_id": "33600000001", "note": "é ✓"}
    assert await records.claim_inbound(batch[:3], AT) == [False, False, False]


async def test_concurrent_claims_of_the_same_messages_have_one_winner_each(records: Inbox) -> None:
    wamids = [f"wamid.race.{n}" for n in range(3 * CLAIM_CHUNK)]
    batches = [[_item(w) for w in wamids[k * CLAIM_CHUNK // 2:]] for k in range(4)]
    results = await asyncio.gather(*(records.claim_inbound(batch, AT) for batch in batches))
    wins: dict[str, int] = {}
    for batch, claimed in zip(batches, results, strict=True):
        for item, won in zip(batch, claimed, strict=True):
            wins[item.wamid] = wins.get(item.wamid, 0) + won
    assert wins == {w: 1 for w in wamids}
