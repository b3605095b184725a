"""The archive index (档案索引) in the SealFlow database: reserve, publish, search.

Rows are reserved ``pending`` (with their 档号) before any upload and published ``archived`` only
after the package and the run's signed manifest are written and verified: a search never shows a
record whose package is not complete. The unique 档号 and (证照标识, document SM3) make reruns
duplicate-free.

A licence's records form a chain (a declared 换发/补发 ``supersedes`` the record before it): asked by
证照标识 or 证照编号, lookups answer with the current record — the head of the chain — and
:func:`history` gives the whole chain; a 档号 names one record, current or superseded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from archive.models import ARCHIVED, PENDING, ArchiveRecord, ArchiveRun
from archive.retention import split_archival_code
from kernel.db import rows_where_in


def records_by_licence(session: Session, licence_ids: Iterable[str]) -> dict[str, list[ArchiveRecord]]:
    """证照标识 → every row of that licence (any state), oldest first."""
    out: dict[str, list[ArchiveRecord]] = {}
    for (row,) in rows_where_in(session, select(ArchiveRecord).order_by(ArchiveRecord.id), ArchiveRecord.licence_id,
                                (i for i in licence_ids if i)):
        out.setdefault(row.licence_id, []).append(row)
    return out


def ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, int]:
    """档号 → row id."""
    return dict(rows_where_in(session, select(ArchiveRecord.archival_code, ArchiveRecord.id),
                              ArchiveRecord.archival_code, codes))


def numbers_taken(session: Session, licence_numbers: Iterable[str]) -> dict[str, str]:
    """证照编号 → 证照标识 of archived or pending rows with those numbers."""
    return dict(rows_where_in(session, select(ArchiveRecord.licence_number, ArchiveRecord.licence_id),
                              ArchiveRecord.licence_number, licence_numbers))


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


def publish(session: Session, updates: Sequence[dict], superseded: Sequence[tuple[str, str]] = ()) -> None:
    """Mark rows archived (each dict has ``id`` and the final object facts) in one bulk update, and
    each (earlier 档号, new 档号) of ``superseded`` as superseded — in the caller's transaction, so the
    earlier record is marked exactly when the record superseding it becomes visible."""
    if updates:
        session.execute(update(ArchiveRecord), [{**u, "state": ARCHIVED} for u in updates])
    for old, new in superseded:
        marked = session.execute(update(ArchiveRecord).where(ArchiveRecord.archival_code == old,
                                                             ArchiveRecord.superseded_by.is_(None))
                                 .values(superseded_by=new).execution_options(synchronize_session=False))
        if marked.rowcount != 1:  # the unique ``supersedes`` makes this unreachable; never publish a fork
            raise ValueError(f"record {old} cannot be marked superseded by {new}: it is missing or already "
                             f"superseded")


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
    # Superseded records (earlier versions of a re-issued licence) are left out unless asked for, or
    # unless a 档号 is given (a 档号 names one record, whichever version it is).
    all_versions: bool = False


def search(session: Session, q: SearchQuery) -> list[ArchiveRecord]:
    """Archived records matching every given criterion (holder name: substring; the rest exact)."""
    stmt = select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED)
    if not (q.all_versions or q.archival_code):
        stmt = stmt.where(ArchiveRecord.superseded_by.is_(None))
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
    """An archived record by 档号 (that record, current or superseded), else by 证照标识 or 证照编号
    (the licence's current record: the latest, not superseded)."""
    row = session.scalars(select(ArchiveRecord).where(ArchiveRecord.archival_code == key,
                                                      ArchiveRecord.state == ARCHIVED)).first()
    if row is not None:
        return row
    for col in (ArchiveRecord.licence_id, ArchiveRecord.licence_number):
        row = session.scalars(select(ArchiveRecord).where(col == key, ArchiveRecord.state == ARCHIVED,
                                                          ArchiveRecord.superseded_by.is_(None))
                              .order_by(ArchiveRecord.id.desc()).limit(1)).first()
        if row is not None:
            return row
    return None


def history(session: Session, key: str) -> list[ArchiveRecord]:
    """Every archived record of the licence that ``key`` (档号, 证照标识 or 证照编号) names, oldest
    first: the original, then each 换发/补发 that superseded the one before."""
    row = find_one(session, key)
    if row is None:
        return []
    return list(session.scalars(select(ArchiveRecord).where(ArchiveRecord.licence_id == row.licence_id,
                                                            ArchiveRecord.state == ARCHIVED)
                                .order_by(ArchiveRecord.id)))


def iter_archived(session: Session, after_id: int, limit: int) -> list[ArchiveRecord]:
    """Archived rows with id > after_id, in id order (keyset pagination for fixity)."""
    return list(session.scalars(select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED,
                                                            ArchiveRecord.id > after_id)
                                .order_by(ArchiveRecord.id).limit(limit)))
