"""The rate card as data, the market of a recipient and the charge of one message: the
rules of Meta's per-message pricing, before and after 2026-10-01."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from salon.guard.decision import Consent, Content, ParkAndNudge, SendFreeForm, SendTemplate, decide
from salon.pricing.card import DEFAULT_DIRECTORY, RateCard, RateCardError, to_micros
from salon.pricing.charge import (
    FREE_CUSTOMER_SERVICE,
    FREE_ENTRY_POINT,
    REGULAR,
    billing_category,
    charge_for,
    format_money,
)
from salon.pricing.ledger import mismatch_reason, read_pricing
from salon.pricing.markets import market_of, region_of
from salon.templates.registry import TemplateRegistry
from salon.window.rules import WindowState, window_state
from salon.window.state import SessionState

UTC = timezone.utc
CARD = RateCard.load()
BEFORE = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
AFTER = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def open_window(now: datetime) -> WindowState:
    return window_state(now - timedelta(hours=1), now)


# --------------------------------------------------------------------------- the card


def test_every_market_prices_every_category_on_every_card() -> None:
    assert [c.effective_from.isoformat() for c in CARD.cards] == ["2025-07-01", "2026-01-01", "2026-10-01"]
    for card in CARD.cards:
        assert card.currency == "USD" and card.source and card.illustrative
        for market in CARD.markets:
            for category in ("marketing", "utility", "authentication", "authentication_international", "service"):
                assert card.rate(market, category) >= 0


def test_rates_follow_their_effective_dates_at_midnight_in_the_accounts_zone() -> None:
    # France's marketing rate changed on 2026-01-01, at midnight in Paris (23:00 UTC the eve).
    assert CARD.rate("FR", "marketing", datetime(2025, 12, 31, 22, 59, tzinfo=UTC)) == 85_900
    assert CARD.rate("FR", "marketing", datetime(2025, 12, 31, 23, 0, tzinfo=UTC)) == 79_400
    # Service messages: free until the card of 2026-10-01, the utility rate from it.
    assert CARD.rate("GB", "service", datetime(2026, 9, 30, 21, 59, tzinfo=UTC)) == 0
    assert CARD.rate("GB", "service", datetime(2026, 9, 30, 22, 0, tzinfo=UTC)) == CARD.rate("GB", "utility", AFTER)
    assert not CARD.policy_at(BEFORE).service_billed and CARD.policy_at(AFTER).service_billed
    # Before the first card: the first card. A market not on the card: the default market.
    assert CARD.rate("IT", "utility", datetime(2024, 1, 1, tzinfo=UTC)) == 30_000
    assert CARD.rate("ZZ", "marketing", AFTER) == CARD.rate("OTHER", "marketing", AFTER)
    with pytest.raises(ValueError, match="timezone-aware"):
        CARD.at(datetime(2026, 1, 1))  # noqa: DTZ001 (the naive time is the point)


def test_authentication_international_falls_back_to_authentication_where_the_card_has_none() -> None:
    assert CARD.rate("FR", "authentication_international", AFTER) == CARD.rate("FR", "authentication", AFTER)


@pytest.mark.parametrize(("text", "error"), [
    ("rates:\n  FR: {marketing: 0.0859, utility: '0', authentication: '0', service: '0'}", "not a decimal string"),
    ("rates:\n  FR: {marketing: '1', utility: '0', authentication: '0', service: '0'}", "no rates for"),
    ("rates:\n  FR: {marketing: '0.0859'}", "missing utility"),
    ("rates:\n  XX: {marketing: '1'}", "'XX' is not in markets.yml"),
    ("rates:\n  FR: {marketing: '0.12345678', utility: '0', authentication: '0', service: '0'}", "more than 6 decimals"),
    ("rates:\n  FR: {marketing: '-1', utility: '0', authentication: '0', service: '0'}", "≥ 0"),
    ("rates:\n  FR: {marketing: '1', utility: '0', authentication: '0', service: '0', sms: '1'}", "unknown categories"),
])
def test_a_wrong_card_is_refused_with_its_file_and_reason(tmp_path: Path, text: str, error: str) -> None:
    shutil.copy(DEFAULT_DIRECTORY / "markets.yml", tmp_path / "markets.yml")
    (tmp_path / "2027-01-01.yml").write_text(
        "effective_from: 2027-01-01\ncurrency: USD\nsource: test\n"
        "policy: {service: billed, utility_in_window: billed}\n" + text + "\n", encoding="utf-8")
    with pytest.raises(RateCardError, match=error) as raised:
        RateCard.load(tmp_path)
    assert "2027-01-01.yml" in str(raised.value)


def test_cards_in_two_currencies_or_two_cards_for_one_date_are_refused(tmp_path: Path) -> None:
    for path in DEFAULT_DIRECTORY.glob("*.yml"):
        shutil.copy(path, tmp_path / path.name)
    euro = (tmp_path / "2026-10-01.yml").read_text(encoding="utf-8").replace("currency: USD", "currency: EUR")
    (tmp_path / "2027-01-01.yml").write_text(euro.replace("effective_from: 2026-10-01", "effective_from: 2027-01-01"),
                                             encoding="utf-8")
    with pytest.raises(RateCardError, match="mix currencies"):
        RateCard.load(tmp_path)
    (tmp_path / "2027-01-01.yml").write_text(
        (tmp_path / "2026-10-01.yml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RateCardError, match="also"):
        RateCard.load(tmp_path)


def test_a_quarterly_update_is_a_new_file(tmp_path: Path) -> None:
    for path in DEFAULT_DIRECTORY.glob("*.yml"):
        shutil.copy(path, tmp_path / path.name)
    text = (tmp_path / "2026-10-01.yml").read_text(encoding="utf-8")
    (tmp_path / "2027-01-01.yml").write_text(
        text.replace("effective_from: 2026-10-01", "effective_from: 2027-01-01")
        .replace('IT:    {marketing: "0.0691"', 'IT:    {marketing: "0.0700"'), encoding="utf-8")
    card = RateCard.load(tmp_path)
    assert card.rate("IT", "marketing", datetime(2027, 1, 2, tzinfo=UTC)) == 70_000
    assert card.rate("IT", "marketing", datetime(2026, 12, 30, tzinfo=UTC)) == 69_100


def test_amounts_are_decimal_strings_in_micros() -> None:
    assert to_micros("0.0859", "x") == 85_900 and to_micros("0", "x") == 0 and to_micros(2, "x") == 2_000_000
    with pytest.raises(RateCardError):
        to_micros(True, "x")
    with pytest.raises(RateCardError):
        to_micros("abc", "x")


# --------------------------------------------------------------------------- markets


@pytest.mark.parametrize(("recipient", "region", "market"), [
    ("33612345678", "FR", "FR"), ("+447700900123", "GB", "GB"), ("393471234567", "IT", "IT"),
    ("FR.5772156649015328606", "FR", "FR"), ("it.12345", "IT", "IT"), ("12125551234", "US", "NA"),
    ("18765551234", "JM", "OTHER"), ("41791234567", "CH", "WE"), ("377612345678", "MC", "FR"),
    ("4915112345678", "DE", "DE"), ("999", None, "OTHER"), ("", None, "OTHER"), (None, None, "OTHER"),
])
def test_the_market_is_the_region_of_the_calling_code(recipient: str | None, region: str | None,
                                                      market: str) -> None:
    assert region_of(recipient) == region
    assert market_of(recipient, CARD) == market


# --------------------------------------------------------------------------- charges


def test_a_reply_inside_the_window_was_free_and_is_billed_since_2026_10_01() -> None:
    before = charge_for(template_category=None, window=open_window(BEFORE), market="FR", at=BEFORE, card=CARD)
    assert (before.category, before.pricing_type, before.billable, before.cost_micros) == (
        "service", FREE_CUSTOMER_SERVICE, False, 0)
    after = charge_for(template_category=None, window=open_window(AFTER), market="FR", at=AFTER, card=CARD)
    assert (after.category, after.pricing_type, after.billable, after.cost_micros) == ("service", REGULAR, True, 30_000)
    assert str(after.cost) == "0.03" and after.currency == "USD"


def test_a_utility_template_inside_the_window_too_but_never_outside() -> None:
    closed_before = window_state(BEFORE - timedelta(hours=30), BEFORE)
    assert charge_for(template_category="UTILITY", window=open_window(BEFORE), market="GB", at=BEFORE,
                      card=CARD).free
    outside = charge_for(template_category="UTILITY", window=closed_before, market="GB", at=BEFORE, card=CARD)
    assert outside.billable and outside.cost_micros == 22_000
    inside_after = charge_for(template_category="UTILITY", window=open_window(AFTER), market="GB", at=AFTER, card=CARD)
    assert inside_after.billable and inside_after.pricing_type == REGULAR
    never_wrote = charge_for(template_category="UTILITY", window=None, market="GB", at=BEFORE, card=CARD)
    assert never_wrote.billable


def test_marketing_and_authentication_are_always_billed() -> None:
    for at in (BEFORE, AFTER):
        marketing = charge_for(template_category="MARKETING", window=open_window(at), market="IT", at=at, card=CARD)
        assert marketing.billable and marketing.category == "marketing" and marketing.cost_micros == 69_100
        auth = charge_for(template_category="AUTHENTICATION", window=open_window(at), market="IT", at=at, card=CARD)
        assert auth.billable and auth.category == "authentication"


def test_inside_a_free_entry_point_everything_is_free() -> None:
    referral = AFTER - timedelta(hours=30)
    # Replied within 24 h of the ad's message; 30 h later the 24 h window is closed, the FEP runs.
    window = window_state(referral, AFTER, entry_point="ctwa_ad", referral_at=referral,
                          first_reply_at=referral + timedelta(minutes=1))
    assert not window.is_open and window.fep_active
    for category in (None, "UTILITY", "MARKETING"):
        charge = charge_for(template_category=category, window=window, market="FR", at=AFTER, card=CARD)
        assert (charge.pricing_type, charge.billable, charge.cost_micros) == (FREE_ENTRY_POINT, False, 0)
    # 73 h after the reply it is over.
    later = AFTER + timedelta(hours=44)
    window = window_state(referral, later, entry_point="ctwa_ad", referral_at=referral,
                          first_reply_at=referral + timedelta(minutes=1))
    assert charge_for(template_category="UTILITY", window=window, market="FR", at=later, card=CARD).billable


def test_unknown_template_categories_are_refused() -> None:
    assert billing_category(None) == "service" and billing_category("Utility") == "utility"
    with pytest.raises(ValueError, match="unknown template category"):
        billing_category("PROMOTION")


def test_money_is_written_as_the_locale_writes_it() -> None:
    assert format_money(30_000, "USD") == "$0.03"
    assert format_money(85_900, "USD") == "$0.0859"
    assert format_money(12_500_000, "EUR", "fr").replace("\u202f", " ").replace("\xa0", " ") == "12,50 €"
    assert format_money(0, "USD") == "$0.00"


# --------------------------------------------------------------------------- the decision


def _session(last_inbound: datetime | None) -> SessionState:
    return SessionState(phone_number_id="p", client_key="c", wa_id="33612345678", last_inbound_at=last_inbound)


def test_the_guards_decision_carries_category_freeness_and_cost() -> None:
    registry = TemplateRegistry.load_default()
    consent = Consent(messaging=True, marketing=True)
    reply = decide(_session(AFTER - timedelta(hours=2)), "service_reply", Content(text="Of course."), consent,
                   AFTER, registry=registry, card=CARD, market="FR")
    assert isinstance(reply, SendFreeForm) and reply.charge is not None
    assert (reply.charge.category, reply.charge.billable, reply.charge.cost_micros) == ("service", True, 30_000)

    closed = _session(AFTER - timedelta(hours=30))
    template = decide(closed, "order_shipped", Content(text="Your order has left."), consent, AFTER,
                      registry=registry, params={"first_name": "Claire", "order_ref": "SOL-1"}, language="fr",
                      card=CARD, market="FR")
    assert isinstance(template, SendTemplate) and template.charge is not None
    assert (template.charge.category, template.charge.pricing_type) == ("utility", REGULAR)

    park = decide(closed, "service_reply", Content(text="Here are three ideas."), consent, AFTER,
                  registry=registry, params={"first_name": "Claire"}, language="fr", card=CARD, market="FR")
    assert isinstance(park, ParkAndNudge) and park.nudge is not None and park.charge is not None
    assert park.charge.category == "utility" and park.charge.billable

    # Without a card, the same decisions and no charge.
    plain = decide(closed, "order_shipped", Content(text="x"), consent, AFTER, registry=registry,
                   params={"first_name": "Claire", "order_ref": "SOL-1"}, language="fr")
    assert isinstance(plain, SendTemplate) and plain.charge is None


# --------------------------------------------------------------------------- reconciliation


def test_metas_pricing_object_is_read_by_type_before_billable() -> None:
    assert read_pricing({"billable": True, "pricing_model": "PMP", "type": "free_customer_service",
                         "category": "service"}).billable is False  # type: ignore[union-attr]
    old = read_pricing({"billable": True, "pricing_model": "PMP", "category": "utility"})
    assert old is not None and old.billable and old.pricing_type == REGULAR
    fep = read_pricing({"billable": False, "category": "referral_conversion"})
    assert fep is not None and fep.pricing_type == FREE_ENTRY_POINT
    assert read_pricing({"pricing_model": "PMP"}) is None and read_pricing(None) is None


def test_a_mismatch_names_what_differs() -> None:
    assert mismatch_reason("utility", REGULAR, "marketing", REGULAR) == "category utility→marketing"
    assert mismatch_reason("service", FREE_CUSTOMER_SERVICE, "service", REGULAR) == (
        "type free_customer_service→regular")
    assert mismatch_reason("utility", FREE_ENTRY_POINT, "referral_conversion", FREE_ENTRY_POINT) is None
    assert mismatch_reason("utility", REGULAR, "referral_conversion", FREE_ENTRY_POINT) == (
        "type regular→free_entry_point")
    assert mismatch_reason("service", REGULAR, "service", REGULAR) is None
