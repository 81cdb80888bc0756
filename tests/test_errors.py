"""Cloud API error codes → typed errors (salon/whatsapp/errors.py)."""

from __future__ import annotations

import json
import pickle
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from salon.whatsapp import errors as E
from salon.whatsapp.errors import (
    KNOWN_CODES,
    UnknownWhatsAppError,
    WhatsAppError,
    error_class_for,
    errors_from_status,
    errors_from_webhook,
    from_graph_error,
    from_status_error,
    make_error,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED_FIXTURES = SHARED / "fixtures" / "whatsapp"
REFERENCE = SHARED / "reference" / "whatsapp-platform.md"
OWN_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "whatsapp"

# §3.2 of the platform reference, plus the legacy 470: code → retryable as is.
TABLE: dict[int, bool] = {
    131047: False, 470: False, 131026: False, 131049: True, 131050: False, 131051: False,
    131052: False, 131053: False, 131056: True, 130429: True, 131048: False, 131000: True,
    131005: False, 131008: False, 131009: False, 131016: True, 131021: False, 131031: False,
    131037: False, 131042: False, 131045: False, 131057: True, 132000: False, 132001: False,
    132005: False, 132007: False, 132012: False, 132015: False, 132016: False, 132018: False,
    132068: False, 132069: False, 133010: False, 133004: True, 130472: False, 130497: False,
    368: False, 0: False, 190: False, 3: False, 10: False, 4: True, 80007: True, 1: True,
    2: True, 100: False, 131059: True, 134100: False, 134101: True, 134102: False,
    131055: False, 131062: False, 2500: False, 2635: False,
}


def shared_fixture(name: str) -> dict[str, Any]:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"shared fixtures folder absent: {SHARED_FIXTURES}")
    matches = sorted(SHARED_FIXTURES.glob(f"{name}_*.json"))
    assert matches, f"fixture {name} missing in {SHARED_FIXTURES}"
    return json.loads(matches[0].read_text(encoding="utf-8"))


