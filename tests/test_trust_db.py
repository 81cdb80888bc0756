"""SQL errors carry no personal data into logs (review L3): every engine Salon makes hides
a statement's parameters, so a failed insert of a client's message logs the statement,
never the message, on SQLite and PostgreSQL, synchronous and asynchronous alike."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Column, MetaData, String, Table, Text
from sqlalchemy.exc import IntegrityError

from salon.storage.db import make_async_engine, make_sync_engine

WORDS = "Bonjour, je suis Inès Moreau, 12 rue de la Paix, +33 6 00 00 00 02"

metadata = MetaData()
notes = Table("trust_notes", metadata, Column("id", String(16), primary_key=True), Column("body", Text))


async def test_a_failed_statement_logs_no_parameter(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.trust_db")
    errors: list[str] = []
    sync = make_sync_engine(database_url)
    try:
        metadata.create_all(sync)
        with sync.begin() as conn:
            conn.execute(notes.insert().values(id="n-1", body="first"))
        with pytest.raises(IntegrityError) as failed, sync.begin() as conn:
            conn.execute(notes.insert().values(id="n-1", body=WORDS))
        errors.append(str(failed.value))
        logger.error("insert failed", exc_info=failed.value)
    finally:
        sync.dispose()
    engine = make_async_engine(database_url)
    try:
        with pytest.raises(IntegrityError) as failed:
            async with engine.begin() as conn:
                await conn.execute(notes.insert().values(id="n-1", body=WORDS))
        errors.append(str(failed.value))
        logger.error("insert failed", exc_info=failed.value)
    finally:
        await engine.dispose()
    assert all("trust_notes" in error and "hidden due to hide_parameters" in error for error in errors), errors
    logged = caplog.text
    assert "INSERT INTO trust_notes" in logged
    for fragment in ("Inès", "rue de la Paix", "00 00 00 02"):
        assert fragment not in logged and not any(fragment in error for error in errors)
