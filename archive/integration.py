"""What the pipeline's DAGs call: a batch's verified documents as archive inputs, the archiving
unit's signer, and the scheduled fixity run. No Airflow here (the DAGs stay thin)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from archive.service import ArchiveInput, ArchiveResult, archive_records
from archive.store import ObjectStore
from sealflow.settings import Settings


def inputs_for_batch(session: Session, batch_id: str) -> list[ArchiveInput]:
    """The batch's verified documents (state ``verified``) with what stamping recorded about them:
    the sealed file, the manifest fields, SM3, size and the verification result."""
    from pathlib import Path

    from stamping.batch.models import BatchDocument

    docs = session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id,
                                                       BatchDocument.state == "verified")
                           .order_by(BatchDocument.row))
    out = []
    for d in docs:
        path = Path(d.output_path)
        record = dict(d.record or {})
        out.append(ArchiveInput(path=str(path), record={k: str(v) for k, v in record.items() if v is not None},
                                format=d.format, sm3=d.output_sm3,
                                size=path.stat().st_size if path.exists() else None,
                                verification=d.verification or None, name=record.get("file") or path.name))
    return out


def archive_signer(settings: Settings):
    """The archiving unit's signer from the key store (key ``archive_key_id``, PIN ``archive_key_pin``)."""
    from stamping.keys.store import KeyStore

    return KeyStore(settings).signer(settings.archive_key_id, settings.archive_key_pin)


def trust_store(settings: Settings):
    """The trusted roots (and known intermediates) of ``SEALFLOW_TRUST_ROOTS``, or None."""
    if not settings.trust_roots:
        return None
    from stamping.pki.trust import TrustStore

    return TrustStore.from_paths(settings.trust_roots)


def archive_batch(settings: Settings, sessions: sessionmaker[Session], batch_id: str, *, signer=None,
                  store: ObjectStore | None = None) -> ArchiveResult:
    """Archive every verified document of a batch (idempotent: rerun it freely)."""
    store = store or ObjectStore(settings)
    store.ensure_bucket()
    with sessions() as s:
        inputs = inputs_for_batch(s, batch_id)
    return archive_records(inputs, batch_id=batch_id, settings=settings, store=store, sessions=sessions,
                           signer=signer or archive_signer(settings), trust=trust_store(settings))


def scheduled_fixity(settings: Settings, sessions: sessionmaker[Session]) -> dict:
    """One fixity pass over the archive; the report (also stored in the bucket) without the problem list."""
    from archive.fixity import run_fixity

    report = run_fixity(ObjectStore(settings, attempts=1), sessions)
    return {k: v for k, v in report.items() if k != "problems"} | {"problems_shown": report["problems"][:20]}
