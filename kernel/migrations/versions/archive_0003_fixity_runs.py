"""archive: archive_fixity_run — each fixity pass with its problem counts, so alerts, the health page
and the metrics read the last one from the database

Revision ID: archive_0003_fixity
Revises: archive_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "archive_0003_fixity"
down_revision = "archive_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_fixity_run",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("records_checked", sa.Integer, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("problem_counts", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("problems_sm3", sa.String(64), nullable=False),
        sa.Column("report_key", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("archive_fixity_run")
