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
        ids = {r.licence_id: r.id for r in index.existing_by_licence(s, [f"LID-{n}" for n in range(1, 13)]).values()}
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
    with pytest.raises(IntegrityError), transaction(sessions) as s:  # the same 证照标识 cannot be archived twice
        index.reserve(s, [{**_row(99, now), "licence_id": "LID-1"}])
