"""The archive index (档案索引) in the SealFlow database: reserve, publish, search.

Rows are reserved ``pending`` (with their 档号) before any upload and published ``archived`` only
after the package and the run's signed manifest are written and verified: a search never shows a
record whose package is not complete. The unique 证照标识 and 档号 make reruns duplicate-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from archive.models import ARCHIVED, PENDING, ArchiveRecord, ArchiveRun
from archive.retention import split_archival_code

IN_CHUNK = 500  # keeps IN (...) lists within every database's parameter limit


def existing_by_licence(session: Session, licence_ids: Iterable[str]) -> dict[str, ArchiveRecord]:
    ids = list(dict.fromkeys(licence_ids))
    out: dict[str, ArchiveRecord] = {}
    for i in range(0, len(ids), IN_CHUNK):
        part = ids[i:i + IN_CHUNK]
        for row in session.scalars(select(ArchiveRecord).where(ArchiveRecord.licence_id.in_(part))):
            out[row.licence_id] = row
    return out


def numbers_taken(session: Session, licence_numbers: Iterable[str]) -> dict[str, str]:
    """证照编号 → 证照标识 of archived or pending rows with those numbers."""
    nums = list(dict.fromkeys(licence_numbers))
    out: dict[str, str] = {}
    for i in range(0, len(nums), IN_CHUNK):
        part = nums[i:i + IN_CHUNK]
        q = select(ArchiveRecord.licence_number, ArchiveRecord.licence_id).where(
            ArchiveRecord.licence_number.in_(part))
        out.update(dict(session.execute(q).tuples().all()))
    return out


def last_item_number(session: Session, prefix: str) -> int:
    """The highest 件号 used under a 档号 prefix (0 when none)."""
    codes = session.scalars(
        select(ArchiveRecord.archival_code).where(ArchiveRecord.archival_code.like(prefix + "%"))
        .order_by(func.length(ArchiveRecord.archival_code).desc(), ArchiveRecord.archival_code.desc()).limit(1)
    ).all()
    return split_archival_code(codes[0])[1] if codes else 0


def item_numbers(session: Session, prefix: str) -> list[int]:
    codes = session.scalars(select(ArchiveRecord.archival_code).where(ArchiveRecord.archival_code.like(prefix + "%")))
    return sorted(split_archival_code(c)[1] for c in codes)


def reserve(session: Session, rows: Sequence[dict]) -> None:
    """Insert pending rows in one statement (fields of :class:`ArchiveRecord`)."""
    if rows:
        session.execute(insert(ArchiveRecord), [{**r, "state": PENDING} for r in rows])


def publish(session: Session, updates: Sequence[dict]) -> None:
    """Mark rows archived (each dict has ``id`` and the final object facts) in one bulk update."""
    if updates:
        session.execute(update(ArchiveRecord), [{**u, "state": ARCHIVED} for u in updates])


def add_run(session: Session, run: ArchiveRun) -> None:
    session.merge(run)


@dataclass
class SearchQuery:
    licence_number: str = ""
    licence_id: str = ""
    holder_name: str = ""
    holder_code: str = ""
    archival_code: str = ""
    batch_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def search(session: Session, q: SearchQuery) -> list[ArchiveRecord]:
    """Archived records matching every given criterion (holder name: substring; the rest exact)."""
    stmt = select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED)
    if q.licence_number:
        stmt = stmt.where(ArchiveRecord.licence_number == q.licence_number)
    if q.licence_id:
        stmt = stmt.where(ArchiveRecord.licence_id == q.licence_id)
    if q.holder_name:
        stmt = stmt.where(ArchiveRecord.holder_name.contains(q.holder_name, autoescape=True))
    if q.holder_code:
        stmt = stmt.where(ArchiveRecord.holder_code == q.holder_code)
    if q.archival_code:
        stmt = stmt.where(ArchiveRecord.archival_code == q.archival_code)
    if q.batch_id:
        stmt = stmt.where(ArchiveRecord.batch_id == q.batch_id)
    if q.since:
        stmt = stmt.where(ArchiveRecord.archived_at >= q.since)
    if q.until:
        stmt = stmt.where(ArchiveRecord.archived_at < q.until)
    return list(session.scalars(stmt.order_by(ArchiveRecord.archival_code).limit(q.limit)))


def find_one(session: Session, key: str) -> ArchiveRecord | None:
    """An archived record by 档号, 证照标识 or 证照编号 (the first that matches)."""
    for col in (ArchiveRecord.archival_code, ArchiveRecord.licence_id, ArchiveRecord.licence_number):
        row = session.scalars(select(ArchiveRecord).where(col == key, ArchiveRecord.state == ARCHIVED)
                              .order_by(ArchiveRecord.id).limit(1)).first()
        if row is not None:
            return row
    return None


def iter_archived(session: Session, after_id: int, limit: int) -> list[ArchiveRecord]:
    """Archived rows with id > after_id, in id order (keyset pagination for fixity)."""
    return list(session.scalars(select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED,
                                                            ArchiveRecord.id > after_id)
                                .order_by(ArchiveRecord.id).limit(limit)))
