"""The shared clock file that carries the emulator's time travel to every process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from salon.clock import (
    ManualClock,
    OffsetFileClock,
    clock_from_env,
    read_offset_file,
    write_offset_file,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def test_offset_file_moves_every_reader(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    base = ManualClock(T0)
    reader = OffsetFileClock(path, base=base)
    assert reader.now() == T0  # no file yet: no offset
    write_offset_file(path, timedelta(hours=25))
    assert reader.now() == T0 + timedelta(hours=25)
    other = OffsetFileClock(path, base=base)
    other.set_offset(timedelta(hours=1))
    assert reader.now() == T0 + timedelta(hours=1)  # a rewrite is seen at once
    path.unlink()
    assert reader.now() == T0


def test_malformed_file_means_no_offset(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text("{not json")
    assert read_offset_file(path) == timedelta(0)
    path.write_text('{"offset_seconds": "soon"}')
    assert read_offset_file(path) == timedelta(0)


def test_clock_from_env(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SALON_CLOCK_FILE", raising=False)
    assert not isinstance(clock_from_env(), OffsetFileClock)
    monkeypatch.setenv("SALON_CLOCK_FILE", str(tmp_path / "c.json"))
    clock = clock_from_env()
    assert isinstance(clock, OffsetFileClock)
    assert clock.now().tzinfo is not None
