"""Unit tests of the emulator's pure Meta rules (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from salon.emulator import rules
from salon.emulator.graph_errors import GraphError
from salon.emulator.ids import (
    bsuid_read_as_phone,
    country_of,
    is_bsuid,
    new_bsuid,
    new_call_id,
    new_parent_bsuid,
    new_wamid,
    normalise_recipient,
)
from salon.emulator.template_store import TemplateStore
from salon.emulator.versions import check_version
from salon.templates.model import Template

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- window


def test_window_open_until_one_microsecond_before_24h_and_closed_at_exactly_24h() -> None:
    assert rules.window_open(T0, T0)
    assert rules.window_open(T0, T0 + timedelta(hours=24) - timedelta(microseconds=1))
    assert not rules.window_open(T0, T0 + timedelta(hours=24))
    assert not rules.window_open(T0, T0 + timedelta(hours=25))
    assert not rules.window_open(None, T0)


def test_window_book_is_per_business_number_and_client() -> None:
    book = rules.WindowBook()
    book.record_inbound("pn-1", "33611111111", T0)
    assert book.is_open("pn-1", "33611111111", T0 + timedelta(hours=1))
    assert not book.is_open("pn-2", "33611111111", T0 + timedelta(hours=1))
    assert not book.is_open("pn-1", "33622222222", T0 + timedelta(hours=1))
    assert book.closes_at("pn-1", "33611111111") == T0 + timedelta(hours=24)
    # an older timestamp never moves the window back
    book.record_inbound("pn-1", "33611111111", T0 - timedelta(hours=3))
    assert book.last("pn-1", "33611111111") == T0


def test_pricing_follows_per_message_pricing() -> None:
    assert rules.pricing("service", in_window=True) == {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "service",
    }
    assert rules.pricing("utility", in_window=True)["type"] == "free_customer_service"
    outside = rules.pricing("utility", in_window=False)
    assert outside["type"] == "regular" and outside["billable"] is True
    marketing = rules.pricing("marketing", in_window=True)
    assert marketing["type"] == "regular" and marketing["billable"] is True
    fep = rules.pricing("marketing", in_window=False, fep=True)
    assert fep["type"] == "free_entry_point" and fep["billable"] is False


@pytest.mark.parametrize(
    ("category", "in_window", "before", "after"),
    [
        ("service", True, ("free_customer_service", False), ("regular", True)),
        ("utility", True, ("free_customer_service", False), ("regular", True)),
        ("utility", False, ("regular", True), ("regular", True)),
        ("marketing", True, ("regular", True), ("regular", True)),
        ("marketing", False, ("regular", True), ("regular", True)),
        ("authentication", True, ("regular", True), ("regular", True)),
        ("authentication", False, ("regular", True), ("regular", True)),
    ],
)
def test_in_window_service_and_utility_are_billed_from_2026_10_01(
    category: str, in_window: bool, before: tuple[str, bool], after: tuple[str, bool]
) -> None:
    change = rules.IN_WINDOW_BILLED_FROM
    assert change == datetime(2026, 10, 1, tzinfo=timezone.utc)
    for at, (kind, billable) in ((change - timedelta(microseconds=1), before), (change, after)):
        assert rules.pricing(category, in_window=in_window, at=at) == {
            "billable": billable,
            "pricing_model": "PMP",
            "type": kind,
            "category": category,
        }
    # the free entry point stays free after the change
    fep = rules.pricing(category, in_window=in_window, fep=True, at=change + timedelta(days=30))
    assert fep["type"] == "free_entry_point" and fep["billable"] is False


def test_contact_information_requests_are_validated() -> None:
    ok = {
        "type": "request_contact_info",
        "body": {"text": "May we have your number?"},
        "action": {"name": "request_contact_info"},
    }
    assert rules.validate_message(_msg("interactive", ok)) is None
    assert rules.validate_message(_msg("interactive", {**ok, "footer": {"text": "Maison"}})) is None
    too_long = {**ok, "body": {"text": "x" * 1025}}
    assert rules.validate_message(_msg("interactive", too_long)).code == 131009  # type: ignore[union-attr]
    no_action = {k: v for k, v in ok.items() if k != "action"}
    assert rules.validate_message(_msg("interactive", no_action)).code == 131009  # type: ignore[union-attr]


def test_free_entry_point_needs_a_reply_within_24h_and_lasts_72h_from_it() -> None:
    reply = T0 + timedelta(hours=2)
    assert rules.fep_active(T0, reply, reply + timedelta(hours=71))
    assert not rules.fep_active(T0, reply, reply + timedelta(hours=72))
    assert not rules.fep_active(T0, T0 + timedelta(hours=24), T0 + timedelta(hours=25))
    assert not rules.fep_active(None, reply, reply)


# --------------------------------------------------------------------------- buckets


def test_pair_rate_bucket_allows_a_burst_of_45_then_one_per_6_seconds() -> None:
    buckets = rules.KeyedBuckets(capacity=45, refill_per_second=1 / 6)
    key = ("pn", "client")
    assert all(buckets.try_take(key, T0) for _ in range(45))
    assert not buckets.try_take(key, T0)
    assert not buckets.try_take(key, T0 + timedelta(seconds=5.9))
    assert buckets.try_take(key, T0 + timedelta(seconds=6))
    assert not buckets.try_take(key, T0 + timedelta(seconds=6))
    # another client has its own allowance
    assert buckets.try_take(("pn", "other"), T0)


def test_token_bucket_refill_is_capped_and_survives_a_clock_moving_back() -> None:
    bucket = rules.TokenBucket.full(80, 80, T0)
    assert all(bucket.try_take(T0) for _ in range(80))
    assert not bucket.try_take(T0)
    assert bucket.seconds_until(T0) == pytest.approx(1 / 80)
    assert bucket.available(T0 + timedelta(hours=1)) == 80
    assert bucket.try_take(T0 - timedelta(hours=2))  # backwards: no refill, no crash
    assert bucket.available(T0 - timedelta(hours=2)) == 79


# --------------------------------------------------------------------------- messages


def _msg(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": "33612345678",
        "type": kind,
        kind: content,
        **extra,
    }


def _buttons(count: int, title: str = "Yes") -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": "Shall we?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"b{i}", "title": title}} for i in range(count)
            ]
        },
    }


def _list(rows: int, title: str = "Row", description: str | None = None) -> dict[str, Any]:
    items = []
    for i in range(rows):
        row: dict[str, Any] = {"id": f"r{i}", "title": title}
        if description is not None:
            row["description"] = description
        items.append(row)
    return {
        "type": "list",
        "body": {"text": "Choose"},
        "action": {"button": "Options", "sections": [{"title": "All", "rows": items}]},
    }


def test_text_body_limit_is_4096() -> None:
    assert rules.validate_message(_msg("text", {"body": "x" * 4096})) is None
    violation = rules.validate_message(_msg("text", {"body": "x" * 4097}))
    assert violation is not None and violation.code == 100 and "4096" in violation.details
    missing = rules.validate_message(_msg("text", {}))
    assert missing is not None and missing.code == 131008


def test_messaging_product_and_type_are_checked() -> None:
    body = _msg("text", {"body": "hi"})
    body["messaging_product"] = "sms"
    assert rules.validate_message(body).code == 100  # type: ignore[union-attr]
    assert rules.validate_message(_msg("telegram", {"x": 1})).code == 100  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "ok", "needle"),
    [
        (_buttons(3), True, ""),
        (_buttons(4), False, "Max allowed buttons: 3"),
        (_buttons(0), False, "Max allowed buttons: 3"),
        (_buttons(1, "x" * 20), True, ""),
        (_buttons(1, "x" * 21), False, "Max length: 20"),
        (_list(10), True, ""),
        (_list(11), False, "Total row count exceed max allowed count: 10"),
        (_list(1, "x" * 24), True, ""),
        (_list(1, "x" * 25), False, "Row title is too long. Max length is 24"),
        (_list(1, description="d" * 72), True, ""),
        (_list(1, description="d" * 73), False, "Row description is too long. Max length is 72"),
    ],
)
def test_interactive_limits(content: dict[str, Any], ok: bool, needle: str) -> None:
    violation = rules.validate_message(_msg("interactive", content))
    if ok:
        assert violation is None
    else:
        assert violation is not None and violation.code == 131009
        assert needle in violation.details


def test_duplicate_button_ids_and_unknown_interactive_types_are_refused() -> None:
    content = _buttons(2)
    content["action"]["buttons"][1]["reply"]["id"] = "b0"
    assert rules.validate_message(_msg("interactive", content)).code == 131009  # type: ignore[union-attr]
    assert rules.validate_message(_msg("interactive", {"type": "flow"})).code == 100  # type: ignore[union-attr]


def test_media_location_reaction_contacts_and_context() -> None:
    assert rules.validate_message(_msg("image", {"link": "https://x.example/a.jpg"})) is None
    assert rules.validate_message(_msg("image", {})).code == 131008  # type: ignore[union-attr]
    both = _msg("document", {"id": "1", "link": "https://x.example/a.pdf"})
    assert rules.validate_message(both).code == 100  # type: ignore[union-attr]
    assert rules.validate_message(_msg("audio", {"id": "1", "caption": "no"})).code == 100  # type: ignore[union-attr]
    assert rules.validate_message(_msg("location", {"latitude": 48.8, "longitude": 2.3})) is None
    assert rules.validate_message(_msg("location", {"latitude": 48.8})).code == 131008  # type: ignore[union-attr]
    assert rules.validate_message(_msg("reaction", {"message_id": "wamid.x", "emoji": ""})) is None
    assert rules.validate_message(_msg("contacts", [{"name": {"formatted_name": "A"}}])) is None
    assert rules.validate_message(_msg("contacts", [{"name": {}}])).code == 131008  # type: ignore[union-attr]
    quoted = _msg("text", {"body": "hi"}, context={"message_id": "wamid.abc"})
    assert rules.validate_message(quoted) is None
    assert rules.validate_message(_msg("text", {"body": "hi"}, context={})).code == 131008  # type: ignore[union-attr]


# --------------------------------------------------------------------------- templates


@pytest.fixture(scope="module")
def store() -> TemplateStore:
    return TemplateStore.from_file()


def _named(name: str, language: str, params: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {
        "type": "body",
        "parameters": [{"type": "text", "parameter_name": k, "text": v} for k, v in params.items()],
    }
    return {"name": name, "language": {"code": language}, "components": [body], **extra}


REMINDER = {"first_name": "Claire", "boutique": "Paris", "date": "12 March", "time": "15:00"}


def _check(
    template: Template | None, obj: dict[str, Any], version: str = "v21.0"
) -> rules.Violation | None:
    return rules.check_template_send(
        template, obj, language=obj["language"]["code"], api_version=version
    )


def test_a_complete_named_template_passes(store: TemplateStore) -> None:
    template = store.get("appointment_reminder", "en")
    assert _check(template, _named("appointment_reminder", "en", REMINDER)) is None


def test_unknown_template_or_language_is_132001(store: TemplateStore) -> None:
    assert _check(None, _named("nope", "en", {})).code == 132001  # type: ignore[union-attr]
    assert store.get("appointment_reminder", "de") is None
    assert store.get("appointment_reminder", "en_US") is None  # languages match exactly


@pytest.mark.parametrize(
    ("status", "code"),
    [("PAUSED", 132015), ("DISABLED", 132016), ("PENDING", 132001), ("REJECTED", 132001)],
)
def test_only_approved_templates_can_be_sent(store: TemplateStore, status: str, code: int) -> None:
    template = replace(store.get("appointment_reminder", "en"), status=status)  # type: ignore[type-var]
    violation = _check(template, _named("appointment_reminder", "en", REMINDER))
    assert violation is not None and violation.code == code


def test_wrong_parameter_count_is_132000(store: TemplateStore) -> None:
    template = store.get("appointment_reminder", "en")
    short = dict(REMINDER)
    short.pop("time")
    violation = _check(template, _named("appointment_reminder", "en", short))
    assert violation is not None and violation.code == 132000
    assert "(3)" in violation.details and "(4)" in violation.details


def test_named_versus_positional_mismatch_is_132012(store: TemplateStore) -> None:
    named_template = store.get("appointment_reminder", "en")
    positional_obj = {
        "name": "appointment_reminder",
        "language": {"code": "en"},
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": v} for v in REMINDER.values()]}
        ],
    }
    assert _check(named_template, positional_obj).code == 132012  # type: ignore[union-attr]
    positional_template = store.get("order_shipped", "en")
    assert positional_template is not None and positional_template.parameter_format == "positional"
    named_obj = {
        "name": "order_shipped",
        "language": {"code": "en"},
        "components": [
            {
                "type": "header",
                "parameters": [{"type": "text", "parameter_name": "order_ref", "text": "A1"}],
            },
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "parameter_name": "first_name", "text": "Claire"},
                    {"type": "text", "parameter_name": "order_ref", "text": "A1"},
                ],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": 0,
                "parameters": [{"type": "text", "text": "A1"}],
            },
        ],
    }
    assert _check(positional_template, named_obj).code == 132012  # type: ignore[union-attr]


def test_positional_template_with_url_button(store: TemplateStore) -> None:
    template = store.get("order_shipped", "en")
    ok = {
        "name": "order_shipped",
        "language": {"code": "en"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "A1"}]},
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Claire"}, {"type": "text", "text": "A1"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": 0,
                "parameters": [{"type": "text", "text": "A1"}],
            },
        ],
    }
    assert _check(template, ok) is None
    without_button = {**ok, "components": ok["components"][:2]}
    violation = _check(template, without_button)
    assert violation is not None and violation.code == 132000 and "button 0" in violation.details
    rendered = rules.render_template(template, ok)  # type: ignore[arg-type]
    assert rendered["header"] == "Your order A1"
    assert rendered["body"].startswith("Claire, your order A1 has left")


def test_parameter_names_must_match_the_placeholders(store: TemplateStore) -> None:
    template = store.get("appointment_reminder", "en")
    wrong = dict(REMINDER)
    wrong["hour"] = wrong.pop("time")
    assert _check(template, _named("appointment_reminder", "en", wrong)).code == 132000  # type: ignore[union-attr]


def test_newline_in_a_parameter_is_132018_from_v23_and_100_before(store: TemplateStore) -> None:
    template = store.get("appointment_reminder", "en")
    bad = dict(REMINDER, first_name="Claire\nLaurent")
    assert _check(template, _named("appointment_reminder", "en", bad), "v23.0").code == 132018  # type: ignore[union-attr]
    assert _check(template, _named("appointment_reminder", "en", bad), "v21.0").code == 100  # type: ignore[union-attr]


def test_render_fills_named_parameters_and_quick_reply_payloads(store: TemplateStore) -> None:
    template = store.get("advisor_update_nudge", "fr")
    obj = _named("advisor_update_nudge", "fr", {"first_name": "Élodie"})
    obj["components"].append(
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": 0,
            "parameters": [{"type": "payload", "payload": "NUDGE:42"}],
        }
    )
    assert _check(template, obj) is None
    rendered = rules.render_template(template, obj)  # type: ignore[arg-type]
    assert rendered["body"].startswith("Bonjour Élodie, Maison Solenne a du nouveau")
    assert rendered["footer"] == "Maison Solenne"
    assert rendered["buttons"] == [
        {"index": 0, "type": "QUICK_REPLY", "text": "Voir le message", "payload": "NUDGE:42"}
    ]
    # without a payload parameter, a tap reports the button's text (Meta's behaviour)
    plain = rules.render_template(
        template, _named("advisor_update_nudge", "fr", {"first_name": "É"})
    )  # type: ignore[arg-type]
    assert plain["buttons"][0]["payload"] == "Voir le message"


# --------------------------------------------------------------------------- ids


def test_recipients_and_ids() -> None:
    assert normalise_recipient("+33 6 12 34 56 78") == ("phone", "33612345678")
    assert normalise_recipient("33612345678") == ("phone", "33612345678")
    assert normalise_recipient("US.13491208655302741918") == ("bsuid", "US.13491208655302741918")
    assert normalise_recipient("US.ENT.11815799212886844830")[0] == "bsuid"  # type: ignore[index]
    assert normalise_recipient("hello") is None
    assert is_bsuid("FR.123") and not is_bsuid("33612345678")
    wamid = new_wamid("33612345678")
    assert wamid.startswith("wamid.HBg") and wamid != new_wamid("33612345678")
    # what Meta makes of a BSUID in `to`: the rest read as a phone number
    assert bsuid_read_as_phone("FR.5772156649015328606") == "5772156649015328606"
    assert bsuid_read_as_phone("US.ENT.11815799212886844830") == "11815799212886844830"
    assert country_of("33612345678") == "FR" and country_of("+44 7700 900123".replace(" ", "")) == "GB"
    assert country_of("393471234567") == "IT" and country_of("FR.123") == "FR"
    assert country_of("9991234567") == "XX"
    assert is_bsuid(new_bsuid("GB")) and new_bsuid("GB").startswith("GB.")
    assert is_bsuid(new_parent_bsuid()) and ".ENT." in new_parent_bsuid()
    assert new_call_id().startswith("wacid.")


def test_version_refusals_have_graphs_envelope() -> None:
    accepted = ("v21.0", "v27.0")
    before_end = datetime(2027, 1, 20, 23, 59, 59, tzinfo=timezone.utc)
    check_version("v21.0", accepted, before_end, "/v21.0/1/messages")  # served
    check_version("v27.0", accepted, datetime(2030, 1, 1, tzinfo=timezone.utc), "/x")
    with pytest.raises(GraphError) as unknown:
        check_version("v26.0", accepted, before_end, "/v26.0/1/messages")
    assert unknown.value.http_status == 400 and unknown.value.body()["error"]["code"] == 2500
    assert unknown.value.body()["error"]["message"] == "Unknown path components: /v26.0/1/messages"
    with pytest.raises(GraphError) as expired:
        check_version("v21.0", accepted, before_end + timedelta(seconds=1), "/v21.0/1/messages")
    body = expired.value.body()["error"]
    assert body["code"] == 2635 and body["type"] == "OAuthException"
    assert set(body) == {"message", "type", "code", "fbtrace_id"}
    assert body["message"].endswith("latest version: v27.0.")
