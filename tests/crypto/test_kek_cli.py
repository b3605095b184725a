"""``sealflow kek split|recover``: custodians' share files rebuild the home's KEK, and keys unlock again."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from kernel.keys import key_store
from kernel.settings import get_settings
from sealflow import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEALFLOW_KEK", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_three_of_five_custodians_rebuild_the_kek_and_the_key_store_opens_again(home, tmp_path, capsys):
    settings = get_settings()
    key_store(settings).create("unit-seal", "246810")
    kek_file = settings.resolved_kek_file
    original = kek_file.read_text()

    assert cli.main(["kek", "split", "--shares", "5", "--threshold", "3", "--out", str(tmp_path / "shares")]) == 0
    files = sorted((tmp_path / "shares").iterdir())
    assert len(files) == 5
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert original not in capsys.readouterr().out

    kek_file.unlink()  # the machine that held the KEK is gone
    assert cli.main(["kek", "recover", str(files[0]), str(files[2]), str(files[4])]) == 0
    assert kek_file.read_text() == original
    assert stat.S_IMODE(kek_file.stat().st_mode) == 0o600
    assert key_store(get_settings()).private_key("unit-seal", "246810") is not None  # decrypts under the KEK


def test_two_shares_of_a_three_threshold_rebuild_nothing(home, tmp_path, capsys):
    get_settings().resolved_kek_file  # noqa: B018 - the home exists
    assert cli.main(["kek", "split", "--shares", "3", "--threshold", "3", "--out", str(tmp_path / "s")]) == 0
    files = sorted((tmp_path / "s").iterdir())
    target = tmp_path / "rebuilt.hex"
    assert cli.main(["kek", "recover", str(files[0]), str(files[1]), "--to", str(target)]) == 2
    assert "3 shares are needed, 2 given" in capsys.readouterr().err
    assert not target.exists()


def test_shares_can_be_typed_on_stdin_and_an_existing_kek_is_never_overwritten(home, tmp_path, monkeypatch, capsys):
    settings = get_settings()
    assert cli.main(["kek", "split", "--shares", "2", "--threshold", "2", "--out", str(tmp_path / "s")]) == 0
    lines = "".join(f.read_text() for f in sorted((tmp_path / "s").iterdir()))
    assert cli.main(["kek", "recover"]) == 2  # the home's KEK file exists
    assert "never overwritten" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert cli.main(["kek", "recover", "--to", str(tmp_path / "k.hex")]) == 0
    assert (tmp_path / "k.hex").read_text() == settings.resolved_kek_file.read_text()


def test_split_refuses_a_folder_that_already_holds_files(home, tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    assert cli.main(["kek", "split", "--shares", "3", "--threshold", "2", "--out", str(tmp_path / "busy")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
