"""Text cut where a reader sees a boundary, and columns wide enough for what Meta sends:
a long answer is split between grapheme clusters, a long profile name is kept shortened,
a BSUID of any length Meta allows fits, and a table an older version made narrower is
widened on PostgreSQL."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

from sqlalchemy import Column, Integer, MetaData, String, Table, text

from salon.advisors.handoff import NAME_LIMIT, HandoffBook
from salon.graphemes import cut, shorten
from salon.storage.db import SqlTables, make_async_engine
from salon.whatsapp.addressing import is_bsuid

FAMILY = "\U0001F469\u200D\U0001F469\u200D\U0001F467"  # one cluster, five code points
STACKED = "e" + "\u0301\u0302\u0303"  # one letter, four code points


def test_a_cut_never_falls_inside_a_cluster() -> None:
    text_ = FAMILY * 3
    assert cut(text_, 7) == 5 and shorten(text_, 7) == FAMILY
    assert shorten(STACKED * 3, 6) == STACKED
    assert shorten("abc", 10) == "abc"
    assert cut("x" + FAMILY, 3) == 1
    assert cut(FAMILY, 2) == 2  # one cluster longer than the limit: nothing shorter exists


async def test_a_long_name_and_the_longest_bsuid_fit_a_handoff(database_url: str) -> None:
    bsuid = "FR.ENT." + "A" * 128
    assert is_bsuid(bsuid)
    name = "Ma\u0301\u0302rie-Ame\u0301lie " * 30
    book = HandoffBook(database_url)
    await book.initialize()
    try:
        handoff, created = await book.open(
            conversation_id=bsuid, reason="talk_to_advisor", note="n" * 3000, language="fr",
            now=datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc), client_name=name, user_id=bsuid)
        assert created and handoff.user_id == bsuid
        assert handoff.client_name is not None and len(handoff.client_name) <= NAME_LIMIT
        kept = len(handoff.client_name)
        assert name.startswith(handoff.client_name) and not unicodedata.combining(name[kept])
    finally:
        await book.close()


async def test_a_column_made_narrower_by_an_older_version_is_widened(postgres_url: str) -> None:
    old, new = MetaData(), MetaData()
    Table("widen_me", old, Column("id", Integer, primary_key=True), Column("user_id", String(64)))
    Table("widen_me", new, Column("id", Integer, primary_key=True), Column("user_id", String(200)))

    class Old(SqlTables):
        metadata = old

    class New(SqlTables):
        metadata = new

    engine = make_async_engine(postgres_url)
    try:
        await Old(engine=engine).initialize()
        await New(engine=engine).initialize()
        async with engine.begin() as conn:
            length = (await conn.execute(text(
                "SELECT character_maximum_length FROM information_schema.columns "
                "WHERE table_name = 'widen_me' AND column_name = 'user_id'"))).scalar_one()
            assert length == 200
            await conn.execute(text("INSERT INTO widen_me (id, user_id) VALUES (1, :u)"), {"u": "x" * 135})
    finally:
        await engine.dispose()
