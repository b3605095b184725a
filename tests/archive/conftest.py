"""Archive test fixtures: sealed sample certificates, the archiving unit's signer, a fresh bucket per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from archive.service import ArchiveInput
from archive.store import ObjectStore
from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings

ARCHIVE_UNIT = "示范市档案馆"
ARCHIVE_UNIT_CODE = "11330100MB0000001"


@dataclass
class SealedDoc:
    row: dict[str, str]
    path: Path
    sm3: str
    verification: dict

    def to_input(self) -> ArchiveInput:
        record = dict(self.row)
        record["holder_code_kind"] = "id_number" if record["licence_type"] == "执业药师注册证" else "credit_code"
        return ArchiveInput(path=str(self.path), record=record, format=self.row["format"], sm3=self.sm3,
                            size=self.path.stat().st_size, verification=self.verification, name=self.row["file"])


@dataclass
class ArchiveEnv:
    settings: Settings
    store: ObjectStore
    sessions: sessionmaker[Session]
    signer: object
    trust: object
    root_pem: Path
    tmp: Path


@pytest.fixture(scope="session")
def kit(tmp_path_factory):
    from stamping.ofd.demo import make_demo_kit

    return make_demo_kit(tmp_path_factory.mktemp("archive-kit"))


@pytest.fixture(scope="session")
def archive_signer(kit):
    from gmpki.keys.signer import SoftwareSigner
    from stamping.identifiers import make_credit_code

    key, cert = kit.ca.issue_unit_signer(ARCHIVE_UNIT, make_credit_code(ARCHIVE_UNIT_CODE))
    return SoftwareSigner(key, cert)


@pytest.fixture(scope="session")
def sealed_docs(tmp_path_factory, kit) -> list[SealedDoc]:
    """Eight sealed certificates, OFD and PDF, each verified once like the pipeline does."""
    from gmpki.gm.sm3 import sm3
    from stamping.batch.samples import render_certificate, sample_rows
    from stamping.ofd.stamp import stamp_ofd
    from stamping.pdf import stamp_pdf
    from stamping.placement import Placement
    from stamping.verify.dispatch import verify_bytes

    folder = tmp_path_factory.mktemp("sealed")
    placement = Placement.parse("anchor:（盖章）")
    docs = []
    for row in sample_rows(8):
        src = render_certificate(row)
        stamp = stamp_pdf if row["format"] == "pdf" else stamp_ofd
        sealed = stamp(src, kit.seal_der, kit.signer, placement)
        path = folder / row["file"]
        path.write_bytes(sealed)
        result = verify_bytes(sealed, str(path), kit.trust)
        assert result.valid, result.to_json()
        docs.append(SealedDoc(row, path, sm3(sealed).hex(), result.to_json()))
    return docs


@pytest.fixture
def local_env(tmp_path, kit, archive_signer) -> ArchiveEnv:
    """As ``env`` without the stack: the real ObjectStore over an in-memory Object-Lock S3
    (tests/archive/memory_s3.py) and a fresh migrated SQLite index."""
    from tests.archive.memory_s3 import MemoryS3

    settings = Settings(home=tmp_path / "var", kek="00" * 32).with_overrides(
        archive_bucket="arch-local", database_url=f"sqlite:///{tmp_path / 'index.db'}", replica_enabled=False,
        archive_upload_workers=2)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = ObjectStore(settings, client=MemoryS3())
    store.ensure_bucket()
    yield ArchiveEnv(settings, store, session_factory(engine), archive_signer, kit.trust, kit.root_pem_path,
                     tmp_path)
    engine.dispose()


@pytest.fixture
def env(embedded_stack, tmp_path, kit, archive_signer) -> ArchiveEnv:
    """A fresh Object-Lock bucket and a fresh migrated SQLite index on the embedded SeaweedFS."""
    # One store: these tests are about the archive in a store; replication has tests/archive/test_replica.py.
    settings = embedded_stack.settings.with_overrides(
        archive_bucket=f"arch-{uuid.uuid4().hex[:12]}", database_url=f"sqlite:///{tmp_path / 'index.db'}",
        replica_enabled=False)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = ObjectStore(settings)
    store.ensure_bucket()
    yield ArchiveEnv(settings, store, session_factory(engine), archive_signer, kit.trust, kit.root_pem_path,
                     tmp_path)
    engine.dispose()
