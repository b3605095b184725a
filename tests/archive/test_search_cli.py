"""``sealflow archive search`` as an archivist reads it on a terminal: a header, then one line per
record with every column starting at the same screen column, a person's two-character name (张磊)
beside a company's long one included — Chinese characters take two columns on a terminal."""

from __future__ import annotations

import argparse
import unicodedata
from datetime import UTC, datetime

import pytest

from archive import index
from archive.retention import make_archival_code, retain_until
from kernel.db import session_factory, transaction
from sealflow.commands import archive as archive_cmd


def _screen_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _record(n: int, at: datetime, holder: str, holder_code: str) -> dict:
    return {"archival_code": make_archival_code("X001", "ZZ", at.year, "Y", n), "licence_id": f"LID-{n}",
            "licence_number": f"0042026000{n:04d}", "licence_type": "执业药师注册证", "holder_name": holder,
            "holder_code": holder_code, "batch_id": "", "archived_at": at, "retention": "Y",
            "retain_until": retain_until("Y", at), "object_key": f"packages/{n}.tar", "object_version": "",
            "package_sm3": "", "package_size": 0, "document_name": f"{n}.ofd", "document_sm3": "",
            "manifest_sm3": "", "batch_manifest_key": ""}


def test_search_columns_line_up_on_a_terminal_with_chinese_names(db_engine, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    sessions = session_factory(db_engine)
    now = datetime.now(UTC)
    holders = [("示范2932414科技有限公司", "91330100MA2932414R"), ("张磊", "110105198904304074")]
    with transaction(sessions) as s:
        index.reserve(s, [_record(n, now, *holder) for n, holder in enumerate(holders, 1)])
    with sessions() as s:
        ids = index.ids_by_code(s, [make_archival_code("X001", "ZZ", now.year, "Y", n) for n in (1, 2)])
    with transaction(sessions) as s:
        index.publish(s, [{"id": row_id, "batch_id": "walk"} for row_id in ids.values()])
    monkeypatch.setattr(archive_cmd, "_sessions", lambda _settings: sessions)
    args = argparse.Namespace(number=None, licence_id=None, holder=None, holder_code=None, code=None, batch="walk",
                              since=None, until=None, limit=100, all_versions=False, json=False)

    assert archive_cmd.run_search(args, settings=object()) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 record(s)" and len(lines) == 4
    header, rows = lines[0], lines[1:3]
    for column, cells in (("持证主体代码", [code for _, code in holders]), ("归档 archived", [f"{now:%Y-%m-%d}"] * 2),
                          ("证照类型", ["执业药师注册证"] * 2)):
        starts = {_screen_width(header[:header.index(column)])}
        starts |= {_screen_width(line[:line.index(cell)]) for line, cell in zip(rows, cells, strict=True)}
        assert len(starts) == 1, (column, starts, lines)
