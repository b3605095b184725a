"""What the pipeline's DAGs call: a batch's verified documents as archive inputs, the archiving
unit's signer, and the scheduled fixity run. No Airflow here (the DAGs stay thin).

The sealed files live in the work store (``kernel.workstore``: the work bucket), where stamping wrote
them — possibly on another machine. The archive's workers take local paths (process pool, mtime checks,
the malware scanner), so :func:`archive_batch` fetches each verified sealed object into a scratch folder
of its own, archives from there and removes the folder when it is done. The fetched bytes are not
trusted: the archive's 完整性 check compares their SM3 with the one recorded at stamping (``sm3`` of the
input), so a sealed object changed in the store is refused with the reason, never archived.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, sessionmaker

from archive.models import ArchivedBatch
from archive.replica import ReplicatedStore, archive_store
from archive.service import ArchiveInput, ArchiveResult, archive_records
from archive.store import ObjectStore
from kernel.db import transaction
from kernel.settings import Settings
from kernel.workstore import TRANSFER_THREADS, WorkStore


def inputs_for_batch(session: Session, batch_id: str, work: WorkStore, into: Path) -> list[ArchiveInput]:
    """The batch's verified documents (state ``verified``), each sealed object fetched from the work store
    into the folder ``into``, with what stamping recorded about them: the manifest fields, the SM3 of the
    sealed file (checked by the archive against the fetched bytes), size and the verification result.
    Fetched in parallel (the calls wait on the network); a missing object raises ``ObjectMissing``."""
    from stamping.batch.models import BatchDocument

    docs = [(d.row, d.file, d.format, d.output_path, d.output_sm3, dict(d.record or {}), d.verification or None)
            for d in session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id,
                                                                 BatchDocument.state == "verified")
                                     .order_by(BatchDocument.row))]

    def fetch(doc: tuple) -> ArchiveInput:
        row, file, doc_format, name, digest, record, verification = doc
        data = work.get(work.key_of(name))
        path = into / f"{row}.{doc_format or 'bin'}"
        path.write_bytes(data)
        return ArchiveInput(path=str(path), record={k: str(v) for k, v in record.items() if v is not None},
                            format=doc_format, sm3=digest, size=len(data), verification=verification,
                            name=record.get("file") or file)

    if not docs:
        return []
    with ThreadPoolExecutor(max_workers=min(TRANSFER_THREADS, len(docs))) as pool:
        return list(pool.map(fetch, docs))


ARCHIVING_UNIT = "SealFlow 归档单位"


def archive_signer(settings: Settings):
    """The archiving unit's (归档单位) signer — the one path the archive_batch DAG and the CLI
    (``sealflow archive eep``) share: key ``archive_key_id`` with its service PIN (configured, else
    generated), created with a certificate from the installation's CA on first use. A PIN mismatch
    is a configuration error that never counts a wrong-PIN try (see ``service_signer``)."""
    from gmpki.pki.certs import Subject
    from kernel.keys import ensure_service_signer, installation_ca

    def issue(public) -> bytes:
        return installation_ca(settings).issue(Subject(ARCHIVING_UNIT, organization="SealFlow"), public)

    return ensure_service_signer(settings, settings.archive_key_id, settings.archive_key_pin, issue)


def trust_store(settings: Settings):
    """The pipeline's trust (``kernel.keys.installation_trust``): the installation CA's root and
    intermediate plus ``SEALFLOW_TRUST_ROOTS``; None when there is neither."""
    from kernel.keys import installation_trust

    return installation_trust(settings)


def batches_to_archive(session: Session) -> list[str]:
    """Batches stamping has finished, with verified documents, that the archive has not finished
    with — oldest first. Read from the SealFlow database, not from the asset event that triggered
    a run: Airflow keeps one queued event per asset and DAG, so two batches finishing together
    trigger one run (issue 11, item 3)."""
    from stamping.batch.models import Batch, BatchDocument

    verified = exists().where(BatchDocument.batch_id == Batch.batch_id, BatchDocument.state == "verified")
    return list(session.scalars(
        select(Batch.batch_id).where(Batch.finished_at.is_not(None), Batch.status != "refused", verified,
                                     Batch.batch_id.not_in(select(ArchivedBatch.batch_id)))
        .order_by(Batch.finished_at, Batch.batch_id)))


class WorkCopiesRemoved(ValueError):
    """The batch is archived and its work copies were removed (``archive.work_purge``): nothing to archive."""


def archive_batch(settings: Settings, sessions: sessionmaker[Session], batch_id: str, *, work: WorkStore,
                  signer=None, store: ObjectStore | ReplicatedStore | None = None, trust=None,
                  scratch_root: Path | None = None) -> ArchiveResult:
    """Archive every verified document of a batch (idempotent: rerun it freely).

    ``work`` is the work store the sealed files are read from; they are archived from a scratch folder
    (under ``scratch_root``, else the system's temporary folder) that is removed when the run ends.

    ``trust`` is the trust store the pipeline verified the batch with: its CA certificates travel
    with each run so that a package verifies offline with only the root. When every document is
    archived, already archived or refused with reasons, the batch is recorded as finished (with the
    refused documents and their reasons, which its report shows); a document that failed for an
    infrastructure reason leaves it to the next run.
    """
    with sessions() as s:
        finished = s.get(ArchivedBatch, batch_id)
        if finished is not None and finished.work_purged_at is not None:
            raise WorkCopiesRemoved(f"batch {batch_id} was archived on {finished.finished_at:%Y-%m-%d} and its work "
                                    f"copies removed on {finished.work_purged_at:%Y-%m-%d}: nothing is left to "
                                    f"archive (its records: sealflow archive search --batch {batch_id})")
    store = store or archive_store(settings)
    store.ensure_bucket()  # both stores: an unreachable replica fails the run here, for a retry
    if scratch_root is not None:
        scratch_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="sealflow-archive-", dir=scratch_root))
    try:
        with sessions() as s:
            inputs = inputs_for_batch(s, batch_id, work, folder)
        result = archive_records(inputs, batch_id=batch_id, settings=settings, store=store, sessions=sessions,
                                 signer=signer or archive_signer(settings), trust=trust or trust_store(settings))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if result.count("failed") == 0:
        with transaction(sessions) as s:
            s.merge(ArchivedBatch(batch_id=batch_id, finished_at=datetime.now(UTC),
                                  archived=result.archived + result.count("already_archived"),
                                  refused=result.count("rejected"),
                                  not_archived=[{"licence_id": o.licence_id, "file": o.file, "reasons": o.reasons}
                                                for o in result.outcomes if o.status == "rejected"]))
    return result


def fixity_with_repair(settings: Settings, sessions: sessionmaker[Session], *, repair: bool = True) -> dict:
    """One fixity pass over the archive and its replica; bad copies repaired from good ones, each
    repair audited in the registry's audit log (the same path for the DAG and ``sealflow archive fixity``)."""
    from archive.fixity import run_fixity
    from stamping.registry import SealRegistry

    if not settings.replica_enabled:  # one store: nothing to repair from
        return run_fixity(archive_store(settings, attempts=1), sessions)
    registry = SealRegistry(sessions, settings)
    return run_fixity(archive_store(settings, attempts=1), sessions, repair=repair, audit=registry.audit,
                      audit_key=registry.audit_public_key())


def scheduled_fixity(settings: Settings, sessions: sessionmaker[Session]) -> dict:
    """One fixity pass over the archive; the report (also stored in the bucket) without the problem lists."""
    report = fixity_with_repair(settings, sessions)
    shown = {"problems_shown": report["problems"][:20]}
    if report.get("copies"):
        shown["copies"] = {k: v for k, v in report["copies"].items() if k != "problems"} | {
            "problems_shown": report["copies"]["problems"][:20]}
    return {k: v for k, v in report.items() if k not in ("problems", "copies")} | shown


def after_stamping(session: Session, batch_id: str):
    """What the archive did with a stamped batch, as its batch report shows it: each document's 档号
    (by the sealed file's SM3), whether the archive has finished with the batch, how many it refused
    and why (by file)."""
    from archive.models import ARCHIVED, ArchiveRecord
    from stamping.batch.report import AfterStamping

    codes = dict(session.execute(select(ArchiveRecord.document_sm3, ArchiveRecord.archival_code).where(
        ArchiveRecord.batch_id == batch_id, ArchiveRecord.state == ARCHIVED)).all())
    finished = session.get(ArchivedBatch, batch_id)
    reasons = {r["file"]: list(r.get("reasons") or []) for r in (finished.not_archived or [])} if finished else {}
    return AfterStamping(archival_codes=codes, archived=True if finished else None,
                         archive_refused=finished.refused if finished else 0, archive_reasons=reasons,
                         work_purged_at=finished.work_purged_at if finished else None)
