"""archive: when a batch's work copies were removed from the work bucket (archive.work_purge)

``archive_batch.work_purged_at`` is set, with the number of objects removed, by the run that removed
the received files, sealed files and provenance notes of a batch the archive holds and the platform
has filed (and that recorded it in the audit log); NULL while they are still in the work bucket.

Revision ID: archive_0005_work_purge
Revises: archive_0004_reissue
"""

import sqlalchemy as sa
from alembic import op

revision = "archive_0005_work_purge"
down_revision = "archive_0004_reissue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("archive_batch") as table:
        table.add_column(sa.Column("work_purged_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("work_purged_objects", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("archive_batch") as table:
        table.drop_column("work_purged_objects")
        table.drop_column("work_purged_at")
