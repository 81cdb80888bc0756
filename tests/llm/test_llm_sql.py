"""The fallback's SQL on both backends: the client context with its consents, the catalog
index source, and the audit with masking and retention."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from salon.clock import ManualClock
from salon.integrations.catalog import SqlCatalog
from salon.llm.audit import AuditEntry, LlmAudit
from salon.llm.context import load_client_context
from salon.storage.db import make_async_engine
from tests.seeding import seed_maison

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)


async def test_context_catalog_and_audit(database_url: str) -> None:
    seed_maison(database_url)
    engine = make_async_engine(database_url)
    try:
        claire = await load_client_context(engine, wa_id="33600000001", user_id=None)
        assert (claire.client_id, claire.salutation, claire.advisor_first_name, claire.home_city) == (
            "C-001", "Ms Laurent", "Sophie", "Paris")
        assert claire.personalisation and claire.llm_consent and claire.sizes["ready_to_wear"] == "38"
        assert claire.purchases[0].product_id == "FR-001" and claire.purchases[0].purchased_on == date(2026, 5, 2)
        assert await load_client_context(engine, wa_id=None, user_id="FR.4820193746581029374") == claire
        margaux = await load_client_context(engine, wa_id="33600000004", user_id=None)
        assert margaux.known and margaux.personalisation and not margaux.llm_consent
        julien = await load_client_context(engine, wa_id="33600000005", user_id=None)
        # No personalisation consent: addressed by name, nothing of his profile is read.
        assert julien.known and not julien.personalisation
        assert (julien.sizes, julien.colours, julien.purchases) == ({}, (), ())
        stranger = await load_client_context(engine, wa_id="447700900999", user_id=None)
        assert not stranger.known and stranger.salutation is None
        products = await SqlCatalog(engine).all_products()
        assert len(products) == 40 and products[0].id == "FR-001"
        tote = next(p for p in products if p.id == "LG-001")
        assert tote.units_by_boutique() == {"london": 3, "milan": 3, "paris": 7}

        clock = ManualClock(T0)
        audit = LlmAudit(engine=engine, clock=clock, retention=timedelta(days=30))
        await audit.initialize()
        await audit.record(AuditEntry(
            "C-001", "llm", "stylist", "pass",
            prompt=[{"role": "user", "content": "call me on +33 6 12 34 56 78 or claire@example.com"}],
            response="Sophie will write to you.", retrieved_ids=["LG-003"], latency_ms=12, attempts=1,
            prompt_tokens=120, completion_tokens=9))
        [row] = await audit.rows("C-001")
        assert "+33" not in row["prompt"] and "[phone]" in row["prompt"] and "[email]" in row["prompt"]
        assert (row["retrieved_ids"], row["at"], row["prompt_tokens"]) == (["LG-003"], T0, 120)
        clock.advance(timedelta(days=31))
        assert await audit.purge() == 1 and await audit.rows() == []
    finally:
        await engine.dispose()
