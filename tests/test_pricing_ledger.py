"""Before a send the guard estimates its charge and keeps it with the outbound record;
after it, Meta's ``pricing`` object (from the emulator's status webhooks, or real-shaped
ones) fills the ledger, which flags every disagreement with the estimate."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from connectors.whatsapp import WhatsAppOutput
from salon.clock import ManualClock
from salon.config import Settings
from salon.guard.sent import outbound_table
from salon.pricing.charge import default_card
from salon.pricing.ledger import Ledger, ledger_table
from tests.test_whatsapp_sender import CLAIRE, T0, answer, say, settle, wired
from tests.whatsapp_support import envelope, messages_change


async def _ledger_rows(ch: Any) -> dict[str, Any]:
    engine = ch.runtime.service.sent.engine
    async with engine.connect() as conn:
        return {row.wamid: row for row in (await conn.execute(select(ledger_table))).all()}


async def _estimate(ch: Any, wamid: str) -> Any:
    async with ch.runtime.service.sent.engine.connect() as conn:
        return (await conn.execute(select(outbound_table).where(outbound_table.c.wamid == wamid))).one()


async def test_a_reply_in_the_window_is_estimated_billed_and_reconciled(settings: Settings) -> None:
    async with wired(settings, answer("Good day, Claire. How may I help?")) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        [sent] = await settle(ch, admin, CLAIRE, 1)
        estimate = await _estimate(ch, sent["wamid"])
        # Since 2026-10-01 a reply inside the window is billed at France's utility rate.
        assert (estimate.market, estimate.price_category, estimate.price_type, estimate.cost_micros,
                estimate.currency) == ("FR", "service", "regular", 30_000, "USD")
        rows = await _ledger_rows(ch)
        row = rows[sent["wamid"]]
        assert (row.category, row.pricing_type, row.billable, row.delivered, row.cost_micros, row.mismatch) == (
            "service", "regular", 1, 1, 30_000, None)
        ledger = Ledger(engine=ch.runtime.service.sent.engine, card=default_card())
        billed = await ledger.billed(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
        assert (billed.priced, billed.billable_delivered, billed.cost_micros) == (1, 1, 30_000)
        assert await ledger.mismatches() == []


async def test_before_october_2026_the_same_reply_was_free(settings: Settings) -> None:
    clock = ManualClock(datetime(2026, 9, 1, 9, 0, tzinfo=timezone.utc))
    async with wired(settings, answer("Good day."), emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Hello", "name": "Claire Laurent"})
        [sent] = await settle(ch, admin, CLAIRE, 1)
        estimate = await _estimate(ch, sent["wamid"])
        assert (estimate.price_type, estimate.cost_micros) == ("free_customer_service", 0)
        row = (await _ledger_rows(ch))[sent["wamid"]]
        assert (row.pricing_type, row.billable, row.cost_micros, row.mismatch) == (
            "free_customer_service", 0, 0, None)


async def test_inside_a_free_entry_point_both_sides_say_free(settings: Settings) -> None:
    async with wired(settings, answer("Welcome to Maison Solenne.")) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "I saw your advert", "name": "Claire Laurent",
                            "referral": True})
        [sent] = await settle(ch, admin, CLAIRE, 1)
        estimate = await _estimate(ch, sent["wamid"])
        assert (estimate.price_type, estimate.cost_micros) == ("free_entry_point", 0)
        row = (await _ledger_rows(ch))[sent["wamid"]]
        assert (row.pricing_type, row.billable, row.mismatch) == ("free_entry_point", 0, None)


async def test_a_template_meta_bills_as_marketing_is_flagged(settings: Settings) -> None:
    clock = ManualClock(T0)
    async with wired(settings, emulator_clock=clock) as (ch, emu, admin):
        await say(admin, **{"from": CLAIRE, "text": "Where is my parcel?", "name": "Claire Laurent"})
        await ch.settle()
        clock.advance(timedelta(hours=30))
        await WhatsAppOutput(ch.runtime).send_response(CLAIRE, {
            "text": "Your order SOL-482913 has left the atelier.",
            "metadata": {"purpose": "order_shipped", "wa_params": {"order_ref": "SOL-482913"}},
        })
        [sent] = await settle(ch, admin, CLAIRE, 1)
        estimate = await _estimate(ch, sent["wamid"])
        assert (estimate.price_category, estimate.price_type, estimate.cost_micros) == ("utility", "regular", 30_000)
        assert (await _ledger_rows(ch))[sent["wamid"]].mismatch is None

        # Meta recategorised the template: its next status bills it as marketing.
        ts = int(clock.now().timestamp()) + 5
        recategorised = {"id": sent["wamid"], "status": "read", "timestamp": str(ts), "recipient_id": CLAIRE,
                         "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular",
                                     "category": "marketing"}}
        status, _ = await ch.post(envelope(messages_change([], statuses=[recategorised])))
        assert status == 200
        row = (await _ledger_rows(ch))[sent["wamid"]]
        assert row.mismatch == "category utility→marketing" and row.category == "marketing"
        assert row.cost_micros == 79_400  # France's marketing rate, the card of the first pricing
        ledger = Ledger(engine=ch.runtime.service.sent.engine, card=default_card())
        [mismatch] = await ledger.mismatches()
        assert mismatch.wamid == sent["wamid"] and mismatch.reason == "category utility→marketing"


async def test_pricing_that_overtakes_the_send_record_is_reconciled_when_asked(settings: Settings) -> None:
    async with wired(settings) as (ch, emu, admin):
        ts = int(T0.timestamp())
        early = {"id": "wamid.EARLY1", "status": "sent", "timestamp": str(ts), "recipient_id": CLAIRE,
                 "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}}
        status, _ = await ch.post(envelope(messages_change([], statuses=[early])))
        assert status == 200
        row = (await _ledger_rows(ch))["wamid.EARLY1"]
        assert row.mismatch is None and row.market == "FR" and row.delivered == 0  # nothing to compare yet
        # The send's own record arrives later, estimated as a utility template.
        from salon.pricing.charge import charge_for

        charge = charge_for(template_category="UTILITY", window=None, market="FR", at=T0, card=default_card())
        await ch.runtime.service.sent.record_outbound(
            phone_number_id=ch.runtime.config.phone_number_id, recipient=CLAIRE, kind="template",
            status="accepted", at=T0, wamid="wamid.EARLY1", purpose="order_update", charge=charge)
        ledger = Ledger(engine=ch.runtime.service.sent.engine, card=default_card())
        [mismatch] = await ledger.mismatches()
        assert mismatch.reason == "category utility→marketing"
        # A delivered status without pricing marks it delivered: now it is on the bill.
        delivered = {"id": "wamid.EARLY1", "status": "delivered", "timestamp": str(ts + 2), "recipient_id": CLAIRE}
        await ch.post(envelope(messages_change([], statuses=[delivered])))
        billed = await ledger.billed(T0 - timedelta(minutes=1), T0 + timedelta(minutes=1))
        assert (billed.billable_delivered, billed.cost_micros) == (1, 79_400)


async def test_metas_own_status_payloads_fill_the_ledger(settings: Settings) -> None:
    """Meta's published examples, as they are but addressed to our number: a PMP marketing
    status is priced at the recipient's market (+1 650: North America); a legacy
    conversation-based one (CBP, ``business_initiated``) is kept but has no price on a
    per-message card."""
    from tests.test_errors import shared_fixture

    async with wired(settings) as (ch, emu, admin):
        pnid = ch.runtime.config.phone_number_id
        for name in ("20", "09"):
            payload = shared_fixture(name)
            for entry in payload["entry"]:
                for change in entry["changes"]:
                    change["value"]["metadata"]["phone_number_id"] = pnid
            status, _ = await ch.post(payload)
            assert status == 200
        rows = await _ledger_rows(ch)
        pmp = rows["wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="]
        assert (pmp.market, pmp.category, pmp.pricing_type, pmp.billable, pmp.pricing_model, pmp.delivered) == (
            "NA", "marketing", "regular", 1, "PMP", 0)
        # 2025-06-15 is before the first card: its North American marketing rate.
        assert pmp.cost_micros == 25_000
        cbp = rows["wamid.nBgN6TUyN2k5NzAzM5kzNhUCABI8FDNFQjAxQkE5REI4NEUzQ5Y5QTNgAA=="]
        assert (cbp.category, cbp.pricing_model, cbp.billable, cbp.delivered, cbp.cost_micros) == (
            "business_initiated", "CBP", 1, 1, 0)
