"""The state at rest is private: the state directory 0700, databases and secret files 0600, checked
when SealFlow starts and refused otherwise (issue 13 item 5)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gmpki.keys.store import KeyStoreError
from kernel.db import DatabaseNotPrivate, make_engine
from kernel.keys import key_store
from kernel.settings import Settings, StateNotPrivate, check_state, get_settings
from sealflow.cli import main
from tests.stack_fixtures import cli_identity_port, stop_stack


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "var"
    monkeypatch.setenv("SEALFLOW_HOME", str(home))
    monkeypatch.setenv("SEALFLOW_KEK", "")
    monkeypatch.setenv("SEALFLOW_DATABASE_URL", "")
    get_settings.cache_clear()
    old = os.umask(0o022)  # an ordinary login's umask: SealFlow must not depend on a strict one
    cli_identity_port(monkeypatch)  # demo-setup starts the stack's identity simulator
    yield home
    stop_stack(home)
    os.umask(old)
    get_settings.cache_clear()


def test_a_new_database_file_is_0600_even_under_an_open_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "state" / "sealflow.db"
        engine = make_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.commit()
            wal = _mode(path.with_name("sealflow.db-wal"))  # exists while a connection is open
        engine.dispose()
    finally:
        os.umask(old)
    assert _mode(path) == 0o600 and wal == 0o600


def test_an_open_database_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sealflow.db"
    path.touch()
    path.chmod(0o644)
    with pytest.raises(DatabaseNotPrivate, match=r"mode 644.*chmod 600"):
        make_engine(f"sqlite:///{path}")


def test_state_made_by_the_cli_is_private(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seal", "demo-setup", "--json"]) == 0
    capsys.readouterr()
    assert _mode(home) == 0o700
    assert _mode(home / "sealflow.db") == 0o600
    assert _mode(home / "kek.hex") == 0o600
    assert all(_mode(p) == 0o600 for p in (home / "keys").glob("*.json"))
    assert check_state(Settings(home=home)) is None


@pytest.mark.parametrize("victim", ["state dir", "sealflow.db", "key file", "demo pins"])
def test_the_cli_refuses_an_open_state(victim: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seal", "demo-setup", "--json"]) == 0
    capsys.readouterr()
    path = {"state dir": home, "sealflow.db": home / "sealflow.db",
            "key file": next((home / "keys").glob("*.json")),
            "demo pins": home / "registry" / "demo-pins.json"}[victim]
    path.chmod(0o755 if path.is_dir() else 0o644)
    assert main(["seal", "list"]) == 1
    err = capsys.readouterr().err
    assert "refused" in err and str(path) in err and ("chmod 700" if path.is_dir() else "chmod 600") in err


def test_check_state_names_every_open_secret(tmp_path: Path) -> None:
    home = tmp_path / "var"
    (home / "airflow").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    secrets = [home / "kek.hex", home / "airflow" / "sealflow-secrets.json", home / "airflow" / "airflow.db"]
    for path in secrets:
        path.write_text("x")
        path.chmod(0o640)
    with pytest.raises(StateNotPrivate) as caught:
        check_state(Settings(home=home))
    assert all(str(p) in str(caught.value) for p in secrets)


def test_an_open_key_file_is_refused_like_the_kek(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "var", kek="22" * 32)
    store = key_store(settings)
    store.create("k1", "pin-123456")
    (settings.keystore_dir / "k1.json").chmod(0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        store.signer("k1", "pin-123456")
