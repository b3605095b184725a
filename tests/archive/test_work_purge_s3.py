"""The work bucket's clean-up on the real S3 (the embedded SeaweedFS), after the real archive: a batch whose
sealed certificates the archive holds (四性检测, Object Lock) and the platform has filed loses its received and
sealed files through ``sealflow batch purge-work`` — and the archive, the batch's manifest and report, and a
neighbour batch keep every object. ``sealflow batch status`` and ``report`` then still answer sensibly."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from archive.integration import WorkCopiesRemoved, archive_batch
from archive.models import ArchivedBatch, ArchiveRecord, ArchiveRun
from archive.work_purge import ACTION
from filing.outbox import SENT, OutboxRecord, enqueue
from gmpki.gm.sm3 import sm3, sm3_hex
from kernel.db import transaction
from kernel.objectstore import s3_client
from kernel.settings import get_settings
from kernel.workstore import S3WorkStore
from sealflow.cli import main
from sealflow.stack.paths import sealflow_env
from stamping.audit.models import AuditEntry
from stamping.batch import keys
from stamping.batch.models import Batch, BatchDocument

pytestmark = pytest.mark.stack


def _put_batch(env, work: S3WorkStore, batch_id: str, docs) -> None:
    """A stamped and verified batch as the pipeline leaves it: received copy, sealed file and provenance
    note of each document, manifest and reports in the work bucket; its rows in the database."""
    now = datetime.now(UTC)
    with transaction(env.sessions) as s:
        s.add(Batch(batch_id=batch_id, source="s3://office/x/", es_id="es-1", requester="office", status="done",
                    work_dir=work.name(keys.batch_prefix(batch_id)), created_at=now, finished_at=now))
        for row, d in enumerate(docs):
            received = b"%PDF-1.7 as the office sent it " + d.sm3.encode()
            doc = BatchDocument(batch_id=batch_id, file=d.row["file"], row=row, format=d.row["format"],
                                record=d.to_input().record, state="verified", input_sm3=sm3(received).hex(),
                                output_sm3=d.sm3, verification=d.verification)
            work.put(keys.input_key(batch_id, doc.input_sm3), received)
            work.put(keys.note_key(doc), json.dumps({"batch_id": batch_id, "output_sm3": d.sm3}).encode())
            work.put(keys.sealed_key(doc), d.path.read_bytes())
            doc.output_path = work.name(keys.sealed_key(doc))
            s.add(doc)
    for name in ("manifest.csv", *keys.REPORT_NAMES):
        work.put(keys.batch_file_key(batch_id, name), f"{name} of {batch_id}".encode())


def _filed(env, batch_id: str, at: datetime) -> None:
    """What file_records leaves: each archiving run's registration sent, with the platform's receipt (the
    archive glue queues one per run); and the clock set back so the retention has passed."""
    with transaction(env.sessions) as s:
        for run in s.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)):
            enqueue(s, "archive.register", batch_id, {"batch_id": batch_id, "manifest_sm3": run.manifest_sm3})
    with transaction(env.sessions) as s:
        s.execute(update(OutboxRecord).where(OutboxRecord.subject == batch_id).values(
            state=SENT, sent_at=at, receipt={"receipt": {"ok": True}, "signature": "c2ln"}))
        s.execute(update(ArchivedBatch).where(ArchivedBatch.batch_id == batch_id).values(finished_at=at))


def _keys(client, bucket: str, prefix: str = "") -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", []) or []}


def _versions(client, bucket: str) -> set[tuple[str, str]]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return {(v["Key"], v["VersionId"]) for page in pages for v in page.get("Versions", []) or []}


@pytest.fixture
def cli(env, monkeypatch):
    """``sealflow`` commands on the stack and this test's database (the CLI refuses a readable database)."""
    for name, value in sealflow_env(env.settings).items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield main
    get_settings.cache_clear()


def test_on_seaweedfs_an_archived_and_filed_batch_loses_its_work_copies_and_nothing_else(env, sealed_docs, cli,
                                                                                         capsys, tmp_path):
    client = s3_client(env.settings)
    work = S3WorkStore(client, env.settings.work_bucket)
    batch_id = f"purge-{uuid.uuid4().hex[:8]}"
    neighbour = batch_id + "0"  # its folder starts with the purged batch's name
    _put_batch(env, work, batch_id, sealed_docs[:3])
    _put_batch(env, work, neighbour, sealed_docs[3:4])
    result = archive_batch(env.settings, env.sessions, batch_id, work=work, signer=env.signer, store=env.store,
                           trust=env.trust, scratch_root=tmp_path / "scratch")
    assert result.archived == 3, result.to_json()
    _filed(env, batch_id, datetime.now(UTC) - timedelta(days=31))
    theirs = _keys(client, env.settings.work_bucket, keys.batch_prefix(neighbour))
    archive = _versions(client, env.settings.archive_bucket)
    for db in tmp_path.glob("index.db*"):
        db.chmod(0o600)

    assert cli(["batch", "purge-work", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert [(b["batch_id"], b["state"], b["objects"]) for b in dry["batches"]] == [(batch_id, "would_purge", 9)]
    assert len(_keys(client, env.settings.work_bucket, keys.batch_prefix(batch_id))) == 12

    assert cli(["batch", "purge-work"]) == 0
    assert f"purged         {batch_id}: 9 objects" in capsys.readouterr().out
    assert _keys(client, env.settings.work_bucket, keys.batch_prefix(batch_id)) == {
        keys.batch_file_key(batch_id, name) for name in ("manifest.csv", "report.json", "report.html")}
    assert _keys(client, env.settings.work_bucket, keys.batch_prefix(neighbour)) == theirs
    assert _versions(client, env.settings.archive_bucket) == archive  # the archive: not one version touched
    with env.sessions() as s:
        for record in s.scalars(select(ArchiveRecord).where(ArchiveRecord.batch_id == batch_id)):
            assert sm3_hex(env.store.get(record.object_key)) == record.package_sm3  # each package still reads
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()
        assert entry.payload["batch_id"] == batch_id and entry.payload["objects"] == 9

    # What a person asks afterwards still answers, without reaching for a sealed file.
    assert cli(["batch", "status", batch_id]) == 0
    status = capsys.readouterr().out
    assert "archived          3 / 3" in status and "work files: removed" in status
    assert cli(["batch", "report", batch_id]) == 0
    assert "工作副本" in capsys.readouterr().out  # the report was written again, saying so
    with pytest.raises(WorkCopiesRemoved, match="nothing is left to archive"):
        archive_batch(env.settings, env.sessions, batch_id, work=work, signer=env.signer, store=env.store,
                      trust=env.trust)
    assert cli(["batch", "purge-work", "--batch", batch_id]) == 0  # again: nothing more, no second entry
    assert "already_purged" in capsys.readouterr().out
    with env.sessions() as s:
        assert len(s.scalars(select(AuditEntry).where(AuditEntry.action == ACTION)).all()) == 1
