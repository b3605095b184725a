"""Batches whose work copies may be cleaned up (archive.work_purge), for the tests: made by the real steps
(ingest, stamp, verify, finish — a stand-in stamper and verifier, the real keys and reports) in a work store, and
archived and filed as archive_batch and file_records write it into the database."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import update

from archive.models import ARCHIVED, ArchivedBatch, ArchiveRecord, ArchiveRun
from filing.outbox import SENT, OutboxRecord, enqueue
from kernel.db import transaction
from kernel.settings import Settings
from kernel.workstore import FolderWorkStore
from stamping.audit.log import AuditLog
from stamping.batch import process
from stamping.batch.models import BatchDocument
from stamping.batch.samples import MANIFEST_FIELDS, sample_rows
from stamping.placement import Placement

FILED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # when the test batches were archived and filed
DUE = FILED + timedelta(days=31)  # past the default retention (30 days)


def _verifier(data: bytes, path: str) -> SimpleNamespace:
    return SimpleNamespace(intact=True, signatures=[object()], verdict="valid", to_json=lambda: {"path": path})


def make_world(tmp_path: Path, sessions) -> SimpleNamespace:
    """A folder work store, the database's ``sessions``, settings and the audit log."""
    store = FolderWorkStore(tmp_path / "bucket")
    tools = process.BatchTools(session_factory=sessions, store=store,
                               stampers={"pdf": lambda src, *_: src + b"\n%sealed"}, verifiers={"pdf": _verifier},
                               signer_provider=lambda es_id: (object(), b"seal"), scratch_root=tmp_path / "scratch")
    settings = Settings(home=tmp_path / "var", kek="00" * 32)
    return SimpleNamespace(store=store, tools=tools, sessions=tools.session_factory, settings=settings,
                           audit=AuditLog(), tmp=tmp_path)


def stamped(world, batch_id: str, count: int = 3) -> dict[str, BatchDocument]:
    """A batch ingested, stamped, verified and finished by the real steps: its files in the work store."""
    rows = sample_rows(count, formats=("pdf",))
    folder = world.tmp / "inbox" / batch_id
    folder.mkdir(parents=True)
    for row in rows:
        (folder / row["file"]).write_bytes(b"%PDF-1.7\n" + row["licence_number"].encode())
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    (folder / "manifest.csv").write_text(buf.getvalue())
    process.ingest(world.tools, batch_id=batch_id, source=folder, es_id="es", requester="office",
                   placement=Placement.parse("anchor:（盖章）"))
    process.stamp_chunk(world.tools, batch_id, 0, actor="office")
    process.verify_chunk(world.tools, batch_id, 0)
    process.finish(world.tools, batch_id)
    with world.sessions() as session:
        return {d.file: d for d in process.documents(session, batch_id)}


def archived_and_filed(world, batch_id: str, *, at: datetime = FILED, refused: int = 0,
                        registration: str = SENT) -> None:
    """What archive_batch and file_records write for a batch: one archived record per verified document, the
    archiving run, the batch finished, and the run's registration (sent with the platform's receipt)."""
    manifest_sm3 = uuid.uuid4().hex * 2
    with transaction(world.sessions) as s:
        for d in process.documents(s, batch_id, ["verified"]):
            s.add(ArchiveRecord(archival_code=f"X001-ZZ·2026-Y-{uuid.uuid4().int % 10**6:06d}",
                                licence_id=f"{batch_id}-{d.row}", licence_number=str(d.row), holder_name="h",
                                holder_code="c", batch_id=batch_id, archived_at=at, retention="Y",
                                retain_until=at + timedelta(days=3650), object_key=f"packages/{d.row}.tar",
                                document_sm3=d.output_sm3, manifest_sm3=manifest_sm3, state=ARCHIVED))
        s.add(ArchiveRun(run_id=uuid.uuid4().hex, batch_id=batch_id, created_at=at, records=1, bytes=1,
                         manifest_key=f"runs/{batch_id}/manifest.json", manifest_sm3=manifest_sm3))
        s.add(ArchivedBatch(batch_id=batch_id, finished_at=at, archived=1, refused=refused,
                            not_archived=[{"licence_id": "l", "file": "f", "reasons": ["r"]}] if refused else []))
        record_id = enqueue(s, "archive.register", batch_id, {"batch_id": batch_id, "manifest_sm3": manifest_sm3},
                            now=at)
    with transaction(world.sessions) as s:
        s.execute(update(OutboxRecord).where(OutboxRecord.record_id == record_id).values(
            state=registration, sent_at=at if registration == SENT else None,
            receipt={"receipt": {"record_id": record_id}, "signature": "c2ln"} if registration == SENT else None))
