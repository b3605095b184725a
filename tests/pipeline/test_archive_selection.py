"""Which batches an archive_batch run archives (issue 11, item 3): the asset events only wake the
DAG up; every finished batch with verified documents that the archive has not finished with is
taken from the SealFlow database. The scheduler run of this is in test_e2e_archive_scheduler.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from sealflow.stack import sealflow_env


def _batch(batch_id: str, *, finished: bool, status: str, states: list[str]):
    from stamping.batch.models import Batch, BatchDocument

    now = datetime.now(UTC)
    batch = Batch(batch_id=batch_id, source="/in", es_id="1", requester="r", placement={}, options={},
                  status=status, work_dir="/w", created_at=now, finished_at=now if finished else None, report={})
    docs = [BatchDocument(batch_id=batch_id, file=f"{batch_id}-{n}.pdf", row=n, format="pdf", chunk=0,
                          record={"licence_id": f"{batch_id}-{n}"}, state=state, reasons=[])
            for n, state in enumerate(states)]
    return [batch, *docs]


@pytest.fixture
def archiving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from archive.models import ArchivedBatch
    from tests.pipeline.plugins_path import pipeline_module

    settings = Settings(home=tmp_path / "var", kek="00" * 32)
    for key, value in sealflow_env(settings).items():
        monkeypatch.setenv(key, value)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    with transaction(session_factory(engine)) as s:
        s.add_all(_batch("a", finished=True, status="done", states=["verified", "verified"])
                  + _batch("b", finished=True, status="done", states=["verified", "quarantined"])
                  + _batch("c", finished=True, status="done", states=["quarantined"])
                  + _batch("d", finished=False, status="stamping", states=["verified"])
                  + _batch("e", finished=True, status="refused", states=["accepted"])
                  + _batch("f", finished=True, status="done", states=["verified"]))
        s.add(ArchivedBatch(batch_id="f", finished_at=datetime.now(UTC), archived=1, refused=0))
    pipeline_module(settings)
    from sealflow_airflow import archiving

    yield archiving
    engine.dispose()


def _context(*events: str, conf: dict | None = None) -> dict:
    extras = [SimpleNamespace(extra={"batch_id": b, "status": "done"}) for b in events]
    return {"dag_run": SimpleNamespace(conf=conf or {}), "triggering_asset_events": {"stamped": extras}}


def test_one_event_archives_every_finished_unarchived_batch(archiving) -> None:
    assert archiving.batches_to_archive(_context("a")) == ["a", "b"]


def test_the_waiting_batches_are_archived_oldest_first_whichever_event_woke_the_run(archiving) -> None:
    """A re-issue (换发/补发) supersedes the licence's record archived before it: the batch sealed first
    is archived first, even when the later batch's event triggered the run."""
    assert archiving.batches_to_archive(_context("b")) == ["a", "b"]


def test_a_run_named_by_no_event_still_archives_what_waits(archiving) -> None:
    assert archiving.batches_to_archive(_context()) == ["a", "b"]


def test_a_run_for_one_batch_archives_only_that_batch(archiving) -> None:
    assert archiving.batches_to_archive(_context("a", conf={"batch_id": "b"})) == ["b"]
