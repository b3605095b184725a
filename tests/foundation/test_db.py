"""The SealFlow database on SQLite and, with SEALFLOW_TEST_PG_DSN, PostgreSQL: every domain's
migration branch reaches its head, and a transaction commits or rolls back as a whole."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, Table, inspect, select, text

from kernel.db import alembic_config, session_factory, transaction


def _heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_migrate_reaches_every_branch_head(db_engine):
    assert db_engine.dialect.name in {"sqlite", "postgresql"}
    with db_engine.connect() as conn:
        applied = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert applied == _heads()
    assert "alembic_version" in inspect(db_engine).get_table_names()


def test_transaction_is_all_or_nothing(db_engine):
    table = Table("foundation_probe", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(40)))
    table.create(db_engine)
    try:
        factory = session_factory(db_engine)
        with transaction(factory) as session:
            session.execute(table.insert().values(id=1, name="印章"))
        with pytest.raises(RuntimeError), transaction(factory) as session:
            session.execute(table.insert().values(id=2, name="rolled back"))
            raise RuntimeError("boom")
        with db_engine.connect() as conn:
            assert conn.execute(select(table.c.id, table.c.name)).all() == [(1, "印章")]
    finally:
        table.drop(db_engine)
