"""Backups: a signed, encrypted snapshot of a real registry restores into an empty home, and nothing
that was altered, missing or foreign gets restored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backup.restore import restore_backup, verify_backup
from backup.snapshot import BackupError, BackupKeys, FolderDestination, create_backup
from kernel.db import make_engine, migrate, session_factory
from kernel.keys import kek_material, key_store
from kernel.settings import Settings
from stamping.audit import verify_audit
from stamping.audit.models import AuditEntry
from stamping.registry import SealRegistry
from stamping.registry.rules import demo_id_number
from tests.backups.seeded import backup_signer, make_official_seal
from tests.conftest import PG_DSN, _fresh_pg_database
from tests.registry.conftest import PERSON_ID, UNIT

KEK = "5a" * 32


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    from gmpki.pki.ca import DemoCA

    return DemoCA.create(tmp_path_factory.mktemp("backup-ca") / "ca")


@pytest.fixture
def home(tmp_path: Path, ca):
    """A SealFlow home with a made seal: registry rows, audit entries, key store files."""
    settings = Settings(home=tmp_path / "var", kek=KEK, audit_checkpoint_every=3, audit_key_pin="audit-pin-1")
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    reg = SealRegistry(session_factory(engine), settings, key_store(settings), ca)
    es_id = make_official_seal(reg)
    (settings.state_dir / "custody").mkdir(mode=0o700)
    (settings.state_dir / "custody" / "note.bin").write_bytes(b"\x00custody")
    yield settings, engine, reg, es_id
    engine.dispose()


@pytest.fixture
def signer(ca):
    return backup_signer(ca)


def _keys(settings: Settings) -> BackupKeys:
    return BackupKeys.from_kek(kek_material(settings))


def _audit_count(engine) -> int:
    with session_factory(engine)() as s:
        return s.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def test_a_backup_restores_into_an_empty_home_with_the_audit_chain_and_the_keys(home, signer, tmp_path, ca):
    settings, engine, reg, es_id = home
    dest = FolderDestination(tmp_path / "backups")
    taken = create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {"review_levels": 2})
    assert taken.objects_written > 0 and taken.base is None

    trust = ca.trust_store()
    check = verify_backup(dest, trust=trust, keys=_keys(settings))
    assert check.ok, check.problems
    assert check.decrypted == check.objects

    restored = Settings(home=tmp_path / "restored", kek=KEK, audit_key_pin="audit-pin-1")
    restore_backup(dest, _keys(restored), restored.state_dir, None, migrate, trust=trust)
    new_engine = make_engine(restored.resolved_database_url)
    try:
        assert _audit_count(new_engine) == _audit_count(engine) > 0
        with session_factory(new_engine)() as s:
            report = verify_audit(s, reg.audit_public_key())
        assert report.ok, report.reason
        assert key_store(restored).exists(es_id) or any((restored.state_dir / "keys").iterdir())
        assert (restored.state_dir / "custody" / "note.bin").read_bytes() == b"\x00custody"
        assert (restored.state_dir.stat().st_mode & 0o777) == 0o700
        assert not (restored.state_dir / "kek.hex").exists(), "the KEK is never in a backup"
    finally:
        new_engine.dispose()


def test_the_second_backup_writes_only_what_changed(home, signer, tmp_path):
    settings, engine, reg, _ = home
    dest = FolderDestination(tmp_path / "backups")
    first = create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    again = create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    assert again.objects_written == 0 and again.base == first.backup_id
    reg.add_person("王五", demo_id_number("45010219900101002"), actor="admin")
    third = create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    assert 1 <= third.objects_written <= 3  # the persons segment (and the audit tail), not everything
    assert verify_backup(dest, third.backup_id, keys=_keys(settings)).ok


def test_a_damaged_object_or_an_edited_manifest_is_found_and_nothing_is_restored(home, signer, tmp_path):
    settings, engine, *_ = home
    dest = FolderDestination(tmp_path / "backups")
    taken = create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    victim = dest.root / "objects" / taken.manifest["objects"][0]["id"]
    victim.write_bytes(victim.read_bytes()[:-1] + bytes([victim.read_bytes()[-1] ^ 1]))
    check = verify_backup(dest)
    assert not check.ok and "damaged" in check.problems[0]
    target = tmp_path / "restored"
    with pytest.raises(BackupError, match="does not verify"):
        restore_backup(dest, _keys(settings), target, None, migrate)
    assert not target.exists()

    manifest_path = dest.root / "backups" / taken.backup_id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["audit_log"][
        "rows"] += 1
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False))
    assert any("altered after signing" in p for p in verify_backup(dest).problems)


def test_a_backup_key_from_another_ca_is_not_trusted(home, signer, tmp_path):
    from gmpki.pki.ca import DemoCA

    settings, engine, *_ = home
    dest = FolderDestination(tmp_path / "backups")
    create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    other = DemoCA.create(tmp_path / "other-ca")
    check = verify_backup(dest, trust=other.trust_store())
    assert not check.ok and "not trusted" in check.problems[0]


def test_without_the_right_kek_nothing_decrypts(home, signer, tmp_path):
    settings, engine, *_ = home
    dest = FolderDestination(tmp_path / "backups")
    create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    wrong = BackupKeys.from_kek(bytes.fromhex("77" * 32))
    check = verify_backup(dest, keys=wrong)
    assert not check.ok and "does not decrypt" in check.problems[0]
    raw = b"".join(p.read_bytes() for p in (dest.root / "objects").iterdir())
    assert UNIT.encode() not in raw and PERSON_ID.encode() not in raw, "backup objects are encrypted"


def test_restore_refuses_a_home_that_is_not_empty(home, signer, tmp_path):
    settings, engine, *_ = home
    dest = FolderDestination(tmp_path / "backups")
    create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(dest, _keys(settings), settings.state_dir, None, migrate)


@pytest.mark.skipif(not PG_DSN, reason="PostgreSQL not configured: set SEALFLOW_TEST_PG_DSN")
def test_a_sqlite_backup_restores_into_postgresql_and_refuses_a_database_in_use(home, signer, tmp_path, request):
    settings, engine, reg, _ = home
    dest = FolderDestination(tmp_path / "backups")
    create_backup(engine, settings.state_dir, dest, _keys(settings), signer, {})
    url = _fresh_pg_database(PG_DSN, f"sealflow_backup_{abs(hash(request.node.nodeid)) % 10**8}")
    restore_backup(dest, _keys(settings), tmp_path / "pg-home", url, migrate)
    pg = make_engine(url)
    try:
        assert _audit_count(pg) == _audit_count(engine)
        with session_factory(pg)() as s:
            assert verify_audit(s, reg.audit_public_key()).ok
    finally:
        pg.dispose()
    with pytest.raises(BackupError, match="already holds SealFlow tables"):
        restore_backup(dest, _keys(settings), tmp_path / "pg-home-2", url, migrate)
