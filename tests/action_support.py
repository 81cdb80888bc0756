"""The action server's environment for action tests: the seeded maison on SQLite, the
clock set to a given moment for every port, no external CRM or advisor webhook."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from actions import backends
from salon.access.signed_identity import SEAL_KEY, seal
from salon.clock import SystemClock, write_offset_file
from salon.whatsapp.addressing import is_bsuid
from tests.seeding import empty_book, seed_maison


def action_server_on(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, now: datetime,
                     *, seeded_book: bool = True) -> None:
    """The maison seeded at ``url`` and every port's clock at ``now`` (moving on from
    there); without ``seeded_book`` the appointment book starts empty."""
    seed_maison(url)
    if not seeded_book:
        empty_book(url)
    clock_file = tmp_path / "clock.json"
    write_offset_file(clock_file, now - SystemClock().now())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SALON_CLOCK_FILE", str(clock_file))
    monkeypatch.delenv("SALON_CRM_URL", raising=False)
    monkeypatch.delenv("SALON_ADVISOR_WEBHOOK_URL", raising=False)
    backends.reset()


#: The key the test session's channel and actions share (tests/conftest.py sets it).
TEST_IDENTITY_KEY = "test-identity-key-for-sealed-turns-0123456789"


def sealed(conversation: str, *, wa_id: str | None = None, user_id: str | None = None,
           **extra: object) -> dict[str, object]:
    """A turn's metadata as the WhatsApp channel writes it: the client's ids and their seal
    for ``conversation`` (salon.access.signed_identity)."""
    metadata: dict[str, object] = {"wa_id": wa_id, "user_id": user_id, **extra}
    metadata[SEAL_KEY] = seal(TEST_IDENTITY_KEY.encode(), conversation, wa_id, user_id)
    return metadata


def sealed_for(sender: str, **extra: object) -> dict[str, object]:
    """The metadata the WhatsApp channel seals for a client writing as ``sender`` (her
    number, or her BSUID when she writes from a username)."""
    if is_bsuid(sender):
        return sealed(sender, user_id=sender, **extra)
    return sealed(sender, wa_id=sender, **extra)
