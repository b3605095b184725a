"""``sealflow ca`` end to end through the CLI entry point."""

import json
from pathlib import Path

import pytest

from kernel.settings import get_settings
from sealflow import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("SEALFLOW_KEK", "33" * 32)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_init_issue_show_verify(home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["ca", "init"]) == 0
    assert cli.main(["ca", "init"]) == 0  # idempotent
    monkeypatch.setenv("SEALFLOW_PIN", "135790")
    assert cli.main(["ca", "issue", "unit-1", "--name", "示范公司", "--credit-code", "91330100MA0000001X"]) == 0
    capsys.readouterr()
    assert cli.main(["ca", "show", "--json", str(home / "unit-1.pem")]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "91330100MA0000001X" in shown[0]["subject"] and shown[0]["ca"] is False
    assert cli.main(["ca", "verify", str(home / "unit-1.pem")]) == 0
    other = home / "other"
    other.mkdir()
    from gmpki.pki.ca import DemoCA

    foreign = DemoCA.create(other / "ca")
    (other / "root.pem").write_bytes((foreign.directory / "ca-root.pem").read_bytes())
    assert cli.main(["ca", "verify", "--trust", str(other / "root.pem"), str(home / "unit-1.pem")]) == 1


def test_issue_without_pin_is_a_usage_error(home: Path) -> None:
    assert cli.main(["ca", "issue", "k", "--name", "x", "--credit-code", "91330100MA0000001X",
                     "--pin-env", "NO_SUCH_VAR_SET"]) == 2


def test_issue_twice_and_admin_unlock(home: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    from gmpki.keys.store import KeyLocked, WrongPin
    from kernel.keys import key_store

    pin = "".join(("97", "53", "11"))
    monkeypatch.setenv("SEALFLOW_PIN", pin)
    args = ["ca", "issue", "person-1", "--name", "张伟", "--id-number", "11010519491231002X"]
    assert cli.main(args) == 0
    assert cli.main(args) == 2  # the key exists already: a usage error, not a traceback
    store = key_store(get_settings())
    for _ in range(4):
        with pytest.raises(WrongPin):
            store.signer("person-1", "000000")
    with pytest.raises(KeyLocked):
        store.signer("person-1", "000000")
    monkeypatch.delenv("SEALFLOW_CA_ADMIN_PIN", raising=False)
    assert cli.main(["ca", "unlock-key", "person-1"]) == 2  # no credential given: nobody may unlock
    monkeypatch.setenv("SEALFLOW_CA_ADMIN_PIN", "a-guess-by-an-operator")
    assert cli.main(["ca", "unlock-key", "person-1"]) == 1  # no credential set yet: refused
    monkeypatch.setenv("NEW_ADMIN", "the-ca-administrators-credential")
    assert cli.main(["ca", "init", "--admin-pin-env", "NEW_ADMIN"]) == 0
    assert cli.main(["ca", "init", "--admin-pin-env", "SEALFLOW_CA_ADMIN_PIN"]) == 2  # replacing needs the current
    assert cli.main(["ca", "unlock-key", "person-1"]) == 1  # a wrong credential: refused, still locked
    assert store.is_locked("person-1")
    monkeypatch.setenv("SEALFLOW_CA_ADMIN_PIN", "the-ca-administrators-credential")
    assert cli.main(["ca", "unlock-key", "person-1"]) == 0
    assert store.signer("person-1", pin).sign(b"x")
    assert cli.main(["ca", "unlock-key", "nobody"]) == 2
    capsys.readouterr()
    assert cli.main(["audit", "show", "--action", "key.unlock", "--json"]) == 0
    unlocks = json.loads(capsys.readouterr().out)
    assert [(e["actor"], e["payload"]["key_id"]) for e in unlocks] == [("ca-admin", "person-1")]
