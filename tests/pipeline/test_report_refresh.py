"""The batch report is written again by the Airflow glue once the batch's archive registration is filed:
``platform_hook.refresh_filed_reports`` (called after each drain of the filing outbox) picks the batches
filed by that drain, and their report then says 已备案 with the receipts. In-process, no stack: the work
store is a folder (``kernel.workstore.FolderWorkStore``), handed to the glue in place of the S3 one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from kernel.workstore import FolderWorkStore
from stamping.batch import process
from stamping.batch.models import BatchDocument
from stamping.batch.samples import write_batch
from stamping.placement import Placement
from tests.pipeline.plugins_path import pipeline_module


def test_a_drain_that_files_a_batch_writes_its_report_again_saying_filed(tmp_path: Path, monkeypatch) -> None:
    from filing.outbox import SENT, OutboxRecord, enqueue
    from stamping.registry.demo import bootstrap_demo
    from stamping.registry.service import SealRegistry

    settings = Settings(home=tmp_path / "var", kek="00" * 32)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    es_id = bootstrap_demo(SealRegistry(sessions, settings))["es_ids"]["official"]
    write_batch(tmp_path / "in", 3, bad=False)
    tools = process.BatchTools(session_factory=sessions, store=FolderWorkStore(tmp_path / "work"))
    process.ingest(tools, batch_id="filed-1", source=tmp_path / "in", es_id=es_id, requester="applicant",
                   placement=Placement(page=None, anchor_text="（盖章）"))
    with transaction(sessions) as session:
        session.execute(update(BatchDocument).values(state="verified", output_sm3="ab" * 32))
    report = tools.store.key_of(process.finish(tools, "filed-1")["report_html"])
    assert "待备案" in tools.store.get(report).decode()

    before = datetime.now(UTC)
    with transaction(sessions) as session:
        record_id = enqueue(session, "archive.register", "filed-1", {"documents": 3})
        enqueue(session, "archive.register", "other-batch", {"documents": 1})  # not sent: not refreshed
        session.flush()
        session.execute(update(OutboxRecord).where(OutboxRecord.record_id == record_id)
                        .values(state=SENT, sent_at=before + timedelta(seconds=1)))
    pipeline = pipeline_module(settings)
    monkeypatch.setattr(pipeline, "tools", lambda: tools)  # the glue's tools, with the folder store
    from sealflow_airflow.platform_hook import refresh_filed_reports

    assert refresh_filed_reports(sessions, before) == ["filed-1"]
    assert "已备案（回执 1/1）" in tools.store.get(report).decode()
    with sessions() as session:
        assert session.scalar(select(OutboxRecord.state).where(OutboxRecord.record_id == record_id)) == SENT
    engine.dispose()
