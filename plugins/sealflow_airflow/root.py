"""The composition root of the Airflow glue: every domain object a task, the console or the answer gate
uses is built here, once per process, from ``Settings`` and the Airflow connections — and nowhere else.

Why one place: the database (engine, migrations, sessions), the seal desk, the trust anchors, the
object store client and the platform client each used to be built by hand wherever they were needed,
and the copies drifted (trust built four ways, settings read with and without the connections). Task
modules (``pipeline``, ``archiving``, ``platform_hook``, ``backups``, ``alerts``, the console) ask this
module; DAG files import only the glue. The builders are cached per process (``lru_cache``): a worker
builds them on its first task, and a test clears them with :func:`reset`. Imports stay inside the
builders, so that a DAG file importing this module while it is parsed loads only the settings.

The settings here are :func:`sealflow_airflow.hooks.settings_from_connections` — the ``SEALFLOW_*``
settings with the external endpoints of the ``sealflow_s3`` and ``sealflow_platform`` connections
over them, so that ``dag.test()``, the embedded stack and production build the same objects.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from gmpki.keys.signer import Signer
    from gmpki.pki.trust import TrustStore
    from kernel.workstore import WorkStore
    from stamping.batch.process import BatchTools
    from stamping.batch.seals import BatchSeals
    from stamping.registry.service import SealRegistry


@lru_cache(maxsize=1)
def settings() -> Settings:
    """``SEALFLOW_*`` settings with the endpoints of the Airflow connections over them."""
    from sealflow_airflow.hooks import settings_from_connections

    return settings_from_connections(get_settings())


def parse_settings() -> Settings:
    """The settings a DAG file reads while it is parsed (a schedule, the form's choices): the environment
    only — parsing must never wait on a connection lookup."""
    return get_settings()


@lru_cache(maxsize=1)
def sessions() -> sessionmaker[Session]:
    """The SealFlow database, migrated to the newest revision, as a session factory."""
    from kernel.db import open_database

    return open_database(settings().resolved_database_url)


@lru_cache(maxsize=1)
def seals() -> BatchSeals:
    """The seal desk of batches: the registry, batch custody of PINs, status and use lookups."""
    from stamping.batch.seals import BatchSeals

    return BatchSeals(settings(), sessions())


def registry() -> SealRegistry:
    """The seal registry (the seal desk's)."""
    return seals().registry


@lru_cache(maxsize=1)
def trust() -> TrustStore:
    """The trust anchors every 验章 of the pipeline uses: the registry's CA (the installation's, made if
    missing, so a worker never caches an empty store) and ``SEALFLOW_TRUST_ROOTS``."""
    return seals().trust_store()


def archive_signer() -> Signer:
    """The archiving unit's (归档单位) signer, the one service-key path."""
    from archive.integration import archive_signer as signer_of

    return signer_of(settings())


def s3_client() -> Any:
    """A boto3 client of the object store of the ``sealflow_s3`` connection (settings without it)."""
    from sealflow_airflow.hooks import s3_client as client

    return client()


@lru_cache(maxsize=1)
def work_store() -> WorkStore:
    """The work store of batches: always the S3 work bucket (``settings.work_bucket``) — the embedded stack's
    SeaweedFS or the deployment's S3 — through one client per process, whose connections are reused."""
    from kernel.objectstore import s3_client as client_for
    from kernel.workstore import S3WorkStore

    return S3WorkStore(client_for(settings()), settings().work_bucket)


@lru_cache(maxsize=1)
def tools() -> BatchTools:
    """The batch pipeline's ports: stampers and verifiers per format, the TSA, signers, lookups."""
    from gmpki.pki.tsa_client import TsaClient
    from stamping.batch.process import BatchTools
    from stamping.ofd.stamp import stamp_ofd
    from stamping.ofd.verify import verify_ofd
    from stamping.pdf.sign import stamp_pdf
    from stamping.pdf.verify import verify_pdf

    desk = seals()
    anchors = trust()
    lookup, uses = desk.status_lookup, desk.use_lookup
    tsa = TsaClient(settings().resolved_tsa_url)  # every seal carries a token of the TSA (可信时间戳)
    return BatchTools(
        session_factory=sessions(),
        store=work_store(),  # every file of a batch lives in the work bucket; local disk is only scratch
        reports_dir=Path(settings().reports_dir) if settings().reports_dir else None,  # the office's copy
        stampers={
            "pdf": lambda src, seal, signer, placement, path, options: stamp_pdf(
                src, seal, signer, placement, container=options.get("pdf_container", "pkcs7"), path=path,
                timestamper=tsa),
            "ofd": lambda src, seal, signer, placement, path, options: stamp_ofd(
                src, seal, signer, placement, path=path, timestamper=tsa, compact=True),  # seal stored once
        },
        verifiers={
            "pdf": lambda data, path: verify_pdf(data, path, anchors, lookup, use_lookup=uses),
            "ofd": lambda data, path: verify_ofd(data, path, anchors, lookup, use_lookup=uses),
        },
        signer_provider=desk.batch_signer,
        record_uses=desk.record_uses,
        status_lookup=lookup,
        status_snapshot=desk.registry.status_snapshot,  # 验章: each seal's status history read once per chunk
    )


def reset() -> None:
    """Forget every object built (tests that change the settings between runs in one process)."""
    for builder in (settings, sessions, seals, trust, work_store, tools):
        builder.cache_clear()
