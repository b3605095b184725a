"""The seal_maintenance job's purge_work task: the Airflow glue (``sealflow_airflow.maintenance.purge_work``)
over the composition root — its database, the registry's audit log, the work store (a folder here, handed to
the root in place of the S3 one) — removes what is due, audits it as the job, and fails its run when a batch
could not be dealt with, so that the failure shows and the next try finishes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from archive.models import ArchivedBatch
from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from stamping.audit.models import AuditEntry
from tests.archive.work_batches import archived_and_filed, make_world, stamped
from tests.pipeline.plugins_path import pipeline_module


def test_the_hourly_job_removes_what_is_due_audits_it_and_fails_on_what_it_could_not(tmp_path: Path, monkeypatch):
    settings = Settings(home=tmp_path / "var", kek="00" * 32, audit_key_pin="audit-pin-purge")
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    world = make_world(tmp_path, session_factory(engine))
    for batch_id in ("due", "stuck"):
        stamped(world, batch_id)
        archived_and_filed(world, batch_id, at=datetime.now(UTC) - timedelta(days=31))
    pipeline_module(settings)
    from sealflow_airflow import maintenance, root

    monkeypatch.setattr(root, "work_store", lambda: world.store)
    real_delete = world.store.delete_many

    def failing_for_stuck(names: list[str]) -> None:
        if any(name.startswith("batches/stuck/") for name in names):
            raise ConnectionError("the work bucket stopped answering")
        real_delete(names)

    monkeypatch.setattr(world.store, "delete_many", failing_for_stuck)
    with pytest.raises(RuntimeError, match=r"1 batch\(es\) not removed, first stuck: ConnectionError"):
        maintenance.purge_work()
    monkeypatch.setattr(world.store, "delete_many", real_delete)
    summary = maintenance.purge_work()  # the retry
    assert summary["counts"]["purged"] == 1 and summary["batches"][0]["batch_id"] == "stuck"
    with world.sessions() as s:
        assert all(b.work_purged_at for b in s.scalars(select(ArchivedBatch)))
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "work.purge")).all()
    assert [(e.actor, e.payload["batch_id"], e.payload["trigger"]) for e in entries] == [
        ("work-purge", "due", "seal_maintenance"), ("work-purge", "stuck", "seal_maintenance")]
    with transaction(world.sessions) as s:  # nothing more to do: a quiet run
        s.execute(update(ArchivedBatch).values(finished_at=datetime.now(UTC) - timedelta(days=400)))
    assert maintenance.purge_work()["counts"] == {"purged": 0, "would_purge": 0, "held": 0, "already_purged": 0,
                                                  "error": 0}
    engine.dispose()
