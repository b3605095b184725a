"""Tables of the batch pipeline: batches, their documents, and seal-use approvals (用章审批)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base


class Batch(Base):
    __tablename__ = "batch"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    es_id: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(128))
    placement: Mapped[dict] = mapped_column(JSON, default=dict)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="ingested")
    work_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    # The Airflow run that owns the batch: one batch id is stamped by at most one run (issue 11).
    run_id: Mapped[str] = mapped_column(String(250), default="")


class BatchDocument(Base):
    """One certificate of a batch and where it is in the flow.

    state: accepted → stamped → verified, or quarantined (bad manifest row or file) / failed
    (stamping or verification refused it) / refused (the batch, or the seal's use, was refused before
    it was sealed), each with its reasons.
    """

    __tablename__ = "batch_document"
    __table_args__ = (UniqueConstraint("batch_id", "file", name="uq_batch_document_file"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batch.batch_id"), index=True)
    file: Mapped[str] = mapped_column(Text)
    row: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(8), default="")
    chunk: Mapped[int] = mapped_column(Integer, default=-1, index=True)
    record: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    input_sm3: Mapped[str] = mapped_column(String(64), default="")
    output_path: Mapped[str] = mapped_column(Text, default="")
    output_sm3: Mapped[str] = mapped_column(String(64), default="")
    stamped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    verification: Mapped[dict] = mapped_column(JSON, default=dict)


class SealUseApproval(Base):
    """A request to the seal's keeper to approve one batch's use of the seal (用章审批)."""

    __tablename__ = "seal_use_approval"

    request_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str] = mapped_column(String(250), default="")  # the one run this approval belongs to
    es_id: Mapped[str] = mapped_column(String(64))
    keeper: Mapped[str] = mapped_column(String(128))
    requester: Mapped[str] = mapped_column(String(128))
    documents: Mapped[int] = mapped_column(Integer)
    code_salt: Mapped[str] = mapped_column(String(64))  # the MAC scheme (hmac-sm3-v1); no salt is kept
    code_digest: Mapped[str] = mapped_column(String(64))  # HMAC-SM3 of the live code; "" once used or dead
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong tries of this approval, never reset
    asked: Mapped[int] = mapped_column(Integer, default=0)  # codes texted (asking again keeps ``attempts``)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|refused|expired
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(128), default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class SealServedUnit(Base):
    """A unit whose licences a seal is registered to seal besides its own unit (e.g. a 行政审批局
    issuing on behalf of the 市场监督管理局): the issuer check of a batch accepts these."""

    __tablename__ = "seal_served_unit"
    __table_args__ = (UniqueConstraint("es_id", "credit_code", name="uq_seal_served_unit"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    es_id: Mapped[str] = mapped_column(String(64), index=True)
    credit_code: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(Text, default="")
    registered_by: Mapped[str] = mapped_column(String(128))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
