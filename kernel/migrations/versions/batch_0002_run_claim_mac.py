"""batch: the run that owns a batch, approvals bound to one run with a wrong-try counter kept across
re-asks (codes as HMAC-SM3), and the units a seal is registered to serve

Revision ID: batch_0002
Revises: batch_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "batch_0002"
down_revision = "batch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch") as table:
        table.add_column(sa.Column("run_id", sa.String(250), nullable=False, server_default=""))
    with op.batch_alter_table("seal_use_approval") as table:
        table.alter_column("request_id", type_=sa.String(80), existing_type=sa.String(64))
        table.add_column(sa.Column("run_id", sa.String(250), nullable=False, server_default=""))
        table.add_column(sa.Column("asked", sa.Integer, nullable=False, server_default="0"))
    # Codes of pending requests were salted SM3 digests (crackable): they are void; the keeper is asked again.
    op.execute("UPDATE seal_use_approval SET code_digest = '' WHERE state = 'pending'")
    op.create_table(
        "seal_served_unit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("es_id", sa.String(64), nullable=False, index=True),
        sa.Column("credit_code", sa.String(18), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(128), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("es_id", "credit_code", name="uq_seal_served_unit"),
    )


def downgrade() -> None:
    op.drop_table("seal_served_unit")
    with op.batch_alter_table("seal_use_approval") as table:
        table.drop_column("asked")
        table.drop_column("run_id")
    with op.batch_alter_table("batch") as table:
        table.drop_column("run_id")
