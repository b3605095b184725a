"""archive index: archive_record, archive_run

Revision ID: archive_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "archive_0001"
down_revision = None
branch_labels = ("archive",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_record",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("archival_code", sa.String(64), nullable=False, unique=True),
        sa.Column("licence_id", sa.String(128), nullable=False, unique=True),
        sa.Column("licence_number", sa.String(64), nullable=False),
        sa.Column("licence_type", sa.String(100), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("holder_code", sa.String(32), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention", sa.String(8), nullable=False),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_key", sa.Text, nullable=False),
        sa.Column("object_version", sa.String(64), nullable=False),
        sa.Column("package_sm3", sa.String(64), nullable=False),
        sa.Column("package_size", sa.BigInteger, nullable=False),
        sa.Column("document_name", sa.Text, nullable=False),
        sa.Column("document_sm3", sa.String(64), nullable=False),
        sa.Column("manifest_sm3", sa.String(64), nullable=False),
        sa.Column("batch_manifest_key", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
    )
    for col in ("licence_number", "holder_name", "holder_code", "batch_id", "archived_at", "state"):
        op.create_index(f"ix_archive_record_{col}", "archive_record", [col])
    op.create_table(
        "archive_run",
        sa.Column("run_id", sa.String(80), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("manifest_key", sa.Text, nullable=False),
        sa.Column("manifest_sm3", sa.String(64), nullable=False),
        sa.Column("registration_key", sa.Text, nullable=False),
    )
    op.create_index("ix_archive_run_batch_id", "archive_run", ["batch_id"])


def downgrade() -> None:
    op.drop_table("archive_run")
    op.drop_table("archive_record")
