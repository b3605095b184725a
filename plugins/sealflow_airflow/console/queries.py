"""What the console shows, read from SealFlow's database (批次、档案、备案、印章、密钥库).

Plain read-only queries returning dicts, so pages, the JSON API and the metrics share one source.

Decisions:
- The steps of a batch (checked → approved → stamped → verified → archived → filed) are counted from
  the rows that prove them: documents by state, the approval's decision, archive records of the batch,
  and filing receipts of the batch's archive registration — not from task states, which say only that
  code ran.
- Queries take a session; the caller owns the transaction (read-only).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from archive.models import ArchivedBatch, ArchiveRecord, ArchiveRun, FixityRun
from filing.outbox import DEAD, PENDING, OutboxRecord
from stamping.batch.approval import MAX_ATTEMPTS
from stamping.batch.models import Batch, BatchDocument, SealUseApproval
from stamping.registry.models import Seal

FAILED_STATES = ("quarantined", "failed")
ALARM_STATUSES = ("refused", "failed", "incomplete", "not_approved")  # batch statuses that stand out
RENEWAL_WINDOW = timedelta(days=30)


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _state_counts(session: Session, batch_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = session.execute(select(BatchDocument.batch_id, BatchDocument.state, func.count())
                           .where(BatchDocument.batch_id.in_(batch_ids))
                           .group_by(BatchDocument.batch_id, BatchDocument.state))
    out: dict[str, dict[str, int]] = {b: {} for b in batch_ids}
    for batch_id, state, n in rows:
        out[batch_id][state] = n
    return out


def _archived_counts(session: Session, batch_ids: list[str]) -> dict[str, int]:
    rows = session.execute(select(ArchiveRecord.batch_id, func.count())
                           .where(ArchiveRecord.batch_id.in_(batch_ids)).group_by(ArchiveRecord.batch_id))
    return dict(rows.all())


def _filing(session: Session, batch_ids: list[str]) -> dict[str, dict[str, int]]:
    rows = session.execute(select(OutboxRecord.subject, OutboxRecord.state, func.count())
                           .where(OutboxRecord.subject.in_(batch_ids))
                           .group_by(OutboxRecord.subject, OutboxRecord.state))
    out: dict[str, dict[str, int]] = {}
    for subject, state, n in rows:
        out.setdefault(subject, {})[state] = n
    return out


def _approvals(session: Session, batch_ids: list[str]) -> dict[str, SealUseApproval]:
    rows = session.scalars(select(SealUseApproval).where(SealUseApproval.batch_id.in_(batch_ids))
                           .order_by(SealUseApproval.expires_at))
    return {a.batch_id: a for a in rows}  # the latest request of each batch wins


def _seals(session: Session, es_ids: set[str]) -> dict[str, Seal]:
    return {s.es_id: s for s in session.scalars(select(Seal).where(Seal.es_id.in_(es_ids)))}


def batches(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """The newest batches with their steps' counts; ``alarm`` marks refused/failed ones."""
    rows = list(session.scalars(select(Batch).order_by(Batch.created_at.desc()).limit(limit)))
    ids = [b.batch_id for b in rows]
    states, archived = _state_counts(session, ids), _archived_counts(session, ids)
    filing, approvals = _filing(session, ids), _approvals(session, ids)
    seals = _seals(session, {b.es_id for b in rows})
    out = []
    for b in rows:
        counts = states[b.batch_id]
        documents = sum(counts.values())
        bad = sum(counts.get(s, 0) for s in FAILED_STATES)
        approval = approvals.get(b.batch_id)
        seal = seals.get(b.es_id)
        steps = {
            "checked": documents - counts.get("quarantined", 0),
            "approved": approval.state if approval else "",
            "stamped": counts.get("stamped", 0) + counts.get("verified", 0),
            "verified": counts.get("verified", 0),
            "archived": archived.get(b.batch_id, 0),
            "filed": filing.get(b.batch_id, {}).get("sent", 0),
        }
        out.append({
            "batch_id": b.batch_id, "requester": b.requester, "status": b.status,
            "es_id": b.es_id, "seal_name": seal.name if seal else "", "keeper": seal.keeper if seal else "",
            "created_at": _iso(b.created_at), "finished_at": _iso(b.finished_at),
            "documents": documents, "quarantined": counts.get("quarantined", 0), "failed": counts.get("failed", 0),
            "steps": steps, "alarm": b.status in ALARM_STATUSES or bad > 0,
        })
    return out


