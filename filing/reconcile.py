"""Reconciliation (对账): our stored receipts against the platform's own listing, and outbox status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from filing.outbox import DEAD, SENT, STATES, OutboxRecord, utcnow


@dataclass
class Reconciliation:
    ours_sent: int = 0
    platform_listed: int = 0
    missing_at_platform: list[str] = field(default_factory=list)  # we hold a receipt, the platform lists nothing
    not_marked_sent: list[str] = field(default_factory=list)  # the platform has it, our outbox has not sent it
    unknown_to_us: list[str] = field(default_factory=list)  # the platform lists a record id we never queued
    mismatched: list[dict[str, str]] = field(default_factory=list)  # digest or receipt id differs

    @property
    def ok(self) -> bool:
        return not (self.missing_at_platform or self.unknown_to_us or self.mismatched)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def reconcile(session: Session, listing: Any, page: int = 2000) -> Reconciliation:
    """Compare ``listing`` (an iterable of the platform's items) with our sent records.

    Ours are read page by page; only record ids and digests are kept in memory.
    """
    ours: dict[str, tuple[str, str]] = {}
    last_id = 0
    while True:
        rows = session.execute(
            select(OutboxRecord.id, OutboxRecord.record_id, OutboxRecord.receipt)
            .where(OutboxRecord.state == SENT, OutboxRecord.id > last_id)
            .order_by(OutboxRecord.id)
            .limit(page)
        ).all()
        if not rows:
            break
        for row_id, record_id, receipt in rows:
            body = (receipt or {}).get("receipt", {})
            ours[record_id] = (str(body.get("record_sm3", "")), str(body.get("receipt_id", "")))
            last_id = row_id
    result = Reconciliation(ours_sent=len(ours))
    seen: set[str] = set()
    for item in listing:
        result.platform_listed += 1
        record_id = item["record_id"]
        seen.add(record_id)
        mine = ours.get(record_id)
        if mine is None:
            known = session.scalar(select(OutboxRecord.state).where(OutboxRecord.record_id == record_id))
            (result.not_marked_sent if known else result.unknown_to_us).append(record_id)
            continue
        if mine != (item["record_sm3"], item["receipt_id"]):
            result.mismatched.append(
                {
                    "record_id": record_id,
                    "ours": f"{mine[0]} {mine[1]}",
                    "platform": f"{item['record_sm3']} {item['receipt_id']}",
                }
            )
    result.missing_at_platform = sorted(set(ours) - seen)
    return result


def status(session: Session, now: datetime | None = None, dead_limit: int = 50) -> dict[str, Any]:
    """The outbox by state, what is due, held back, and the dead letters with their reasons."""
    at = now or utcnow()
    counts = dict.fromkeys(STATES, 0)
    for state, count in session.execute(select(OutboxRecord.state, func.count()).group_by(OutboxRecord.state)):
        counts[state] = count
    o = OutboxRecord
    earlier = aliased(OutboxRecord)
    unsent = o.state != SENT
    blocked = session.scalar(
        select(func.count()).where(
            unsent,
            exists().where(
                and_(earlier.subject == o.subject, earlier.subject_seq < o.subject_seq, earlier.state == DEAD)
            ),
        )
    )
    due = session.scalar(select(func.count()).where(o.state.in_(("pending", "failed")), o.next_attempt_at <= at))
    oldest = session.scalar(select(func.min(o.created_at)).where(unsent, o.state != DEAD))
    dead = [
        {"record_id": r.record_id, "kind": r.kind, "subject": r.subject, "attempts": r.attempts, "reason": r.last_error}
        for r in session.scalars(select(o).where(o.state == DEAD).order_by(o.id).limit(dead_limit))
    ]
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "due_now": due,
        "held_by_dead_letter": blocked,
        "oldest_unsent_created_at": oldest.isoformat() if oldest else None,
        "dead": dead,
    }
