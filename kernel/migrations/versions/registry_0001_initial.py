"""seal registry: units, persons, unit users, applications, reviews, seals, versions, certificates, status history

Revision ID: registry_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None
branch_labels = ("registry",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_units",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False, unique=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("registry_units.id"), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "registry_persons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False, unique=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "registry_unit_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("registry_units.id"), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("registry_persons.id"), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("unit_id", "username", "role", "level", name="uq_registry_unit_user_role"),
    )
    op.create_index("ix_registry_unit_users_unit_id", "registry_unit_users", ["unit_id"])
    op.create_index("ix_registry_unit_users_username", "registry_unit_users", ["username"])
    op.create_table(
        "registry_applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("registry_units.id"), nullable=False),
        sa.Column("applicant", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("official_type", sa.String(16), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("holder_id", sa.Integer, sa.ForeignKey("registry_persons.id"), nullable=True),
        sa.Column("keeper", sa.String(100), nullable=False),
        sa.Column("levels_required", sa.Integer, nullable=False),
        sa.Column("levels_approved", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("es_id", sa.String(64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_registry_applications_unit_id", "registry_applications", ["unit_id"])
    op.create_table(
        "registry_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("registry_applications.id"), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.UniqueConstraint("application_id", "level", name="uq_registry_review_level"),
    )
    op.create_table(
        "registry_seals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("es_id", sa.String(64), nullable=False, unique=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("official_type", sa.String(16), nullable=True),
        sa.Column("type_code", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("registry_units.id"), nullable=False),
        sa.Column("holder_id", sa.Integer, sa.ForeignKey("registry_persons.id"), nullable=True),
        sa.Column("keeper", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("signer_cert_der", sa.LargeBinary, nullable=False),
        sa.Column("seal_der", sa.LargeBinary, nullable=False),
        sa.Column("seal_sm3", sa.String(64), nullable=False),
        sa.Column("valid_start", TZ, nullable=False),
        sa.Column("valid_end", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("supersedes", sa.String(64), nullable=True),
        sa.Column("superseded_by", sa.String(64), nullable=True),
        sa.Column("application_id", sa.Integer, sa.ForeignKey("registry_applications.id"), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_registry_seals_unit_id", "registry_seals", ["unit_id"])
    op.create_index("ix_registry_seals_status", "registry_seals", ["status"])
    op.create_table(
        "registry_seal_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("registry_seals.id"), nullable=False),
        sa.Column("es_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("seal_der", sa.LargeBinary, nullable=False),
        sa.Column("seal_sm3", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("valid_start", TZ, nullable=False),
        sa.Column("valid_end", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("es_id", "version", name="uq_registry_seal_version"),
    )
    op.create_table(
        "registry_certificates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("registry_seals.id"), nullable=False),
        sa.Column("es_id", sa.String(64), nullable=False),
        sa.Column("seal_version", sa.Integer, nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("cert_der", sa.LargeBinary, nullable=False),
        sa.Column("cert_sm3", sa.String(64), nullable=False),
        sa.Column("not_before", TZ, nullable=False),
        sa.Column("not_after", TZ, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_registry_certificates_seal_id", "registry_certificates", ["seal_id"])
    op.create_table(
        "registry_status_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("registry_seals.id"), nullable=False),
        sa.Column("es_id", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_registry_status_history_es_id_at", "registry_status_history", ["es_id", "at"])


def downgrade() -> None:
    for table in ("registry_status_history", "registry_certificates", "registry_seal_versions", "registry_seals",
                  "registry_reviews", "registry_applications", "registry_unit_users", "registry_persons",
                  "registry_units"):
        op.drop_table(table)
