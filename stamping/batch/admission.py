"""What a batch must pass before its keeper is asked (用章审批): one run per batch, the seal belongs to
the unit that issues, and a licence is sealed once unless it is re-issued.

Decisions behind it:

- **One run per batch id.** The batch row is the lock: :func:`claim` inserts it with the run id in one
  transaction (the primary key makes two runs racing for the same id fail in the database, not by
  timing); a second run finds another run's claim and is refused with the owner's run id. The same run
  coming back (a retried task) finds its own claim and goes on.
- **The seal belongs to the unit that issues (发证机关).** Every accepted document's ``issuer_code`` must
  be the seal's unit's 统一社会信用代码, or a unit the seal is registered to serve
  (:class:`~stamping.batch.models.SealServedUnit`, registered by an administrator and audited). One
  foreign row refuses the batch: sealing part of a batch with the wrong unit's seal is the fault the
  rule exists for.
- **A licence (证照标识) is sealed once.** A licence already stamped or verified in another batch is
  quarantined with the batch that sealed it, unless its manifest row declares 换发 or 补发 with a reason;
  declared re-issues are returned so the caller writes one audit entry each, and the archive, which
  sees the declaration in the document's record, keeps both versions instead of skipping one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kernel.db import rows_where_in
from stamping.batch.models import Batch, BatchDocument, SealServedUnit

SEALED_STATES = ("stamped", "verified")


class AdmissionError(Exception):
    """The batch cannot go to its keeper; the message names the batch, the reason and what to do."""


def claim(sessions: sessionmaker[Session], *, batch_id: str, run_id: str, es_id: str, requester: str,
          source: str, work_dir: str) -> None:
    """Take the batch id for ``run_id``, or refuse when another run holds it."""
    owner = _owner(sessions, batch_id)
    if owner is None:
        try:
            with sessions() as session, session.begin():
                session.add(Batch(batch_id=batch_id, run_id=run_id, source=source, es_id=es_id, requester=requester,
                                  placement={}, options={}, status="claimed", work_dir=work_dir,
                                  created_at=datetime.now(UTC), report={}))
            return
        except IntegrityError:
            owner = _owner(sessions, batch_id)  # another run won the insert
    if owner is not None and owner[0] == run_id:
        return
    owner_run, status = owner if owner is not None else ("?", "?")
    raise AdmissionError(f"batch {batch_id} already belongs to run {owner_run or '(an earlier run)'} "
                         f"(status {status}); a batch is stamped by one run only: submit the documents under "
                         f"a new batch id, or clear the failed tasks of run {owner_run}")


def _owner(sessions: sessionmaker[Session], batch_id: str) -> tuple[str, str] | None:
    with sessions() as session:
        row = session.execute(select(Batch.run_id, Batch.status).where(Batch.batch_id == batch_id)).first()
        return (row[0], row[1]) if row is not None else None


def owner_run(session: Session, batch_id: str) -> str | None:
    return session.scalar(select(Batch.run_id).where(Batch.batch_id == batch_id))


# --- the seal's unit and the units it serves -------------------------------------------------------

def serve(session: Session, *, es_id: str, credit_code: str, name: str, actor: str) -> SealServedUnit:
    """Register a unit whose licences the seal may seal (the caller audits it in this transaction)."""
    existing = session.scalar(select(SealServedUnit).where(SealServedUnit.es_id == es_id,
                                                           SealServedUnit.credit_code == credit_code))
    if existing is not None:
        return existing
    row = SealServedUnit(es_id=es_id, credit_code=credit_code, name=name, registered_by=actor,
                         registered_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    return row


def served_units(session: Session, es_id: str) -> set[str]:
    return set(session.scalars(select(SealServedUnit.credit_code).where(SealServedUnit.es_id == es_id)))


def check_issuers(session: Session, *, batch_id: str, es_id: str, seal_unit_code: str, seal_unit_name: str) -> None:
    """Refuse the batch when an accepted document's issuer is neither the seal's unit nor one it serves."""
    allowed = {seal_unit_code} | served_units(session, es_id)
    rows = session.execute(select(BatchDocument.row, BatchDocument.record).where(
        BatchDocument.batch_id == batch_id, BatchDocument.state == "accepted")).all()
    foreign: dict[str, list[int]] = {}
    for row_no, record in rows:
        issuer = (record or {}).get("issuer_code", "") or "(no issuer_code)"
        if issuer not in allowed:
            foreign.setdefault(issuer, []).append(row_no)
    if foreign:
        listed = "; ".join(f"issuer {code} in rows {_rows(found)}" for code, found in sorted(foreign.items()))
        raise AdmissionError(
            f"batch {batch_id}: seal {es_id} belongs to {seal_unit_name} ({seal_unit_code}), but the manifest "
            f"names another issuer (发证机关): {listed}. Use the issuing unit's seal, or have an administrator "
            f"register the unit as served: `sealflow batch serve {es_id} --unit CODE --name NAME`")


def _rows(found: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in sorted(found)[:limit])
    return shown + (f" and {len(found) - limit} more" if len(found) > limit else "")


# --- a licence is sealed once ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reissue:
    """A licence sealed before and sealed again in this batch as a declared 换发/补发."""

    licence_id: str
    file: str
    kind: str
    reason: str
    previous_batch: str


def check_licences(session: Session, *, batch_id: str) -> list[Reissue]:
    """Quarantine documents whose licence another batch already sealed, unless declared re-issues.

    Returns the declared re-issues (the caller audits them). The caller's transaction commits.
    """
    accepted = session.execute(select(BatchDocument.id, BatchDocument.file, BatchDocument.record).where(
        BatchDocument.batch_id == batch_id, BatchDocument.state == "accepted")).all()
    by_licence = {(rec or {}).get("licence_id", ""): (doc_id, file, rec or {}) for doc_id, file, rec in accepted}
    by_licence.pop("", None)
    sealed = _sealed_before(session, batch_id, by_licence)
    quarantined: list[dict] = []
    reissues: list[Reissue] = []
    for licence_id, previous in sorted(sealed.items()):
        doc_id, file, record = by_licence[licence_id]
        if record.get("reissue"):
            reissues.append(Reissue(licence_id, file, record["reissue"], record.get("reissue_reason", ""), previous))
            continue
        quarantined.append({"id": doc_id, "state": "quarantined", "chunk": -1, "reasons": [
            f"licence {licence_id} was already sealed by SealFlow in batch {previous}; to seal it again, declare "
            f"换发 or 补发 in the manifest column reissue with the reason in reissue_reason"]})
    if quarantined:
        session.execute(update(BatchDocument), quarantined)
    return reissues


def _sealed_before(session: Session, batch_id: str, licences: dict[str, object]) -> dict[str, str]:
    """licence id → a batch (other than this one) where it was stamped or verified."""
    wanted = set(licences)
    if not wanted:
        return {}
    licence = BatchDocument.record["licence_id"].as_string()
    found: dict[str, str] = {}
    others = select(licence, BatchDocument.batch_id).where(BatchDocument.batch_id != batch_id,
                                                           BatchDocument.state.in_(SEALED_STATES))
    for lid, other in rows_where_in(session, others, licence, sorted(wanted)):
        found.setdefault(lid, other)
    return found
