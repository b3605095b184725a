"""The SealFlow database: one SQLAlchemy metadata, engines, sessions and Alembic migrations.

Each domain keeps its tables in its own models module on :class:`Base` and its migrations in
``kernel/migrations/versions`` under its own Alembic branch label (registry, filing, archive),
so ``upgrade heads`` brings every domain up to date.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, Row, Select, create_engine, event
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from gmpki.private_files import make_private_dirs
from kernel.settings import StateNotPrivate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
IN_CHUNK = 500  # keeps IN (...) lists within every database's parameter limit


class Base(DeclarativeBase):
    """Declarative base shared by every SealFlow table."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class DatabaseNotPrivate(StateNotPrivate):
    """A SQLite database file others may read (it holds PIN-protected state and the audit log)."""


def _private_sqlite(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask; its -wal and -shm
    files copy the main file's mode); refuse one that others can read."""
    make_private_dirs(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise DatabaseNotPrivate(f"database {path} is readable by other users (mode {mode:o}); run "
                                 f"`chmod 600 {path}*` before starting SealFlow")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys, and a 0600 file."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_sqlite(Path(path))
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config() -> Config:
    """The Alembic configuration of SealFlow's migrations: every domain's branch, in ``MIGRATIONS_DIR``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    return config


def migrate(engine: Engine) -> None:
    """Bring every domain's tables to the newest revision (idempotent)."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def open_database(url: str, *, migrated: bool = True) -> sessionmaker[Session]:
    """The database at ``url`` as a session factory, migrated to the newest revision first unless
    ``migrated=False`` (a reader that must not change the schema): the one way a composition root opens
    it. Its engine is ``factory.kw["bind"]``; :func:`database` disposes of it when done."""
    engine = make_engine(url)
    if migrated:
        migrate(engine)
    return session_factory(engine)


@contextmanager
def database(url: str, *, migrated: bool = True) -> Iterator[sessionmaker[Session]]:
    """:func:`open_database` for one command: the engine's connections are closed on leaving."""
    factory = open_database(url, migrated=migrated)
    try:
        yield factory
    finally:
        factory.kw["bind"].dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def rows_where_in(session: Session, stmt: Select, column: InstrumentedAttribute | ColumnElement,
                  values: Iterable) -> Iterator[Row]:
    """The rows of ``stmt`` whose ``column`` is one of ``values``: asked in chunks of :data:`IN_CHUNK`
    distinct values (first-seen order), so that no ``IN (...)`` list outgrows a database's parameter
    limit however many values a batch brings. Each chunk keeps ``stmt``'s ORDER BY; the rows of one
    chunk come before those of the next."""
    wanted = list(dict.fromkeys(values))
    for start in range(0, len(wanted), IN_CHUNK):
        yield from session.execute(stmt.where(column.in_(wanted[start:start + IN_CHUNK])))
