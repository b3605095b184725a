"""Shared fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from kernel.db import make_engine, migrate
from kernel.settings import Settings
from tests.stack_fixtures import embedded_stack  # noqa: F401 - session fixture shared by all areas

REPO_ROOT = Path(__file__).resolve().parents[1]
from tests.shared_paths import INTEROP_DIR  # noqa: E402 - beside the checkout, or SEALFLOW_SHARED_DIR

PG_DSN = os.environ.get("SEALFLOW_TEST_PG_DSN", "")


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    if not INTEROP_DIR.is_dir():
        pytest.skip(f"interop files not present at {INTEROP_DIR}")
    return INTEROP_DIR


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a fresh temporary state directory."""
    return Settings(home=tmp_path / "var", kek="00" * 32)


def _fresh_pg_database(dsn: str, name: str) -> str:
    admin = make_engine(dsn)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated SealFlow database: SQLite always, PostgreSQL when SEALFLOW_TEST_PG_DSN is set."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'sealflow.db'}")
    else:
        if not PG_DSN:
            pytest.skip("PostgreSQL not configured: set SEALFLOW_TEST_PG_DSN to run on PostgreSQL")
        name = f"sealflow_test_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
        engine = make_engine(_fresh_pg_database(PG_DSN, name))
    migrate(engine)
    yield engine
    engine.dispose()