def batch_detail(session: Session, batch_id: str) -> dict[str, Any] | None:
    """One batch with its documents, quarantined/failed rows first, each with 档号 and filing state."""
    listed = [b for b in batches(session, limit=10_000) if b["batch_id"] == batch_id]
    if not listed:
        return None
    docs = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id)
                                .order_by(BatchDocument.row)))
    codes = {r.document_sm3: r for r in session.scalars(
        select(ArchiveRecord).where(ArchiveRecord.batch_id == batch_id))}
    receipts = [r.receipt for r in session.scalars(
        select(OutboxRecord).where(OutboxRecord.subject == batch_id, OutboxRecord.state == "sent"))]
    finished = session.get(ArchivedBatch, batch_id)
    refused = {r["file"]: r.get("reasons") or [] for r in (finished.not_archived or [])} if finished else {}
    documents = []
    for d in docs:
        archived = codes.get(d.output_sm3) if d.output_sm3 else None
        not_archived = [f"not archived: {r}" for r in refused.get(d.file, [])] if d.state == "verified" else []
        documents.append({
            "row": d.row, "file": d.file, "state": d.state, "reasons": list(d.reasons or []) + not_archived,
            "licence_number": (d.record or {}).get("licence_number", ""),
            "holder": (d.record or {}).get("holder_name", ""),
            "verdict": (d.verification or {}).get("verdict", ""),
            "warnings": (d.verification or {}).get("warnings", []),
            "archival_code": archived.archival_code if archived else "",
        })
    documents.sort(key=lambda d: (d["state"] not in FAILED_STATES, d["row"]))
    return {**listed[0], "documents": documents, "receipts": receipts}


def record_detail(row: ArchiveRecord) -> dict[str, Any]:
    """One archive record as its page shows it (every fact of the index row, versions included)."""
    return {"archival_code": row.archival_code, "licence_id": row.licence_id, "licence_number": row.licence_number,
            "holder": row.holder_name, "batch_id": row.batch_id, "archived_at": _iso(row.archived_at),
            "retain_until": _iso(row.retain_until), "retention": row.retention,
            "document_name": row.document_name, "package_size": row.package_size, "state": row.state,
            "version": row.object_version or "", "supersedes": row.supersedes or "",
            "superseded_by": row.superseded_by or "", "reissue": row.reissue, "reissue_reason": row.reissue_reason}


def search_archive(session: Session, text: str = "", day: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Archive records whose 证照编号, 证照标识, holder or 档号 contain ``text``, archived on ``day`` — newest
    first, so a re-issued licence's current record comes before the ones it superseded (each names its
    successor in ``superseded_by``)."""
    query = select(ArchiveRecord).order_by(ArchiveRecord.archived_at.desc()).limit(limit)
    if text:
        like = f"%{text}%"
        query = query.where(or_(ArchiveRecord.licence_number.like(like), ArchiveRecord.licence_id.like(like),
                                ArchiveRecord.holder_name.like(like), ArchiveRecord.archival_code.like(like)))
    if day:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        query = query.where(ArchiveRecord.archived_at >= start, ArchiveRecord.archived_at < start + timedelta(days=1))
    return [{"archival_code": r.archival_code, "licence_id": r.licence_id, "licence_number": r.licence_number,
             "holder": r.holder_name, "batch_id": r.batch_id, "archived_at": _iso(r.archived_at),
             "state": r.state, "package_size": r.package_size, "document_name": r.document_name,
             "supersedes": r.supersedes or "", "superseded_by": r.superseded_by or ""}
            for r in session.scalars(query)]


def seals_expiring(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Active seals expiring within 30 days, and seals already past their end (续期提醒)."""
    now = now or datetime.now(UTC)
    rows = session.scalars(select(Seal).where(Seal.status.in_(("active", "expired")),
                                              Seal.valid_end < now + RENEWAL_WINDOW).order_by(Seal.valid_end))
    out = []
    for s in rows:
        end = s.valid_end if s.valid_end.tzinfo else s.valid_end.replace(tzinfo=UTC)
        out.append({"es_id": s.es_id, "name": s.name, "keeper": s.keeper, "valid_end": _iso(end),
                    "days_left": (end - now).days, "expired": end <= now})
    return out


def outbox(session: Session) -> dict[str, Any]:
    counts = dict(session.execute(select(OutboxRecord.state, func.count()).group_by(OutboxRecord.state)).all())
    dead = [{"record_id": r.record_id, "kind": r.kind, "subject": r.subject, "attempts": r.attempts,
             "last_error": r.last_error or ""}
            for r in session.scalars(select(OutboxRecord).where(OutboxRecord.state == DEAD).limit(100))]
    return {"counts": counts, "backlog": counts.get(PENDING, 0) + counts.get("failed", 0), "dead": dead}


