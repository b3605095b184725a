"""Drain the filing outbox to the platform (备案发送): in order per subject, with backoff, safely in parallel.

Rules, in short:

* a record is claimed before it is sent (a lease: ``lease_owner`` + ``lease_until``; PostgreSQL
  also skips rows another dispatcher has locked), so two dispatchers running at once never send
  the same record at the same time; a crashed dispatcher's lease expires;
* only the head of each subject is eligible: record ``n+1`` of a seal waits until ``n`` is sent
  (a dead-lettered record therefore holds back the later ones of its seal until an operator acts);
* a record is ``sent`` only with a checked receipt; a 4xx with a reason makes it ``dead``; anything
  else (5xx, timeouts, dropped connections, bad receipts) makes it ``failed`` with the next try
  after a bounded exponential backoff with jitter; past ``max_attempts`` it is parked — retried
  every ``park_s`` — and never dropped;
* every try is written to ``filing_attempts``.

Each drain call only picks records due at its start, so a failing record is tried at most once
per call; the rows are read in chunks, never all at once.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from filing.client import BatchOutcome, PlatformError, PlatformRejected, PlatformUnavailable, ReceiptInvalid
from filing.outbox import DEAD, FAILED, PENDING, SENT, FilingAttempt, OutboxRecord, utcnow
from filing.protocol import record_body

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Backoff:
    """delay(n) = min(cap, base·2^(n-1)) × jitter in [1-jitter, 1]; after ``max_attempts``, ``park_s``."""

    base_s: float = 5.0
    cap_s: float = 900.0
    max_attempts: int = 12
    park_s: float = 3600.0
    jitter: float = 0.5

    def delay(self, attempts: int) -> float:
        if attempts >= self.max_attempts:
            return self.park_s
        raw = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        return raw * (1.0 - self.jitter * random.random())


@dataclass
class DrainResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    chunks: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes: they were written in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def wire_record(row: OutboxRecord) -> dict[str, Any]:
    """The record as sent; the same bytes on every resend (created_at normalised to UTC)."""
    return record_body(row.record_id, row.kind, row.subject, row.subject_seq, as_utc(row.created_at), row.payload)


def claim(factory: sessionmaker[Session], due: datetime, limit: int, lease_s: float) -> tuple[str, list[OutboxRecord]]:
    """Lease up to ``limit`` due head-of-subject records; return the lease token and the rows (by id)."""
    token = uuid.uuid4().hex
    o = OutboxRecord
    c = aliased(OutboxRecord, name="candidate")
    earlier = aliased(OutboxRecord, name="earlier")
    wall = utcnow()
    blocked = exists().where(
        and_(earlier.subject == c.subject, earlier.subject_seq < c.subject_seq, earlier.state != SENT)
    )
    candidates = (
        select(c.id)
        .where(
            c.state.in_((PENDING, FAILED)),
            c.next_attempt_at <= due,
            or_(c.lease_until.is_(None), c.lease_until < wall),
            ~blocked,
        )
        .order_by(c.id)
        .limit(limit)
    )
    with factory() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True, of=c)
        # One UPDATE statement: on SQLite it takes the write lock first, so two claims never overlap;
        # the lease condition is checked again on the row being updated.
        session.execute(
            update(o)
            .where(o.id.in_(candidates.scalar_subquery()), or_(o.lease_until.is_(None), o.lease_until < wall))
            .values(lease_owner=token, lease_until=wall + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
    with factory() as session:
        rows = list(session.scalars(select(o).where(o.lease_owner == token).order_by(o.id)))
    return token, rows


def _send(client: Any, rows: list[OutboxRecord], use_batch: bool) -> list[BatchOutcome]:
    records = [wire_record(r) for r in rows]
    if use_batch:
        try:
            return client.send_batch(records)
        except PlatformRejected as exc:
            if exc.status in (401, 403, 413):
                # Our credentials or the request as a whole were refused, not these records.
                exc = PlatformUnavailable(str(exc))
            return [BatchOutcome(r["record_id"], error=exc, status=getattr(exc, "status", None)) for r in records]
        except PlatformError as exc:
            return [BatchOutcome(r["record_id"], error=exc) for r in records]
    outcomes = []
    for record in records:
        try:
            outcomes.append(BatchOutcome(record["record_id"], receipt=client.send(record)))
        except PlatformRejected as exc:
            outcomes.append(BatchOutcome(record["record_id"], error=exc, status=exc.status))
        except PlatformError as exc:
            outcomes.append(BatchOutcome(record["record_id"], error=exc))
    return outcomes


def _outcome_name(error: PlatformError | None) -> str:
    if error is None:
        return "sent"
    if isinstance(error, PlatformRejected):
        return "rejected"
    if isinstance(error, ReceiptInvalid):
        return "invalid_receipt"
    return "unavailable"


def _record(
    factory: sessionmaker[Session],
    rows: list[OutboxRecord],
    outcomes: list[BatchOutcome],
    backoff: Backoff,
    due: datetime,
) -> DrainResult:
    result = DrainResult(claimed=len(rows), chunks=1)
    at = utcnow()
    # Backoff counts from the drain's own "now" (which tests may move ahead), never from before it,
    # so a record that failed in this call is not due again within the same call.
    base = max(at, due)
    updates: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for row, outcome in zip(rows, outcomes, strict=True):
        tries = row.attempts + 1
        name = _outcome_name(outcome.error)
        error = str(outcome.error)[:MAX_ERROR_CHARS] if outcome.error else None
        values: dict[str, Any] = {"id": row.id, "attempts": tries, "lease_owner": None, "lease_until": None}
        if outcome.receipt is not None:
            values.update(state=SENT, sent_at=at, receipt=outcome.receipt.envelope, last_error=None)
            result.sent += 1
        elif isinstance(outcome.error, PlatformRejected):
            values.update(state=DEAD, last_error=error)
            result.dead += 1
        else:
            retry_at = base + timedelta(seconds=backoff.delay(tries))
            values.update(state=FAILED, last_error=error, next_attempt_at=retry_at)
            result.failed += 1
        if name != "sent":
            result.errors[name] = result.errors.get(name, 0) + 1
        updates.append(values)
        attempts.append(
            {"record_id": row.record_id, "at": at, "outcome": name, "http_status": outcome.status, "error": error}
        )
    with factory() as session, session.begin():
        session.execute(update(OutboxRecord), updates)
        session.execute(insert(FilingAttempt), attempts)
    return result


def drain(
    session_factory: sessionmaker[Session],
    client: Any,
    now: datetime | None = None,
    max_records: int | None = None,
    *,
    batch_size: int = 200,
    workers: int = 2,
    backoff: Backoff | None = None,
    lease_s: float = 300.0,
    use_batch: bool = True,
    progress: Callable[[DrainResult], None] | None = None,
) -> DrainResult:
    """Send every record due at ``now`` (default: the current time) until none is left or
    ``max_records`` were claimed; return what happened. Safe to run in several processes at once."""
    due = as_utc(now) if now is not None else utcnow()
    policy = backoff or Backoff()
    total = DrainResult()
    lock = threading.Lock()
    budget = [max_records if max_records is not None else -1]

    def take(n: int) -> int:
        with lock:
            if budget[0] < 0:
                return n
            n = min(n, budget[0])
            budget[0] -= n
            return n

    def worker() -> None:
        while True:
            limit = take(batch_size)
            if limit <= 0:
                return
            _, rows = claim(session_factory, due, limit, lease_s)
            if not rows:
                return
            outcome = _record(session_factory, rows, _send(client, rows, use_batch), policy, due)
            with lock:
                for name in ("claimed", "sent", "failed", "dead", "chunks"):
                    setattr(total, name, getattr(total, name) + getattr(outcome, name))
                for key, count in outcome.errors.items():
                    total.errors[key] = total.errors.get(key, 0) + count
                if progress is not None:
                    progress(total)

    if workers <= 1:
        worker()
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="filing-drain") as pool:
            for future in [pool.submit(worker) for _ in range(workers)]:
                future.result()
    return total


def retry(session: Session, record_ids: list[str] | None = None, states: tuple[str, ...] = (FAILED, DEAD)) -> int:
    """Make records due now again (operator action): the given ids, or every record in ``states``.

    Dead records get their attempt count reset; history stays in ``filing_attempts``.
    """
    o = OutboxRecord
    condition = o.record_id.in_(record_ids) if record_ids else o.state.in_(states)
    rows = list(session.scalars(select(o).where(condition, o.state != SENT)))
    now = utcnow()
    for row in rows:
        if row.state == DEAD:
            row.attempts = 0
        row.state = PENDING
        row.next_attempt_at = now
        row.lease_owner = row.lease_until = None
    return len(rows)
