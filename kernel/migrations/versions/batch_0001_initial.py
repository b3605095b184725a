"""batch pipeline tables: batch, batch_document, seal_use_approval

Revision ID: batch_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "batch_0001"
down_revision = None
branch_labels = ("batch",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("es_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("placement", sa.JSON, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("work_dir", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_table(
        "batch_document",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batch.batch_id"), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("input_sm3", sa.String(64), nullable=False),
        sa.Column("output_path", sa.Text, nullable=False),
        sa.Column("output_sm3", sa.String(64), nullable=False),
        sa.Column("stamped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verification", sa.JSON, nullable=False),
        sa.UniqueConstraint("batch_id", "file", name="uq_batch_document_file"),
    )
    op.create_index("ix_batch_document_batch_id", "batch_document", ["batch_id"])
    op.create_index("ix_batch_document_chunk", "batch_document", ["chunk"])
    op.create_index("ix_batch_document_state", "batch_document", ["state"])
    op.create_table(
        "seal_use_approval",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False, index=True),
        sa.Column("es_id", sa.String(64), nullable=False),
        sa.Column("keeper", sa.String(128), nullable=False),
        sa.Column("requester", sa.String(128), nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("code_salt", sa.String(64), nullable=False),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seal_use_approval")
    op.drop_table("batch_document")
    op.drop_table("batch")
