"""archive: archive_batch — the stamped batches the archive has finished with

Revision ID: archive_0002
Revises: archive_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "archive_0002"
down_revision = "archive_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_batch",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_batch")
