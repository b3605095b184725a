"""The newest backup at the configured target, as the health page and the alerts read it: when, full or
incremental, how big, how old — from one manifest, without the KEK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup.service import latest_backup, public_target
from backup.snapshot import BackupKeys, FolderDestination, create_backup
from kernel.db import make_engine, migrate
from kernel.settings import Settings
from tests.backups.seeded import backup_signer

KEK = "5a" * 32


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    from gmpki.pki.ca import DemoCA

    return backup_signer(DemoCA.create(tmp_path_factory.mktemp("status-ca") / "ca"))


@pytest.fixture
def home(tmp_path: Path):
    """A migrated home whose backup target is a folder beside it; the KEK is not in this process's settings."""
    settings = Settings(home=tmp_path / "var", backup_target=str(tmp_path / "backups"))
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    (settings.state_dir / "custody").mkdir(mode=0o700)
    (settings.state_dir / "custody" / "note.bin").write_bytes(b"\x00custody")
    yield settings, engine
    engine.dispose()


def _take(settings: Settings, engine, signer, now: datetime | None = None):
    return create_backup(engine, settings.state_dir, FolderDestination(Path(settings.backup_target)),
                         BackupKeys.from_kek(bytes.fromhex(KEK)), signer, {}, now=now)


def test_a_target_without_backups_has_no_latest_backup(home) -> None:
    settings, _engine = home
    assert latest_backup(settings) is None


def test_the_first_backup_is_full_with_its_size_and_the_next_is_incremental_on_it(home, signer) -> None:
    settings, engine = home
    assert not settings.kek and not settings.resolved_kek_file.exists()  # read without the KEK
    first = _take(settings, engine, signer)
    latest = latest_backup(settings)
    assert latest is not None
    assert (latest["backup_id"], latest["kind"], latest["base"]) == (first.backup_id, "full", None)
    assert latest["objects"] == len(first.manifest["objects"]) > 0
    assert latest["bytes"] == sum(o["size"] for o in first.manifest["objects"]) > 0
    assert (latest["new_objects"], latest["new_bytes"]) == (first.objects_written, first.bytes_written)
    assert latest["created_at"] == first.manifest["created_at"]
    assert 0 <= latest["age_s"] < 600
    assert latest["target"] == str(Path(settings.backup_target).resolve())

    (settings.state_dir / "custody" / "later.bin").write_bytes(b"a file made after the first backup")
    second = _take(settings, engine, signer)
    latest = latest_backup(settings)
    assert (latest["backup_id"], latest["kind"], latest["base"]) == (second.backup_id, "incremental", first.backup_id)
    assert latest["new_objects"] == second.objects_written < latest["objects"]


def test_the_age_is_counted_from_the_time_the_manifest_records(home, signer) -> None:
    settings, engine = home
    taken_at = datetime.now(UTC) - timedelta(hours=30)
    _take(settings, engine, signer, now=taken_at)
    latest = latest_backup(settings, now=taken_at + timedelta(hours=30))
    assert latest["age_s"] == 30 * 3600
    assert latest["created_at"] == taken_at.isoformat()


def test_a_target_is_shown_without_credentials() -> None:
    assert public_target("s3://AKIDEXAMPLE:secret@backups/sealflow") == "s3://backups/sealflow"
    assert public_target("s3://backups/sealflow") == "s3://backups/sealflow"
    assert public_target("/mnt/backups") == "/mnt/backups"
