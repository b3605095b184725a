"""archive: a licence may have several records — a declared 换发/补发 supersedes the earlier one

``archive_record.licence_id`` is no longer unique: a re-issued licence gets its own record (档号,
package) with ``supersedes`` (the earlier record's 档号, unique: a record is superseded once) and the
earlier row gains ``superseded_by``. What stays unique is the sealed document of a licence
(``licence_id`` + ``document_sm3``), so an archiving run retried never indexes it twice.
``archive_batch.not_archived`` keeps the refused documents with their reasons for the batch report.

The unique constraint on ``licence_id`` was created inline and unnamed: PostgreSQL named it itself
(found by reflection, dropped by name); SQLite cannot drop a constraint, so the table is rebuilt in
batch mode, where a naming convention gives the unnamed constraint a name to drop.

Revision ID: archive_0004_reissue
Revises: archive_0003_fixity
"""

import sqlalchemy as sa
from alembic import op

revision = "archive_0004_reissue"
down_revision = "archive_0003_fixity"
branch_labels = None
depends_on = None

TABLE = "archive_record"
# What the rebuilt SQLite table calls the constraints archive_0001 left unnamed.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _licence_unique_name() -> str | None:
    for uq in sa.inspect(op.get_bind()).get_unique_constraints(TABLE):
        if uq["column_names"] == ["licence_id"]:
            return uq["name"] or "uq_archive_record_licence_id"
    return None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    name = _licence_unique_name()
    with op.batch_alter_table(TABLE, naming_convention=NAMING, recreate="always" if sqlite else "auto") as t:
        if name:
            t.drop_constraint(name, type_="unique")
        t.add_column(sa.Column("supersedes", sa.String(64), nullable=True))
        t.add_column(sa.Column("superseded_by", sa.String(64), nullable=True))
        t.add_column(sa.Column("reissue", sa.String(8), nullable=False, server_default=""))
        t.add_column(sa.Column("reissue_reason", sa.Text, nullable=False, server_default=""))
        t.create_unique_constraint("uq_archive_record_licence_document", ["licence_id", "document_sm3"])
        t.create_unique_constraint("uq_archive_record_supersedes", ["supersedes"])
        t.create_index("ix_archive_record_licence_id", ["licence_id"])
        t.create_index("ix_archive_record_superseded_by", ["superseded_by"])
    with op.batch_alter_table("archive_batch") as t:
        t.add_column(sa.Column("not_archived", sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    # Only possible while every licence has one record: a records office keeps both versions.
    with op.batch_alter_table("archive_batch") as t:
        t.drop_column("not_archived")
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(TABLE, naming_convention=NAMING, recreate="always" if sqlite else "auto") as t:
        t.drop_index("ix_archive_record_superseded_by")
        t.drop_index("ix_archive_record_licence_id")
        t.drop_constraint("uq_archive_record_supersedes", type_="unique")
        t.drop_constraint("uq_archive_record_licence_document", type_="unique")
        t.drop_column("reissue_reason")
        t.drop_column("reissue")
        t.drop_column("superseded_by")
        t.drop_column("supersedes")
        t.create_unique_constraint("uq_archive_record_licence_id", ["licence_id"])
