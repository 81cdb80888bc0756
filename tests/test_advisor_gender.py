"""An advisor's gender, as the book records it, reaches the words that agree with her.

``advisors.yml`` says ``gender: f`` or ``m`` for each advisor; the seed refuses anything
else, and adds the column to a maison seeded before it existed; the SQL CRM reads it, and
:func:`salon.conversation.phrasing.your_advisor` makes the noun agree.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from salon.config import PROJECT_ROOT
from salon.conversation.phrasing import your_advisor
from salon.integrations.crm import SqlCrm
from salon.integrations.seed import SeedDataError, load_maison, seed_database
from salon.storage.db import make_async_engine, make_sync_engine

DATA_DIR = PROJECT_ROOT / "data" / "maison"
CLAIRE_WA = "33600000001"


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "maison"
    shutil.copytree(DATA_DIR, copy)
    return copy


def test_every_seeded_advisor_has_a_gender() -> None:
    maison = load_maison(DATA_DIR)
    assert {a.first_name: a.gender for a in maison.advisors.values()} == {
        "Sophie": "f", "Camille": "f", "James": "m", "Olivia": "f", "Giulia": "f"}


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    gender: m\n", "", r"advisors\.yml: .*james-whitaker.*'gender'"),
    ("    gender: m\n", "    gender: male\n", r"advisors\.yml: .*'gender' is 'male'; expected one of f, m"),
])
def test_the_seed_refuses_a_missing_or_unknown_gender(data_copy: Path, old: str, new: str,
                                                       expected: str) -> None:
    path = data_copy / "advisors.yml"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SeedDataError, match=expected):
        load_maison(data_copy)


async def test_a_maison_seeded_before_the_column_gets_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'salon.db'}"
    seed_database(url, DATA_DIR)
    engine = make_sync_engine(url)
    with engine.begin() as conn:  # the book as it stood before advisors had a gender
        conn.execute(text("ALTER TABLE maison_advisors DROP COLUMN gender"))
    engine.dispose()
    report = seed_database(url, DATA_DIR)
    assert report.updated["maison_advisors"] == 5
    crm = SqlCrm(make_async_engine(url.replace("sqlite://", "sqlite+aiosqlite://")))
    try:
        claire = await crm.find(wa_id=CLAIRE_WA, user_id=None)
    finally:
        await crm.engine.dispose()
    assert claire is not None and claire.advisor is not None and claire.advisor.gender == "f"


@pytest.mark.parametrize(("language", "gender", "start", "said"), [
    ("fr", "f", False, "votre conseillère Sophie"),
    ("fr", "m", True, "Votre conseiller Sophie"),
    ("it", "f", True, "La Sua consulente Sophie"),
    ("it", "m", False, "il Suo consulente Sophie"),
    ("en", "f", True, "Your client advisor Sophie"),
    ("fr", None, False, "Sophie"),  # the book does not say: no noun to guess
    ("de", "f", False, "your client advisor Sophie"),
])
def test_your_advisor_agrees_with_the_advisor(language: str, gender: str | None, start: bool,
                                              said: str) -> None:
    assert your_advisor(language, "Sophie", gender, start=start) == said
