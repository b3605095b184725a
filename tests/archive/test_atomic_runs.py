"""An archiving run's folder is published so that a crash never locks an unsigned run folder;
fixity names incomplete runs; the index and the package agree on archived_at (issue 11, item 7)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from archive.checks import NoScanner
from archive.fixity import run_fixity
from archive.models import ARCHIVED, ArchiveRecord
from archive.package import BATCH_MANIFEST, BATCH_SIGNATURE
from archive.service import archive_records
from archive.store import StoreError

pytestmark = pytest.mark.stack


class Died(StoreError):
    def __init__(self, key: str) -> None:
        super().__init__(key, "the store died (simulated)")


def _archive(env, docs, **kw):
    return archive_records([d.to_input() for d in docs], batch_id=kw.pop("batch_id", "R1"), settings=env.settings,
                           store=env.store, sessions=env.sessions, signer=env.signer, trust=env.trust,
                           scanner=NoScanner(), **kw)


def _die_on(env, monkeypatch, suffix: str) -> None:
    real = env.store.put

    def put(key, data, **kw):
        if key.startswith("runs/") and key.endswith(suffix):
            raise Died(key)
        return real(key, data, **kw)

    monkeypatch.setattr(env.store, "put", put)


def _locked_run_files(env) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for obj in env.store.list("runs/"):
        folder, _, name = obj.key.rpartition("/")
        if env.store.head(obj.key).lock_mode:
            folders.setdefault(folder, set()).add(name)
    return folders


def test_a_run_that_dies_while_publishing_locks_no_unsigned_folder_and_fixity_names_it(
        env, sealed_docs, monkeypatch) -> None:
    _die_on(env, monkeypatch, "/" + BATCH_MANIFEST)  # the store dies at the run's last file
    with pytest.raises(Died):
        _archive(env, sealed_docs[:2])
    locked = _locked_run_files(env)
    assert locked, "the run got as far as locking some of its files"
    assert all(BATCH_SIGNATURE in names for names in locked.values())  # never a locked folder without it
    with env.sessions() as s:
        assert s.scalars(select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED)).all() == []
    report = run_fixity(env.store, env.sessions, store_report=False)
    assert {p["problem"] for p in report["problems"]} == {"incomplete_run", "staged_run"}
    assert not report["ok"]

    monkeypatch.undo()
    assert _archive(env, sealed_docs[:2]).archived == 2
    report = run_fixity(env.store, env.sessions, store_report=False)
    # The dead run's locked folder stays (Object Lock), reported; its staging debris is gone.
    assert [p["problem"] for p in report["problems"]] == ["incomplete_run"]


def test_index_and_package_agree_on_archived_at_after_a_crash_mid_upload(env, sealed_docs, monkeypatch) -> None:
    real = env.store.put
    first = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    died: list[str] = []

    def put(key, data, **kw):  # the store dies on the first package upload
        if key.startswith("packages/") and not died:
            died.append(key)
            raise Died(key)
        return real(key, data, **kw)

    monkeypatch.setattr(env.store, "put", put)
    assert _archive(env, sealed_docs[:3], archived_at=first).count("failed") == 1
    monkeypatch.undo()
    assert _archive(env, sealed_docs[:3], archived_at=first + timedelta(days=2)).archived == 1
    with env.sessions() as s:
        rows = s.scalars(select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED)).all()
    assert len(rows) == 3
    for row in rows:
        with tarfile.open(fileobj=io.BytesIO(env.store.get(row.object_key, row.object_version))) as tf:
            meta = json.loads(next(tf.extractfile(m).read() for m in tf if m.name.endswith("/metadata.json")))
        at = row.archived_at if row.archived_at.tzinfo else row.archived_at.replace(tzinfo=UTC)
        assert datetime.fromisoformat(meta["archived_at"]) == at, row.archival_code
