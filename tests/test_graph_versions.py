"""The Graph API version: one setting, a current default, and a warning at start when the
configured version is unknown, ended, or within 60 days of its end (Meta's calendar,
kept as data in salon/whatsapp/versions.py)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest

from salon.clock import ManualClock
from salon.config import Settings
from salon.webhook.runtime import open_sender
from salon.whatsapp.graph import DEFAULT_VERSION, GraphConfig
from salon.whatsapp.versions import GRAPH_API_VERSIONS, latest_version, version_warning

V21_END = datetime(2027, 1, 21, tzinfo=timezone.utc)


def test_the_default_is_the_current_version() -> None:
    assert DEFAULT_VERSION == latest_version(GRAPH_API_VERSIONS) == "v27.0"
    assert GRAPH_API_VERSIONS["v27.0"].ends is None
    assert GRAPH_API_VERSIONS["v21.0"].ends == V21_END


@pytest.mark.parametrize(("version", "now", "expected"), [
    ("v27.0", datetime(2026, 12, 6, tzinfo=timezone.utc), None),
    ("v21.0", V21_END - timedelta(days=61), None),
    ("v21.0", V21_END - timedelta(days=60), "ends on 2027-01-21 (in 60 days)"),
    ("v21.0", V21_END - timedelta(hours=12), "ends on 2027-01-21 (in 0 days)"),
    ("v21.0", V21_END, "ended on 2027-01-21"),
    ("v19.0", datetime(2026, 12, 6, tzinfo=timezone.utc), "not in Salon's calendar"),
])
def test_the_warning_follows_the_calendar(version: str, now: datetime, expected: str | None) -> None:
    warning = version_warning(version, now)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and expected in warning and "WA_API_VERSION=v27.0" in warning


async def test_the_channel_and_the_worker_warn_at_start(settings: Settings,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(V21_END - timedelta(days=30))
    graph = GraphConfig(access_token="t", phone_number_id="123", api_version="v21.0")
    with caplog.at_level(logging.WARNING, logger="salon.webhook.runtime"):
        parts = await open_sender(settings, graph, clock)
        await parts.close()
    assert any("Graph API v21.0 ends on 2027-01-21 (in 30 days)" in r.getMessage() for r in caplog.records)