def own_fixture(name: str) -> dict[str, Any]:
    return json.loads((OWN_FIXTURES / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the table


def _reference_codes() -> set[int]:
    text = REFERENCE.read_text(encoding="utf-8")
    section = text.split("### 3.2", 1)[1].split("\n## ", 1)[0]
    codes: set[int] = set()
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| Code") or line.startswith("|---"):
            continue
        cell = line.split("|")[1]
        for low, high in re.findall(r"(\d+)[–-](\d+)", cell):
            codes.update(range(int(low), int(high) + 1))
        cell = re.sub(r"\d+[–-]\d+", "", cell)
        codes.update(int(code) for code in re.findall(r"\d+", cell))
    return codes


def test_reference_table_is_fully_mapped() -> None:
    if not REFERENCE.is_file():
        pytest.skip("platform reference absent")
    codes = _reference_codes()
    assert {131047, 470, 131056, 132000, 200, 299, 134101} <= codes
    unmapped = sorted(code for code in codes if error_class_for(code) is UnknownWhatsAppError)
    assert unmapped == []


@pytest.mark.parametrize("code", sorted(TABLE))
def test_every_code_is_typed(code: int) -> None:
    error = make_error(code)
    assert code in KNOWN_CODES
    assert not isinstance(error, UnknownWhatsAppError)
    assert isinstance(error, WhatsAppError)
    assert error.code == code
    assert error.title and error.message
    assert error.retryable is TABLE[code]
    first = error.retry_delay(0)
    assert (first is not None) is TABLE[code]
    assert error.closes_window is (code in (131047, 470))


def test_the_2026_codes_say_what_to_do() -> None:
    bsuid = make_error(131062)
    assert isinstance(bsuid, E.BsuidRecipientError) and isinstance(bsuid, E.RecipientError)
    assert "BSUID" in bsuid.title
    for code in (2500, 2635):
        version = make_error(code)
        assert isinstance(version, E.GraphVersionError) and not version.retryable


def test_permission_range_200_299() -> None:
    for code in (200, 250, 299):
        assert isinstance(make_error(code), E.AccessError)
    assert isinstance(make_error(300), UnknownWhatsAppError)


# --------------------------------------------------------------------------- policies


def test_pair_rate_limit_backs_off_4_to_the_n() -> None:
    error = make_error(131056)
    assert isinstance(error, E.PairRateLimitError)
    assert [error.retry_delay(n) for n in range(4)] == [
        timedelta(seconds=1), timedelta(seconds=4), timedelta(seconds=16), timedelta(seconds=64)
    ]
    assert error.retry_delay(50) is None  # gives up eventually


def test_throughput_backs_off_exponentially_with_a_cap() -> None:
    error = make_error(130429)
    delays = [error.retry_delay(n) for n in range(10)]
    assert all(d is not None for d in delays)
    assert delays[0] == timedelta(seconds=1) and delays[1] == timedelta(seconds=2)
    assert all(a <= b for a, b in zip(delays, delays[1:], strict=False))  # type: ignore[operator]
    assert max(delays) == timedelta(minutes=5)  # type: ignore[type-var]
    assert error.retry_delay(10) is None


def test_ecosystem_limit_waits_at_least_24h() -> None:
    error = make_error(131049)
    delay = error.retry_delay(0)
    assert delay is not None and delay >= timedelta(hours=24)


@pytest.mark.parametrize("code", [131047, 470, 131050, 132000, 132001, 132015, 132016, 132069])
def test_never_retried(code: int) -> None:
    error = make_error(code)
    assert not error.retryable
    assert all(error.retry_delay(n) is None for n in range(5))


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError):
        make_error(131056).retry_delay(-1)
    with pytest.raises(ValueError):
        make_error(131047).retry_delay(-1)


def test_marketing_messages_syncing_is_retried_in_10_minutes() -> None:
    assert make_error(134101).retry_delay(0) == timedelta(minutes=10)
    assert make_error(134100).retry_delay(0) is None


# --------------------------------------------------------------------------- parsing


def test_fixture_11_status_131047_closes_the_window() -> None:
    pairs = list(errors_from_webhook(shared_fixture("11")))
    assert len(pairs) == 1
    status, error = pairs[0]
    assert status["status"] == "failed"
    assert isinstance(error, E.WindowClosedError)
    assert error.closes_window and not error.retryable
    assert error.title == "Re-engagement message"
    assert error.details is not None and "24 hours" in error.details
    assert error.href is not None


def test_fixture_12_status_131049() -> None:
    payload = shared_fixture("12")
    status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    [error] = errors_from_status(status)
    assert isinstance(error, E.EcosystemLimitError)
    assert error.retry_delay(0) == timedelta(hours=24)
    assert not error.closes_window


def test_fixture_22_synchronous_graph_error() -> None:
    error = from_graph_error(shared_fixture("22"), http_status=400)
    assert isinstance(error, E.ThroughputLimitError)
    assert error.code == 130429
    assert error.title == "Rate limit hit"
    assert error.message == "(#130429) Rate limit hit"
    assert error.details == "Cloud API message throughput has been reached."
    assert error.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"
    assert error.error_subcode == 2494055
    assert error.error_type == "OAuthException"
    assert error.http_status == 400
    assert error.retryable


def test_fixture_24_status_130472_experiment() -> None:
    [(_, error)] = list(errors_from_webhook(shared_fixture("24")))
    assert isinstance(error, E.RecipientError)
    assert error.code == 130472 and not error.retryable


def test_fixture_26_on_premises_470_flat_status() -> None:
    payload = shared_fixture("26")
    [(status, error)] = list(errors_from_webhook(payload))
    assert status is payload
    assert isinstance(error, E.WindowClosedError)
    assert error.code == 470 and error.closes_window
    assert error.title.startswith("Failed to send message because you are outside")


def test_own_fixtures() -> None:
    auth = from_graph_error(own_fixture("graph_error_190_token_expired.json"), http_status=401)
    assert isinstance(auth, E.AuthError) and not auth.retryable
    assert auth.fbtrace_id == "AbCdEfGhIjKlMnOpQrStUvW"
    cursor = from_graph_error(own_fixture("graph_error_131059_cursor.json"))
    assert isinstance(cursor, E.PaginationCursorError)
    assert cursor.retry_delay(0) == timedelta(0)
    [(_, closed)] = list(errors_from_webhook(own_fixture("status_failed_131047_bsuid.json")))
    assert closed.closes_window


def test_code_as_string_and_from_message() -> None:
    assert isinstance(from_status_error({"code": "131047"}), E.WindowClosedError)
    error = from_graph_error({"error": {"message": "(#131056) Pair rate limit hit"}})
    assert isinstance(error, E.PairRateLimitError)


@pytest.mark.parametrize(
    "payload",
    [None, [], "boom", 42, {}, {"error": "x"}, {"error": {"code": "abc"}},
     {"error": {"code": None, "error_data": "weird"}}, {"error": {"code": 1.5}}],
)
def test_malformed_graph_errors_never_crash(payload: Any) -> None:
    error = from_graph_error(payload)
    assert isinstance(error, WhatsAppError)
    assert not error.retryable


@pytest.mark.parametrize("item", [None, "x", {}, {"code": True}, {"code": []}])
def test_malformed_status_errors_never_crash(item: Any) -> None:
    error = from_status_error(item)
    assert isinstance(error, UnknownWhatsAppError)
    assert list(errors_from_status({"errors": "nope"})) == []
    assert list(errors_from_webhook({"entry": [None, {"changes": [None]}]})) == []


def test_unknown_code_defaults() -> None:
    plain = from_status_error({"code": 987654, "title": "Something new"})
    assert isinstance(plain, UnknownWhatsAppError)
    assert plain.title == "Something new"
    assert not plain.retryable and plain.retry_delay(0) is None
    server = from_graph_error({"error": {"code": 987654, "message": "down"}}, http_status=503)
    assert server.retryable and server.retry_delay(0) == timedelta(seconds=2)
    client = from_graph_error({"error": {"code": 987654}}, http_status=400)
    assert not client.retryable


def test_errors_are_exceptions_and_pickle() -> None:
    error = from_graph_error(shared_fixture("22"), http_status=400)
    with pytest.raises(E.RateLimitError):
        raise error
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert again.to_dict() == error.to_dict()
    assert "130429" in str(error)