def archive_totals(session: Session) -> dict[str, int]:
    records, size = session.execute(select(func.count(), func.coalesce(func.sum(ArchiveRecord.package_size), 0))).one()
    runs = session.execute(select(func.count()).select_from(ArchiveRun)).scalar_one()
    return {"records": records, "bytes": int(size), "runs": runs}


def last_fixity(session: Session) -> FixityRun | None:
    """The latest fixity pass the archive recorded (``archive.fixity.record_run``), or None."""
    return session.scalar(select(FixityRun).order_by(FixityRun.checked_at.desc(), FixityRun.id.desc()).limit(1))


def batches_by_status(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Batch.status, func.count()).group_by(Batch.status)).all())


def seals_by_status(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Seal.status, func.count()).group_by(Seal.status)).all())


def days_to_expiry(session: Session, now: datetime | None = None) -> dict[str, tuple[str, int]]:
    now = now or datetime.now(UTC)
    out = {}
    for s in session.scalars(select(Seal).where(Seal.status == "active")):
        end = s.valid_end if s.valid_end.tzinfo else s.valid_end.replace(tzinfo=UTC)
        out[s.es_id] = (s.name, (end - now).days)
    return out


def document_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """(batch_id, es_id, state, n) for every batch and document state."""
    rows = session.execute(select(BatchDocument.batch_id, Batch.es_id, BatchDocument.state, func.count())
                           .join(Batch, Batch.batch_id == BatchDocument.batch_id)
                           .group_by(BatchDocument.batch_id, Batch.es_id, BatchDocument.state))
    return [tuple(r) for r in rows]


def verification_failures(session: Session) -> dict[str, int]:
    """Failed checks by name over documents that failed verification."""
    out: dict[str, int] = {}
    for verification in session.scalars(select(BatchDocument.verification).where(BatchDocument.state == "failed")):
        for sig in (verification or {}).get("signatures", []):
            for check in sig.get("checks", []):
                if not check.get("ok", True):
                    out[check.get("name", "unknown")] = out.get(check.get("name", "unknown"), 0) + 1
        if (verification or {}).get("error"):
            out["error"] = out.get("error", 0) + 1
    return out


@lru_cache(maxsize=64)
def seal_picture_uri(seal_der: bytes) -> str:
    """The seal's picture as a ``data:`` URI (no extra route to protect); an OFD picture is drawn to PNG.
    Empty when the picture cannot be shown (the page then shows the name and es_id only)."""
    from stamping.ofd.package import OfdError
    from stamping.ofd.render import render_ofd_page
    from stamping.ses.codec import parse_seal

    try:
        seal = parse_seal(seal_der)
        kind = (seal.picture_type or "").lower()
        if kind == "ofd":
            data, mime = render_ofd_page(seal.picture_data, "<seal picture>.ofd", dpi=150).png, "image/png"
        elif kind in ("png", "gif", "bmp"):
            data, mime = seal.picture_data, f"image/{kind}"
        elif kind in ("jpg", "jpeg"):
            data, mime = seal.picture_data, "image/jpeg"
        else:
            return ""
    except (ValueError, OfdError, IndexError):
        return ""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def inbox(session: Session, keeper: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The pending 用章审批 of one keeper (only theirs), soonest expiry first. Never the code or its MAC."""
    now = now or datetime.now(UTC)
    rows = list(session.scalars(select(SealUseApproval).where(SealUseApproval.keeper == keeper,
                                                              SealUseApproval.state == "pending")
                                .order_by(SealUseApproval.expires_at)))
    seals = _seals(session, {r.es_id for r in rows})
    out = []
    for r in rows:
        seal = seals.get(r.es_id)
        expires = r.expires_at if r.expires_at.tzinfo else r.expires_at.replace(tzinfo=UTC)
        out.append({
            "batch_id": r.batch_id, "run_id": r.run_id, "es_id": r.es_id, "seal_name": seal.name if seal else "",
            "picture": seal_picture_uri(seal.seal_der) if seal else "", "documents": r.documents,
            "requester": r.requester, "expires_at": _iso(expires),
            "seconds_left": max(0, int((expires - now).total_seconds())),
            "tries_left": max(0, MAX_ATTEMPTS - r.attempts),
        })
    return out


def dead_letter(session: Session, record_id: str) -> OutboxRecord | None:
    return session.scalar(select(OutboxRecord).where(OutboxRecord.record_id == record_id, OutboxRecord.state == DEAD))
