"""The disaster path at the command line: a home is lost, and comes back from a backup plus k KEK shares."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import get_settings
from sealflow import cli
from stamping.registry import SealRegistry
from tests.backups.seeded import make_official_seal


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEALFLOW_KEK", raising=False)
    monkeypatch.delenv("SEALFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("SEALFLOW_AUDIT_KEY_PIN", "audit-pin-cli")
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    reg = SealRegistry(session_factory(engine), settings)
    make_official_seal(reg)
    engine.dispose()
    yield settings.state_dir
    get_settings.cache_clear()


def test_a_lost_home_comes_back_from_the_backup_and_three_of_five_kek_shares(home, tmp_path, capsys):
    backups, shares, root = tmp_path / "backups", tmp_path / "shares", tmp_path / "ca-root.pem"
    shutil.copy(home / "ca" / "ca-root.pem", root)  # the operator keeps the root certificate apart
    assert cli.main(["kek", "split", "--shares", "5", "--threshold", "3", "--out", str(shares)]) == 0
    assert cli.main(["backup", "create", "--to", str(backups), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["base"] is None and first["tables"]["audit_log"] > 0
    assert cli.main(["backup", "create", "--to", str(backups), "--json"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["base"] == first["backup_id"]
    assert second["objects_written"] <= 2  # only what the backup itself changed (the backup key's audit rows)

    shutil.rmtree(home)  # the disaster: the home, its database, its keys and its KEK are gone
    files = sorted(shares.iterdir())
    assert cli.main(["kek", "recover", str(files[1]), str(files[3]), str(files[4])]) == 0
    assert cli.main(["backup", "verify", "--from", str(backups), "--trust", str(root)]) == 0
    # No object store or platform here: the checks against the world are left to `backup check` (the drill
    # runs them: tests/backups/test_drill.py); without --no-check the restore says it could not run them.
    assert cli.main(["backup", "restore", "--from", str(backups), "--trust", str(root), "--json", "--no-check"]) == 0
    restored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert restored["restored"] and restored["audit_ok"] and restored["audit_entries"] >= first["tables"][
        "audit_log"]
    assert restored["world_checked"] is False
    assert (home / "sealflow.db").exists() and any((home / "keys").iterdir())
    assert cli.main(["audit", "verify", "--offline"]) == 0  # no object store here: the anchors are not reachable


def test_a_backup_target_inside_the_home_is_refused(home, capsys):
    assert cli.main(["backup", "create", "--to", str(home / "backups")]) == 2
    assert "inside the SealFlow home" in capsys.readouterr().err


def test_restore_over_a_live_home_is_refused(home, tmp_path, capsys):
    assert cli.main(["backup", "create", "--to", str(tmp_path / "b")]) == 0
    assert cli.main(["backup", "restore", "--from", str(tmp_path / "b")]) == 2
    assert "not empty" in capsys.readouterr().err
