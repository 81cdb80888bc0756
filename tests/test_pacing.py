"""Token buckets, quiet hours in the client's zone, pacing configuration; the outbound CLI."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from salon.cli import main
from salon.outbound.pacing import MAX_BUSINESS_RATE, Pacer, PacingConfig, QuietHours, TokenBucket
from tests.seeding import seed_maison


def test_bucket_allows_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # the debt is carried: callers queue
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.wait(2.0) == 0.0  # refilled by then
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)


def test_pacer_per_client_and_per_number() -> None:
    pacer = Pacer(PacingConfig(business_rate=10, business_burst=10, client_interval_s=6, client_burst=2, quiet=None))
    for _ in range(2):
        assert pacer.client_wait("c1", 0.0) == 0.0
        pacer.take_client("c1", 0.0)
    assert pacer.client_wait("c1", 0.0) == pytest.approx(6.0)  # one every 6 s after the burst
    assert pacer.client_wait("c2", 0.0) == 0.0  # another client is not held back
    waits = [pacer.take_business("pn", 0.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[11] == pytest.approx(0.2)


def test_quiet_hours_follow_the_clients_zone() -> None:
    quiet = QuietHours.parse("21:00-09:00")
    assert quiet is not None and quiet.applies("event_invitation") and not quiet.applies("order_update")
    late_utc = datetime(2026, 11, 25, 21, 30, tzinfo=timezone.utc)
    # 22:30 in Paris: wait for 09:00 Paris; 21:30 in London: quiet too; 16:30 in New York: fine.
    assert quiet.resume_at(late_utc, "Europe/Paris") == datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
    assert quiet.resume_at(late_utc, "Europe/London") == datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert quiet.resume_at(late_utc, "America/New_York") is None
    assert quiet.resume_at(late_utc, "Not/AZone") is not None  # unknown: the maison's zone
    early = datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)  # 06:00 Paris, same day's 09:00
    assert quiet.resume_at(early, "Europe/Paris") == datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)
    assert QuietHours.parse("off") is None
    for bad in ("9-21", "21:00-21:00", "25:00-09:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(bad)
    with pytest.raises(ValueError, match="unknown purposes"):
        QuietHours.parse("21:00-09:00", frozenset({"spam"}))


def test_pacing_from_the_environment() -> None:
    config = PacingConfig.from_env({"SALON_OUTBOUND_RATE": "500", "SALON_OUTBOUND_QUIET_HOURS": "off"})
    # A fifth of a second's burst: Meta's bucket keeps the rest as slack for jitter.
    assert config.business_rate == 500 and config.business_burst == 100 and config.quiet is None
    assert PacingConfig.from_env({"SALON_OUTBOUND_RATE": "2"}).business_burst == 1
    assert PacingConfig.from_env({"SALON_OUTBOUND_RATE": "80", "SALON_OUTBOUND_BURST": "80"}).business_burst == 80
    with pytest.raises(ValueError, match="business rate"):
        PacingConfig.from_env({"SALON_OUTBOUND_RATE": str(MAX_BUSINESS_RATE + 1)})


def test_cli_enqueue_show_list_metrics_and_stock(sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    seed_maison(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("WA_PHONE_NUMBER_ID", "100000000000001")
    args = ["outbound", "enqueue", "--wa-id", "33600000001", "--purpose", "order_update",
            "--text", "Your coat has left the atelier.", "--param", "order_ref=SOL-104233", "--key", "cli-1"]
    assert main(args) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["created"] and created["state"] == "queued" and created["requested_by"] == "cli"
    assert main(args) == 0 and not json.loads(capsys.readouterr().out)["created"]
    assert main(["outbound", "enqueue", "--wa-id", "x", "--purpose", "spam"]) == 2
    assert "purpose: one of" in capsys.readouterr().err
    assert main(["outbound", "show", "cli-1"]) == 0
    assert json.loads(capsys.readouterr().out)["events"][0]["state"] == "queued"
    assert main(["outbound", "list"]) == 0 and "order_update" in capsys.readouterr().out
    assert main(["outbound", "metrics"]) == 0 and json.loads(capsys.readouterr().out)["requests"] == 1
    assert main(["stock", "set", "NO-SKU", "paris", "1"]) == 2
    assert "unknown sku" in capsys.readouterr().err
