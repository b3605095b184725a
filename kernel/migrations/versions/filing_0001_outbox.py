"""filing outbox: filing_outbox, filing_attempts

Revision ID: filing_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "filing_0001"
down_revision = None
branch_labels = ("filing",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filing_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("subject_seq", sa.Integer, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("receipt", sa.JSON, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("subject", "subject_seq", name="uq_filing_outbox_subject_seq"),
    )
    op.create_index("ix_filing_outbox_state_next", "filing_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_filing_outbox_lease_owner", "filing_outbox", ["lease_owner"])
    op.create_table(
        "filing_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(64), sa.ForeignKey("filing_outbox.record_id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_filing_attempts_record_id", "filing_attempts", ["record_id"])


def downgrade() -> None:
    op.drop_index("ix_filing_attempts_record_id", table_name="filing_attempts")
    op.drop_table("filing_attempts")
    op.drop_index("ix_filing_outbox_lease_owner", table_name="filing_outbox")
    op.drop_index("ix_filing_outbox_state_next", table_name="filing_outbox")
    op.drop_table("filing_outbox")
