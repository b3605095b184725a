"""Alembic environment: runs on the connection handed over by :func:`kernel.db.migrate`."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` CLI
    from kernel.db import make_engine
    from kernel.settings import get_settings

    connection = make_engine(get_settings().resolved_database_url).connect()

context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
