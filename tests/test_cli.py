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
