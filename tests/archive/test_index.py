"""The archive index on SQLite and PostgreSQL: reserve, publish, numbering, search, keyset paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from archive import index
from archive.index import SearchQuery
from archive.retention import code_prefix, make_archival_code, retain_until
from kernel.db import session_factory, transaction


def _row(n: int, at: datetime, prefix_retention: str = "Y") -> dict:
    code = make_archival_code("X001", "ZZ", at.year, prefix_retention, n)
    return {"archival_code": code, "licence_id": f"LID-{n}", "licence_number": f"NUM-{n}", "licence_type": "营业执照",
            "holder_name": f"示范{n:05d}科技有限公司", "holder_code": f"CODE{n}", "batch_id": "", "archived_at": at,
            "retention": prefix_retention, "retain_until": retain_until(prefix_retention, at),
            "object_key": f"packages/{n}.tar", "object_version": "", "package_sm3": "", "package_size": 0,
            "document_name": f"{n}.pdf", "document_sm3": "", "manifest_sm3": "", "batch_manifest_key": ""}


def test_index_lifecycle(db_engine):
    sessions = session_factory(db_engine)
    now = datetime.now(UTC)
    prefix = code_prefix("X001", "ZZ", now.year, "Y")
    with transaction(sessions) as s:
        assert index.last_item_number(s, prefix) == 0
        index.reserve(s, [_row(n, now) for n in range(1, 13)])
    with sessions() as s:
        assert index.last_item_number(s, prefix) == 12  # 000012 > 000009: numeric, not text order
        assert index.search(s, SearchQuery()) == []  # pending rows are invisible
        ids = {lid: rows[0].id for lid, rows in index.records_by_licence(s, [f"LID-{n}" for n in range(1, 13)]).items()}
    with transaction(sessions) as s:
        index.publish(s, [{"id": ids[f"LID-{n}"], "batch_id": "B", "package_sm3": "ab" * 32} for n in range(1, 11)])
    with sessions() as s:
        assert len(index.search(s, SearchQuery(batch_id="B"))) == 10
        assert [r.licence_id for r in index.search(s, SearchQuery(licence_number="NUM-3"))] == ["LID-3"]
        assert [r.licence_id for r in index.search(s, SearchQuery(holder_name="00007科技"))] == ["LID-7"]
        assert index.search(s, SearchQuery(holder_name="%")) == []  # LIKE wildcards are literal
        assert len(index.search(s, SearchQuery(since=now - timedelta(days=1), until=now + timedelta(days=1)))) == 10
        assert index.find_one(s, "NUM-11") is None  # pending
        assert index.find_one(s, make_archival_code("X001", "ZZ", now.year, "Y", 2)).licence_id == "LID-2"
        page1 = index.iter_archived(s, 0, 4)
        page2 = index.iter_archived(s, page1[-1].id, 100)
        assert len(page1) == 4 and len(page2) == 6
    with pytest.raises(IntegrityError), transaction(sessions) as s:  # the same sealed document is indexed once
        index.reserve(s, [{**_row(99, now), "licence_id": "LID-1"}])


def _published(sessions, n: int, at: datetime, *, licence: str, sm3: str, supersedes: str | None = None) -> str:
    code = make_archival_code("X001", "ZZ", at.year, "Y", n)
    with transaction(sessions) as s:
        index.reserve(s, [{**_row(n, at), "licence_id": licence, "licence_number": "NUM-1", "document_sm3": sm3,
                           "supersedes": supersedes}])
    with transaction(sessions) as s:
        row_id = index.ids_by_code(s, [code])[code]
        index.publish(s, [{"id": row_id, "batch_id": f"B{n}"}], superseded=[(supersedes, code)] if supersedes else [])
    return code


def test_a_reissued_licence_keeps_both_records_and_lookups_answer_with_the_current_one(db_engine):
    sessions = session_factory(db_engine)
    now = datetime.now(UTC)
    first = _published(sessions, 1, now, licence="LID-1", sm3="a" * 64)
    second = _published(sessions, 2, now, licence="LID-1", sm3="b" * 64, supersedes=first)
    with sessions() as s:
        assert index.find_one(s, "LID-1").archival_code == second
        assert index.find_one(s, "NUM-1").archival_code == second
        assert index.find_one(s, first).archival_code == first  # a 档号 names that record, superseded or not
        assert index.find_one(s, first).superseded_by == second
        assert [r.archival_code for r in index.history(s, "LID-1")] == [first, second]
        assert [r.archival_code for r in index.search(s, SearchQuery(licence_id="LID-1"))] == [second]
        assert len(index.search(s, SearchQuery(licence_id="LID-1", all_versions=True))) == 2
        assert [r.archival_code for r in index.search(s, SearchQuery(archival_code=first))] == [first]
    with pytest.raises(IntegrityError), transaction(sessions) as s:  # a record is superseded once: no fork
        index.reserve(s, [{**_row(3, now), "licence_id": "LID-1", "document_sm3": "c" * 64, "supersedes": first}])
    with pytest.raises(ValueError, match="already superseded"), transaction(sessions) as s:
        index.publish(s, [], superseded=[(first, "someone-else")])


def test_the_migration_keeps_the_records_archived_before_it(db_engine):
    """archive_0004 on a database holding records: they stay, and the licence may now get a second one."""
    from alembic import command
    from sqlalchemy import MetaData, Table, insert

    from kernel.db import alembic_config, migrate
    from kernel.migrations.versions import archive_0004_reissue

    config = alembic_config()
    with db_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "archive_0003_fixity")
    now = datetime.now(UTC)
    with db_engine.begin() as connection:
        old = Table("archive_record", MetaData(), autoload_with=connection)  # as archive_0003 left it
        assert "supersedes" not in old.columns
        connection.execute(insert(old).values(**_row(1, now), state="archived"))
    migrate(db_engine)
    from alembic.script import ScriptDirectory

    with db_engine.connect() as connection:  # archive_0004 and every later revision ran: each branch at its head
        reached = set(connection.exec_driver_sql("select version_num from alembic_version").scalars())
    script = ScriptDirectory.from_config(config)
    assert reached == set(script.get_heads())
    ran = {r.revision for head in reached for r in script.iterate_revisions(head, "base")}
    assert archive_0004_reissue.revision in ran
    sessions = session_factory(db_engine)
    with sessions() as s:
        [kept] = index.records_by_licence(s, ["LID-1"])["LID-1"]
        assert (kept.supersedes, kept.superseded_by, kept.reissue) == (None, None, "")
    _published(sessions, 2, now, licence="LID-1", sm3="b" * 64, supersedes=kept.archival_code)
    with sessions() as s:
        assert [r.superseded_by for r in index.history(s, "LID-1")] == [make_archival_code(
            "X001", "ZZ", now.year, "Y", 2), None]
