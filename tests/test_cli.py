"""The `salon` command line."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from salon.cli import main
from salon.config import PROJECT_ROOT
from salon.integrations.schema import clients, products
from salon.storage.db import make_sync_engine


def test_seed_loads_the_maison_and_is_idempotent(sqlite_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["seed", "--database-url", sqlite_url]) == 0
    assert "products 40" in capsys.readouterr().out
    assert main(["seed", "--database-url", sqlite_url]) == 0
    assert "+0 inserted, ~0 updated, -0 pruned" in capsys.readouterr().out
    engine = make_sync_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(products)).scalar_one() == 40
        assert connection.execute(select(func.count()).select_from(clients)).scalar_one() >= 30
    engine.dispose()


def test_seed_reports_bad_data_clearly_and_writes_nothing(sqlite_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "maison"
    shutil.copytree(PROJECT_ROOT / "data" / "maison", data_dir)
    orders_file = data_dir / "orders.yml"
    orders_file.write_text(orders_file.read_text().replace("LG-", "XX-", 1))
    assert main(["seed", "--database-url", sqlite_url, "--data-dir", str(data_dir)]) == 2
    error = capsys.readouterr().err
    assert "salon seed:" in error and "XX-" in error
    engine = make_sync_engine(sqlite_url)
    with engine.connect() as connection:
        assert not engine.dialect.has_table(connection, "maison_products")
    engine.dispose()


def test_seed_dates_the_records_relative_to_the_clocks_today(  # type: ignore[no-untyped-def]
        sqlite_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from datetime import datetime, timezone

    from salon.clock import SystemClock, write_offset_file
    from salon.integrations.schema import appointments

    clock_file = tmp_path / "clock.json"
    # Sunday 6 December 2026, 10:00 in Paris: ten days after the records' Thursday.
    write_offset_file(clock_file, datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc) - SystemClock().now())
    monkeypatch.setenv("SALON_CLOCK_FILE", str(clock_file))
    assert main(["seed", "--database-url", sqlite_url, "--today"]) == 0
    assert "dated relative to 2026-12-06" in capsys.readouterr().out
    engine = make_sync_engine(sqlite_url)
    with engine.connect() as connection:
        first = connection.execute(
            select(appointments.c.starts_at).where(appointments.c.id == "APT-20261127-PAR-01")
        ).scalar_one()
    engine.dispose()
    # Friday 27 November, 11:00 in Paris, a week on: Friday 4 December, 11:00.
    assert first == datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
