"""The filing outbox (备案待发队列): every record waiting for, or holding, a platform receipt.

Producers (seal lifecycle, archiving) call :func:`enqueue` inside their own transaction, so a seal
event and its filing record commit or roll back together. The dispatcher drains the table; a
record is ``sent`` only once a valid signed receipt is stored with it. Records are never deleted:
``failed`` ones are retried later, ``dead`` ones (refused by the platform with a 4xx) wait for an
operator (``sealflow filing retry``).

Order: records of one subject (an esID, or a batch id) carry ``subject_seq`` = 1, 2, 3… and the
dispatcher never sends ``n+1`` before ``n`` is sent.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.db import Base

# Record kinds: seal lifecycle events (制发, 变更, 延期, 过期, 注销, 挂起, 恢复) and archive registrations.
SEAL_KINDS: tuple[str, ...] = (
    "seal.make",
    "seal.change",
    "seal.renew",
    "seal.expire",
    "seal.revoke",
    "seal.suspend",
    "seal.resume",
    "seal.destroy",  # 销毁: the seal's private keys destroyed after its revocation
)
ARCHIVE_KINDS: tuple[str, ...] = ("archive.register",)
# Audit checkpoint heads, anchored with the platform (stamping.audit.anchors).
AUDIT_KINDS: tuple[str, ...] = ("audit.checkpoint",)
KINDS: tuple[str, ...] = SEAL_KINDS + ARCHIVE_KINDS + AUDIT_KINDS

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
DEAD = "dead"
STATES: tuple[str, ...] = (PENDING, SENT, FAILED, DEAD)

MAX_PAYLOAD_BYTES = 256 * 1024


class OutboxError(ValueError):
    """A record that cannot be queued (unknown kind, payload not JSON, too big)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class OutboxRecord(Base):
    """One record to file with the national platform (备案记录)."""

    __tablename__ = "filing_outbox"
    __table_args__ = (
        UniqueConstraint("subject", "subject_seq", name="uq_filing_outbox_subject_seq"),
        Index("ix_filing_outbox_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(128), nullable=False)
    subject_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The platform's signed receipt as received: {"receipt": {...}, "signature": "<base64>"}.
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # A claim so that two dispatchers never send the same record at once (SQLite has no SKIP LOCKED).
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def __repr__(self) -> str:
        return f"OutboxRecord({self.record_id!r}, {self.kind!r}, {self.subject!r}#{self.subject_seq}, {self.state})"


class FilingAttempt(Base):
    """One try at sending a record: when, what happened, the HTTP status and the error."""

    __tablename__ = "filing_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("filing_outbox.record_id"), nullable=False, index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # sent | rejected | unavailable | invalid_receipt
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


def enqueue(session: Session, kind: str, subject: str, payload: dict[str, Any], *, now: datetime | None = None) -> str:
    """Queue one record in the caller's transaction and return its ``record_id`` (stable, unique).

    ``subject`` is the esID for seal events and the batch id for archive registrations; the
    record gets the next ``subject_seq`` of that subject. The payload fields each kind needs are
    listed in :mod:`filing.protocol` (``REQUIRED_FIELDS``); the platform refuses a record that
    lacks one, and it then waits in the dead-letter state.
    """
    if kind not in KINDS:
        raise OutboxError(f"unknown filing record kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not subject or len(subject) > 128:
        raise OutboxError("filing record subject must be 1..128 characters")
    if not isinstance(payload, dict):
        raise OutboxError(f"filing payload must be a JSON object, got {type(payload).__name__}")
    try:
        size = len(json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as exc:
        raise OutboxError(f"filing payload for {kind} {subject} is not JSON: {exc}") from exc
    if size > MAX_PAYLOAD_BYTES:
        raise OutboxError(f"filing payload for {kind} {subject} is {size} bytes (limit {MAX_PAYLOAD_BYTES})")
    at = now or utcnow()
    last = session.execute(
        select(func.max(OutboxRecord.subject_seq)).where(OutboxRecord.subject == subject)
    ).scalar_one_or_none()
    record_id = uuid.uuid4().hex
    session.add(
        OutboxRecord(
            record_id=record_id,
            kind=kind,
            subject=subject,
            subject_seq=(last or 0) + 1,
            payload=payload,
            state=PENDING,
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
    )
    # Flush so the next enqueue for the same subject in this transaction sees this seq.
    session.flush()
    return record_id
