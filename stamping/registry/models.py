"""Tables of the seal registry (印章管理): units, persons, unit users, applications, reviews,
seals, their versions and certificates, and each seal's status history.

Times are stored in UTC (SQLite keeps them naive; :func:`aware` puts the zone back on read).
``row_version`` columns are SQLAlchemy version counters: an UPDATE that lost a race touches no
row and raises ``StaleDataError``, which the service turns into :class:`ConcurrentChange`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base


def aware(value: datetime | None) -> datetime | None:
    """A stored time with its UTC zone (SQLite hands back naive values)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc(value: datetime) -> datetime:
    """A time to store: in UTC (a naive value is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SealKind(StrEnum):
    """电子公章 / 电子职务章 / 电子私章."""

    OFFICIAL = "official"
    POSITION = "position"
    PERSONAL = "personal"


class OfficialType(StrEnum):
    """Sub-types of 电子公章."""

    LEGAL_NAME = "legal_name"  # 法定名称章
    INTERNAL_BODY = "internal_body"  # 内设机构章
    BRANCH = "branch"  # 分支机构章
    BUSINESS = "business"  # 业务专用章 (合同, 财务, 发票…)


class Role(StrEnum):
    """What a unit user may do: apply (申请), review at a level (审核), keep and use (保管), administer
    the unit's seals and users (印章管理员), and the records office (文书/用印登记), batch operator,
    archivist (档案员) and auditor (审计员) roles the pipeline and the Airflow side map onto."""

    APPLICANT = "applicant"
    REVIEWER = "reviewer"
    KEEPER = "keeper"
    ADMIN = "admin"
    RECORDS_OFFICE = "records_office"
    OPERATOR = "operator"
    ARCHIVIST = "archivist"
    AUDITOR = "auditor"


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"  # waiting for the next review level
    APPROVED = "approved"  # every level approved, ready to make
    REJECTED = "rejected"
    MADE = "made"


class Unit(Base):
    """用章单位: an organisation with its legal name and 统一社会信用代码."""

    __tablename__ = "registry_units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    credit_code: Mapped[str] = mapped_column(String(18), nullable=False, unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("registry_units.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Person(Base):
    """A natural person as on the ID card: name and 公民身份号码."""

    __tablename__ = "registry_persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    id_number: Mapped[str] = mapped_column(String(18), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class RegistryUser(Base):
    """A SealFlow user (one person at the keyboard), and how they prove it: the OS login mapped to
    them at the command line, or a credential (scrypt record). Roles are per unit (:class:`UnitUser`)."""

    __tablename__ = "registry_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    os_login: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True)
    credential: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON {salt, scrypt}, base64
    person_id: Mapped[int | None] = mapped_column(ForeignKey("registry_persons.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_by: Mapped[str] = mapped_column(String(100), nullable=False)


class UnitUser(Base):
    """One role of one user in one unit (a user may hold several rows: keeper and reviewer…)."""

    __tablename__ = "registry_unit_users"
    __table_args__ = (UniqueConstraint("unit_id", "username", "role", "level", name="uq_registry_unit_user_role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("registry_units.id"), nullable=False, index=True)
    username: Mapped[str] = mapped_column(String(100), nullable=False, index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("registry_persons.id"), nullable=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # reviewers: 1..n; others 0
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class SealApplication(Base):
    """申领: a request for a new seal, reviewed level by level (逐级审核) before it is made."""

    __tablename__ = "registry_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("registry_units.id"), nullable=False, index=True)
    applicant: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    official_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("registry_persons.id"), nullable=True)
    keeper: Mapped[str] = mapped_column(String(100), nullable=False)
    levels_required: Mapped[int] = mapped_column(Integer, nullable=False)
    levels_approved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    es_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": row_version}


class Review(Base):
    """One level's decision on an application; one row per level (the unique key decides races)."""

    __tablename__ = "registry_reviews"
    __table_args__ = (UniqueConstraint("application_id", "level", name="uq_registry_review_level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("registry_applications.id"), nullable=False)
    level: Mapped[int] = mapped_column(Integer, nullable=False)
    reviewer: Mapped[str] = mapped_column(String(100), nullable=False)
    approved: Mapped[bool] = mapped_column(nullable=False)
    comment: Mapped[str] = mapped_column(Text, nullable=False, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Seal(Base):
    """电子印章: one seal with its current version (renewal bumps ``version``, keeps ``es_id``)."""

    __tablename__ = "registry_seals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    es_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    official_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    type_code: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    unit_id: Mapped[int] = mapped_column(ForeignKey("registry_units.id"), nullable=False, index=True)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("registry_persons.id"), nullable=True)
    keeper: Mapped[str] = mapped_column(String(100), nullable=False)
    key_id: Mapped[str] = mapped_column(String(128), nullable=False)
    signer_cert_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    seal_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    seal_sm3: Mapped[str] = mapped_column(String(64), nullable=False)
    valid_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    supersedes: Mapped[str | None] = mapped_column(String(64), nullable=True)
    superseded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    application_id: Mapped[int | None] = mapped_column(ForeignKey("registry_applications.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    row_version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": row_version}


class SealVersion(Base):
    """Every SESeal a seal has had (making, then each renewal): old signatures keep their seal data."""

    __tablename__ = "registry_seal_versions"
    __table_args__ = (UniqueConstraint("es_id", "version", name="uq_registry_seal_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("registry_seals.id"), nullable=False)
    es_id: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    seal_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    seal_sm3: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str] = mapped_column(String(128), nullable=False)
    valid_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    valid_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Certificate(Base):
    """A signer certificate issued for a seal version (签章者证书)."""

    __tablename__ = "registry_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("registry_seals.id"), nullable=False, index=True)
    es_id: Mapped[str] = mapped_column(String(64), nullable=False)
    seal_version: Mapped[int] = mapped_column(Integer, nullable=False)
    serial: Mapped[str] = mapped_column(String(64), nullable=False)
    subject: Mapped[str] = mapped_column(String(400), nullable=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    cert_sm3: Mapped[str] = mapped_column(String(64), nullable=False)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class StatusChange(Base):
    """One status transition of a seal: status_at() reads these, so history is never rewritten."""

    __tablename__ = "registry_status_history"
    __table_args__ = (Index("ix_registry_status_history_es_id_at", "es_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seal_id: Mapped[int] = mapped_column(ForeignKey("registry_seals.id"), nullable=False)
    es_id: Mapped[str] = mapped_column(String(64), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
