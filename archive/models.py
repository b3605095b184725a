"""Index tables of the archive (档案索引): one row per archived package, one per archiving run.

A row is ``pending`` while its package is being written and verified and becomes ``archived``
only afterwards, so searches never see a half-written package.

A licence (证照标识) may have several records: a declared 换发/补发 is archived as a record of its own
(its own 档号 and package) that ``supersedes`` the earlier one, whose row then names it in
``superseded_by`` — records are never overwritten or deleted (DA/T 48: a new version supersedes the old;
the locked package of the old one is not touched, only its index row gains the link). The same sealed
document (证照标识 and SM3) is indexed once, and a record is superseded at most once, so a licence's
records form one chain whose head (``superseded_by`` empty) is its current record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base

PENDING, ARCHIVED = "pending", "archived"


class ArchiveRecord(Base):
    __tablename__ = "archive_record"
    __table_args__ = (UniqueConstraint("licence_id", "document_sm3", name="uq_archive_record_licence_document"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    archival_code: Mapped[str] = mapped_column(String(64), unique=True)  # 档号
    licence_id: Mapped[str] = mapped_column(String(128), index=True)  # 证照标识
    licence_number: Mapped[str] = mapped_column(String(64), index=True)  # 证照编号
    licence_type: Mapped[str] = mapped_column(String(100), default="")
    holder_name: Mapped[str] = mapped_column(String(200), index=True)  # 持证主体
    holder_code: Mapped[str] = mapped_column(String(32), index=True)  # 持证主体代码
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    archived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    retention: Mapped[str] = mapped_column(String(8))  # Y | D30 | D10
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    object_key: Mapped[str] = mapped_column(Text)
    object_version: Mapped[str] = mapped_column(String(64), default="")
    package_sm3: Mapped[str] = mapped_column(String(64), default="")
    package_size: Mapped[int] = mapped_column(BigInteger, default=0)
    document_name: Mapped[str] = mapped_column(Text, default="")
    document_sm3: Mapped[str] = mapped_column(String(64), default="")
    manifest_sm3: Mapped[str] = mapped_column(String(64), default="")
    batch_manifest_key: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), index=True, default=PENDING)
    # 换发/补发: the 档号 of the record this one supersedes (unique: a record is superseded once) and
    # of the record that superseded this one; the declared kind and reason of the re-issue.
    supersedes: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True, default=None)
    superseded_by: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True, default=None)
    reissue: Mapped[str] = mapped_column(String(8), default="")
    reissue_reason: Mapped[str] = mapped_column(Text, default="")

    @property
    def current(self) -> bool:
        """Not superseded by a later record of its licence."""
        return not self.superseded_by


class ArchiveRun(Base):
    """One archiving run of a batch: its registration form, signed SM3 manifest and counts."""

    __tablename__ = "archive_run"

    run_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    records: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    manifest_key: Mapped[str] = mapped_column(Text, default="")
    manifest_sm3: Mapped[str] = mapped_column(String(64), default="")
    registration_key: Mapped[str] = mapped_column(Text, default="")


class ArchivedBatch(Base):
    """A stamped batch the archive has finished with (every verified document archived, already
    archived or refused — by 四性检测, or as a licence archived before — with its reasons). Batches
    finished by stamping and absent here are what the next ``archive_batch`` run picks up, whichever
    asset event triggered it."""

    __tablename__ = "archive_batch"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    archived: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    # The refused documents with the reasons ({"licence_id", "file", "reasons"}), for the batch report.
    not_archived: Mapped[list] = mapped_column(JSON, default=list)
    # When the batch's received files, sealed files and provenance notes were removed from the work bucket
    # (archive.work_purge), and how many objects; None while they are there.
    work_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, default=None)
    work_purged_objects: Mapped[int] = mapped_column(Integer, default=0)


class FixityRun(Base):
    """One fixity pass (长期保存 固定性检测) over the archive: what it found, in counts and the first
    problems (the full list is in the report under ``report_key``). ``problems_sm3`` identifies the set
    of problems (kind and object key), so the same problems found again are the same alert."""

    __tablename__ = "archive_fixity_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    records_checked: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    problem_counts: Mapped[dict] = mapped_column(JSON, default=dict)
    problems: Mapped[list] = mapped_column(JSON, default=list)
    problems_sm3: Mapped[str] = mapped_column(String(64), default="")
    report_key: Mapped[str] = mapped_column(Text, default="")
