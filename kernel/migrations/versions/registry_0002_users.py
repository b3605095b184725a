"""seal registry: users (OS login mapping, credential) apart from their unit roles

Revision ID: registry_0002
Revises: registry_0001
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("os_login", sa.String(100), nullable=True, unique=True),
        sa.Column("credential", sa.Text, nullable=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("registry_persons.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
    )
    # Users who held roles before: registered, but nobody can act as them until an administrator
    # maps an OS login or sets a credential (`sealflow seal bootstrap` for the first one).
    conn = op.get_bind()
    names = [row[0] for row in conn.execute(sa.text("SELECT DISTINCT username FROM registry_unit_users"))]
    users = sa.table("registry_users", sa.column("username"), sa.column("created_at"), sa.column("created_by"))
    if names:
        now = datetime.now(UTC)
        op.bulk_insert(users, [{"username": n, "created_at": now, "created_by": "migration"} for n in names])


def downgrade() -> None:
    op.drop_table("registry_users")
