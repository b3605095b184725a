"""Archive replication over two real SeaweedFS stores: every locked object lands in both with the same
retention; fixity repairs a missing or damaged copy from the good one (audited), never the reverse; a
replica that cannot be reached fails archiving instead of leaving one copy.

How the locked objects are damaged: Object Lock protects each *version*, not the key, so the S3 API
itself lets anyone with write access hide a locked version behind a delete marker (the object is
"missing") or stack a new, different version over it (the current copy is "damaged") — the two ways a
locked archive really goes bad short of losing the disk. A whole store lost is shown by pointing the
replica at a fresh, empty bucket.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from archive.checks import NoScanner
from archive.fixity import run_fixity
from archive.models import ArchiveRecord, ArchiveRun
from archive.package import BATCH_REGISTRATION
from archive.replica import ReplicatedStore, archive_store
from archive.retrieve import download_package
from archive.service import archive_records
from gmpki.gm.sm3 import sm3_hex
from kernel.db import make_engine, migrate, session_factory
from stamping.audit import verify_audit
from stamping.audit.models import AuditEntry

pytestmark = pytest.mark.stack


@pytest.fixture
def replicated(embedded_stack, tmp_path):
    """Settings with a fresh archive bucket in both stores, a fresh index and a registry for the audit log."""
    from stamping.registry import SealRegistry

    settings = embedded_stack.settings.with_overrides(
        home=tmp_path / "var", archive_bucket=f"rep-{uuid.uuid4().hex[:12]}",
        database_url=f"sqlite:///{tmp_path / 'index.db'}", replica_enabled=True, audit_key_pin="audit-pin-r")
    engine = make_engine(settings.database_url)
    migrate(engine)
    sessions = session_factory(engine)
    store = archive_store(settings)
    store.ensure_bucket()
    yield settings, store, sessions, SealRegistry(sessions, settings)
    engine.dispose()


def _archive(store, settings, sessions, env_kit, docs):
    signer, trust = env_kit
    return archive_records([d.to_input() for d in docs], batch_id="R1", settings=settings, store=store,
                           sessions=sessions, signer=signer, trust=trust, scanner=NoScanner())


def _rows(sessions) -> list[ArchiveRecord]:
    with sessions() as s:
        return list(s.scalars(select(ArchiveRecord).order_by(ArchiveRecord.id)))


def _fixity(settings, sessions, registry, **kw):
    return run_fixity(archive_store(settings, attempts=1), sessions, audit=registry.audit,
                      audit_key=registry.audit_public_key(), **kw)


def test_every_archived_object_is_in_both_stores_with_the_same_retention(replicated, kit, archive_signer,
                                                                          sealed_docs):
    settings, store, sessions, _registry = replicated
    assert isinstance(store, ReplicatedStore)
    result = _archive(store, settings, sessions, (archive_signer, kit.trust), sealed_docs[:3])
    assert result.archived == 3, result.to_json()
    keys = [r.object_key for r in _rows(sessions)]
    folder = result.manifest_key.rsplit("/", 1)[0] + "/"
    keys += [o.key for o in store.primary.list(folder)]
    assert len(keys) == 3 + 5
    for key in keys:
        primary, replica = store.primary.head(key), store.replica.head(key)
        assert primary.lock_mode == replica.lock_mode == "COMPLIANCE", key
        assert primary.retain_until == replica.retain_until, key
        assert store.primary.get(key) == store.replica.get(key), key
    assert store.replica.client.meta.endpoint_url != store.primary.client.meta.endpoint_url  # two stores


def test_fixity_repairs_a_hidden_and_a_damaged_copy_from_the_good_one_and_audits_it(
        replicated, kit, archive_signer, sealed_docs, tmp_path):
    settings, store, sessions, registry = replicated
    result = _archive(store, settings, sessions, (archive_signer, kit.trust), sealed_docs[:3])
    rows = _rows(sessions)
    clean = _fixity(settings, sessions, registry)
    assert clean["ok"] and clean["copies"]["bad_copies"] == 0, clean["copies"]

    hidden, damaged = rows[0], rows[1]
    registration = result.manifest_key.rsplit("/", 1)[0] + "/" + BATCH_REGISTRATION
    store.primary.client.delete_object(Bucket=store.primary.bucket, Key=hidden.object_key)  # a delete marker
    store.replica.client.put_object(Bucket=store.replica.bucket, Key=damaged.object_key, Body=b"rotten")
    store.replica.client.put_object(Bucket=store.replica.bucket, Key=registration, Body=b"{}")
    good_versions = store.primary.versions(damaged.object_key)

    found = _fixity(settings, sessions, registry, repair=False)
    assert not found["ok"]
    assert {(p["store"], p["key"], p["problem"]) for p in found["copies"]["problems"]} == {
        ("primary", hidden.object_key, "missing"), ("replica", damaged.object_key, "mismatch"),
        ("replica", registration, "mismatch")}
    assert found["copies"]["repaired"] == 0

    report = _fixity(settings, sessions, registry)
    assert report["ok"], report
    assert report["copies"]["repaired"] == 3
    # the good copy was never written: the primary's versions of the damaged replica's package are as before
    assert store.primary.versions(damaged.object_key) == good_versions
    for key, row in ((hidden.object_key, hidden), (damaged.object_key, damaged)):
        assert sm3_hex(store.primary.get(key)) == sm3_hex(store.replica.get(key)) == row.package_sm3
        assert store.primary.head(key).retain_until == store.replica.head(key).retain_until
        assert store.primary.head(key).lock_mode == store.replica.head(key).lock_mode == "COMPLIANCE"
    assert store.replica.get(registration) == store.primary.get(registration)
    # the index pins the primary's new version, and the package is retrievable again
    with sessions() as s:
        pinned = s.get(ArchiveRecord, hidden.id)
        assert pinned.object_version == store.primary.head(hidden.object_key).version_id
    assert (download_package(store.primary, pinned, tmp_path / "dl") / "metadata.json").is_file()
    with sessions() as s:
        repairs = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "archive.repair")))
        assert sorted(e.payload["key"] for e in repairs) == sorted([hidden.object_key, damaged.object_key,
                                                                    registration])
        assert {e.payload["store"] for e in repairs} == {"primary", "replica"}
        assert verify_audit(s, registry.audit_public_key()).ok
    again = _fixity(settings, sessions, registry)
    assert again["ok"] and again["copies"]["bad_copies"] == 0


def test_a_lost_replica_store_is_refilled_from_the_primary(replicated, kit, archive_signer, sealed_docs):
    settings, store, sessions, registry = replicated
    _archive(store, settings, sessions, (archive_signer, kit.trust), sealed_docs[:2])
    with sessions() as s:
        assert s.scalar(select(ArchiveRun.manifest_key))
    fresh = settings.with_overrides(replica_bucket=f"fresh-{uuid.uuid4().hex[:12]}")  # the replica's disk, lost
    archive_store(fresh).ensure_bucket()
    report = _fixity(fresh, sessions, registry)
    assert report["ok"], report["copies"]
    assert report["copies"]["repaired"] == report["copies"]["bad_copies"] == 2 + 5
    assert all(p["problem"] == "missing" and p["store"] == "replica" for p in report["copies"]["problems"])
    refilled = archive_store(fresh)
    for row in _rows(sessions):
        assert refilled.replica.head(row.object_key).retain_until == refilled.primary.head(row.object_key).retain_until


def test_no_good_copy_means_nothing_is_written(replicated, kit, archive_signer, sealed_docs):
    settings, store, sessions, registry = replicated
    _archive(store, settings, sessions, (archive_signer, kit.trust), sealed_docs[:1])
    row = _rows(sessions)[0]
    with sessions() as s, s.begin():  # the index no longer matches either copy
        s.get(ArchiveRecord, row.id).package_sm3 = "0" * 64
    before = (store.primary.versions(row.object_key), store.replica.versions(row.object_key))
    report = _fixity(settings, sessions, registry)
    assert not report["ok"]
    lost = [p for p in report["copies"]["problems"] if p["key"] == row.object_key]
    assert len(lost) == 2 and all(p.get("lost") and not p["repaired"] for p in lost)
    assert (store.primary.versions(row.object_key), store.replica.versions(row.object_key)) == before


def test_an_unreachable_replica_fails_archiving_for_a_retry(replicated, kit, archive_signer, sealed_docs, tmp_path):
    from archive.integration import archive_batch
    from archive.store import StoreError
    from kernel.workstore import FolderWorkStore
    from sealflow.stack.ports import free_port_block

    settings, _store, sessions, _registry = replicated
    down = settings.with_overrides(replica_s3_port=free_port_block(1))  # nothing listens there
    with pytest.raises(StoreError, match="archive replica unreachable"):
        archive_batch(down, sessions, "R-down", work=FolderWorkStore(tmp_path / "work"), signer=archive_signer)
    store = archive_store(down)
    result = archive_records([d.to_input() for d in sealed_docs[:2]], batch_id="R-down", settings=down,
                             store=store, sessions=sessions, signer=archive_signer, trust=kit.trust,
                             scanner=NoScanner())
    assert result.archived == 0 and result.count("failed") == 2
    assert all("archive replica" in " ".join(o.reasons) for o in result.outcomes if o.status == "failed")
    assert not [r for r in _rows(sessions) if r.state == "archived"]  # nothing published with one copy
    # the replica back: the rerun archives both records into both stores
    again = archive_records([d.to_input() for d in sealed_docs[:2]], batch_id="R-down", settings=settings,
                            store=archive_store(settings), sessions=sessions, signer=archive_signer,
                            trust=kit.trust, scanner=NoScanner())
    assert again.archived == 2, again.to_json()
    both = archive_store(settings)
    for row in _rows(sessions):
        assert both.replica.get(row.object_key) == both.primary.get(row.object_key)


def test_the_embedded_stack_runs_the_replica_as_a_second_seaweedfs(embedded_stack):
    from sealflow.stack import REPLICA, status

    state = status(embedded_stack.settings)
    replica, primary = state["components"][REPLICA], state["components"]["seaweedfs"]
    assert replica["state"] == "running" and replica["healthy"] is True
    assert replica["port"] == embedded_stack.settings.replica_s3_port != primary["port"]
    assert replica["pid"] != primary["pid"]
    assert embedded_stack.settings.resolved_replica_data_dir.is_dir()
    assert state["archive_replica"]["endpoint"].endswith(f":{embedded_stack.settings.replica_s3_port}")
