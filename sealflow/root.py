"""The shell's composition root: the objects a ``sealflow`` command works with, built from ``Settings``.

The CLI runs without Airflow, so it cannot use the glue's root (``plugins/sealflow_airflow/root.py``,
which reads Airflow connections); it builds the same objects with the same foundation calls —
``kernel.db.open_database`` for the database, ``kernel.keys`` for the key store, service keys and trust —
so a command and a task always agree. On the embedded stack, people and units are checked against the
stack's identity simulator (``with_stack_identity``); in production against
``SEALFLOW_IDENTITY_URL``. Nothing is cached: tests run many commands in one process, each
with its own home.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel.db import database, open_database
from kernel.settings import Settings, local_url

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from kernel.workstore import WorkStore
    from stamping.batch.seals import BatchSeals
    from stamping.registry.service import SealRegistry

# `database`: the same call as kernel.db.database, for `with` blocks
__all__ = ["batch_seals", "database", "registry", "sessions", "stack_identity_url", "with_stack_identity",
           "work_store"]


def sessions(settings: Settings, *, migrated: bool = True) -> sessionmaker[Session]:
    """The installation's database (migrated first unless ``migrated=False``)."""
    return open_database(settings.resolved_database_url, migrated=migrated)


def work_store(settings: Settings) -> WorkStore:
    """The work bucket where the pipeline keeps every file of a batch (the same S3 store the tasks use)."""
    from kernel.objectstore import s3_client
    from kernel.workstore import S3WorkStore

    return S3WorkStore(s3_client(settings), settings.work_bucket)


def registry(settings: Settings, factory: sessionmaker[Session] | None = None, *,
             migrated: bool = True) -> SealRegistry:
    """The seal registry over ``factory`` (else the installation's database)."""
    from stamping.registry.service import SealRegistry

    return SealRegistry(factory or sessions(settings, migrated=migrated), with_stack_identity(settings))


def batch_seals(settings: Settings, factory: sessionmaker[Session] | None = None,
                registry: SealRegistry | None = None) -> BatchSeals:
    """The seal desk of batches (registry, custody of PINs) over ``factory`` (else the installation's database)."""
    from stamping.batch.seals import BatchSeals

    return BatchSeals(with_stack_identity(settings), factory or sessions(settings), registry)


def stack_identity_url(settings: Settings) -> str:
    return local_url(settings.identity_port)


def with_stack_identity(settings: Settings) -> Settings:
    """``settings`` whose identity registers are the stack's simulator when this is the embedded stack
    and none is configured; otherwise unchanged (a configured URL wins; production without one stays
    without, and the registry refuses there)."""
    if settings.identity_url or not settings.embedded:
        return settings
    return settings.with_overrides(identity_url=stack_identity_url(settings))
