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

One bad record must not hold back the up to 200 others of its request: when a whole request
fails (the record cannot even be encoded, the platform refuses or drops the request as a whole),
it is split in halves and each half sent again, down to the record at fault, which is
dead-lettered when the fault is its own (unencodable, or refused when sent alone) and retried
later otherwise; the rest are delivered. Resending is safe — the platform answers a record it
already holds with its original receipt. When *both* halves fail as unavailable the platform is
down, not a record: bisection stops there, so an outage costs three requests, not 2n.

:func:`delivery_stall` tells how long nothing could be delivered (the ``file_records`` alert).
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

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from filing.client import BatchOutcome, PlatformError, PlatformRejected, PlatformUnavailable, ReceiptInvalid
from filing.outbox import DEAD, FAILED, PENDING, SENT, FilingAttempt, OutboxRecord, utcnow
from filing.protocol import ProtocolError, record_body

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


class RecordUnsendable(PlatformRejected):
    """The record cannot be put on the wire at all (not canonical JSON): dead-letter it."""

    def __init__(self, reason: str) -> None:
        PlatformError.__init__(self, f"record cannot be sent: {reason}")
        self.status = None  # type: ignore[assignment] - no HTTP status: it never left SealFlow
        self.reason = reason


class CredentialsRefused(PlatformUnavailable):
    """The platform refused our request as a whole (401/403): our credentials, not any record's fault."""


# A request refused as a whole for these reasons is about us (credentials), not about any record.
_NOT_ABOUT_RECORDS = (401, 403)


def _send(client: Any, rows: list[OutboxRecord], use_batch: bool) -> list[BatchOutcome]:
    records = [wire_record(r) for r in rows]
    if use_batch:
        whole = _attempt_batch(client, records)
        return whole if isinstance(whole, list) else _isolate(client, records, whole)
    outcomes = []
    for record in records:
        try:
            outcomes.append(BatchOutcome(record["record_id"], receipt=client.send(record)))
        except ProtocolError as exc:
            outcomes.append(BatchOutcome(record["record_id"], error=RecordUnsendable(str(exc))))
        except PlatformRejected as exc:
            outcomes.append(BatchOutcome(record["record_id"], error=exc, status=exc.status))
        except PlatformError as exc:
            outcomes.append(BatchOutcome(record["record_id"], error=exc))
    return outcomes


def _attempt_batch(client: Any, records: list[dict[str, Any]]) -> list[BatchOutcome] | PlatformError:
    """One batch request: the per-record outcomes, or the error that failed the request as a whole."""
    try:
        return client.send_batch(records)
    except ProtocolError as exc:  # some record is not encodable: the request never left
        return RecordUnsendable(str(exc))
    except PlatformRejected as exc:
        return CredentialsRefused(str(exc)) if exc.status in _NOT_ABOUT_RECORDS else exc
    except PlatformError as exc:
        return exc


def _is_outage(error: PlatformError) -> bool:
    return isinstance(error, PlatformUnavailable)


def _isolate(client: Any, records: list[dict[str, Any]], error: PlatformError) -> list[BatchOutcome]:
    """``records`` failed together with ``error``: bisect to deliver the good ones and find the bad."""
    if len(records) == 1:
        return [_alone(records[0], error)]
    if isinstance(error, CredentialsRefused):
        return [BatchOutcome(r["record_id"], error=error) for r in records]
    mid = len(records) // 2
    halves = [records[:mid], records[mid:]]
    tries = [_attempt_batch(client, half) for half in halves]
    if all(isinstance(t, PlatformError) and _is_outage(t) for t in tries):
        # Both halves unavailable too: the platform is down (or every half is bad), stop here.
        return [BatchOutcome(r["record_id"], error=error) for r in records]
    outcomes: list[BatchOutcome] = []
    for half, outcome in zip(halves, tries, strict=True):
        outcomes += outcome if isinstance(outcome, list) else _isolate(client, half, outcome)
    return outcomes


def _alone(record: dict[str, Any], error: PlatformError) -> BatchOutcome:
    """A record sent alone failed as a whole request: refused or unsendable → dead; else retry later."""
    if isinstance(error, PlatformRejected):
        return BatchOutcome(record["record_id"], error=error, status=error.status)
    return BatchOutcome(record["record_id"], error=error)


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


def settle(session_factory: sessionmaker[Session], client: Any, record_ids: list[str], *,
           backoff: Backoff | None = None, batch_size: int = 200) -> DrainResult:
    """Mark delivered the records the platform already holds but our outbox does not show as sent (after a
    restore: sent after the backup was taken). They are sent once more: the platform answers a record
    it holds with its original signed receipt, byte for byte, and files nothing twice; the receipt is
    checked and stored as for any delivery (``sealflow filing reconcile --apply``)."""
    total = DrainResult()
    policy = backoff or Backoff()
    for start in range(0, len(record_ids), batch_size):
        with session_factory() as session:
            rows = list(session.scalars(select(OutboxRecord).where(
                OutboxRecord.record_id.in_(record_ids[start:start + batch_size]), OutboxRecord.state != SENT)
                .order_by(OutboxRecord.subject, OutboxRecord.subject_seq)))
            session.expunge_all()
        if not rows:
            continue
        outcome = _record(session_factory, rows, _send(client, rows, True), policy, utcnow())
        for name in ("claimed", "sent", "failed", "dead", "chunks"):
            setattr(total, name, getattr(total, name) + getattr(outcome, name))
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


@dataclass(frozen=True)
class Stall:
    """Nothing delivered since ``since`` although records wait: the platform (or our side of it) fails."""

    since: datetime
    waiting: int
    last_error: str

    def seconds(self, now: datetime) -> float:
        return (as_utc(now) - as_utc(self.since)).total_seconds()


def delivery_stall(session: Session, now: datetime | None = None) -> Stall | None:
    """Since when every try failed, if records wait and no try succeeded after the first failure.

    Counted from the attempt log: the first failed try after the last successful one. ``None``
    when nothing waits or the last try delivered.
    """
    o, a = OutboxRecord, FilingAttempt
    waiting = session.scalar(select(func.count()).select_from(o).where(o.state.in_((PENDING, FAILED)))) or 0
    if not waiting:
        return None
    last_sent = session.scalar(select(func.max(a.at)).where(a.outcome == "sent"))
    platform_errors = ("unavailable", "invalid_receipt")  # a refused record is its own fault, not a stall
    failing = select(a.at, a.error).where(a.outcome.in_(platform_errors))
    if last_sent is not None:
        failing = failing.where(a.at > last_sent)
    first = session.execute(failing.order_by(a.at).limit(1)).first()
    if first is None:
        return None
    latest = session.scalar(select(a.error).where(a.outcome.in_(platform_errors)).order_by(a.at.desc()).limit(1))
    return Stall(as_utc(first.at), waiting, (latest or "")[:300])
