"""``sealflow seal …`` and ``sealflow audit …`` end to end on a SQLite state directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kernel.db import open_database
from kernel.settings import Settings
from sealflow.cli import main
from stamping.registry.maintenance import run_maintenance
from stamping.registry.service import SealRegistry
from tests.stack_fixtures import cli_identity_port, stop_stack


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "var"
    for key, value in {"SEALFLOW_HOME": str(home), "SEALFLOW_KEK": "33" * 32, "SEALFLOW_DATABASE_URL": "",
                       "SEALFLOW_REVIEW_LEVELS": "1", "SEALFLOW_AUDIT_KEY_PIN": "audit-pin-9"}.items():
        monkeypatch.setenv(key, value)
    from kernel.settings import get_settings

    get_settings.cache_clear()
    cli_identity_port(monkeypatch)  # demo-setup starts the stack's identity simulator
    yield home
    stop_stack(home)
    get_settings.cache_clear()


def _json(capsys: pytest.CaptureFixture[str]):
    return json.loads(capsys.readouterr().out)


def _as(monkeypatch: pytest.MonkeyPatch, credentials: dict[str, str], user: str) -> None:
    """Act as ``user`` the way a person does: their name and their credential."""
    monkeypatch.setenv("SEALFLOW_USER", user)
    monkeypatch.setenv("SEALFLOW_USER_CREDENTIAL", credentials[user])


def test_seal_cli_lifecycle(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["seal", "demo-setup", "--json"]) == 0
    demo = _json(capsys)
    official = demo["es_ids"]["official"]
    assert "pins" not in demo and (Path(demo["pin_file"]).stat().st_mode & 0o777) == 0o600
    pins = json.loads(Path(demo["pin_file"]).read_text())
    assert set(pins) == set(demo["es_ids"].values())
    assert (Path(demo["credential_file"]).stat().st_mode & 0o777) == 0o600
    creds = json.loads(Path(demo["credential_file"]).read_text())
    assert main(["seal", "demo-setup", "--json"]) == 0  # idempotent: the same seals
    assert _json(capsys)["es_ids"] == demo["es_ids"]

    assert main(["seal", "list"]) == 0
    table = capsys.readouterr().out
    assert official in table and "南宁市示范行政审批局" in table and "active" in table
    assert main(["seal", "show", official, "--json"]) == 0
    assert _json(capsys)["history"][0]["to"] == "active"

    # apply → review → make from the command line, PIN from the environment
    code = demo["credit_code"]
    _as(monkeypatch, creds, "applicant")
    assert main(["seal", "apply", "--unit", code, "--kind", "official", "--type", "business",
                 "--name", "南宁市示范行政审批局合同专用章", "--keeper", "keeper", "--actor", "applicant",
                 "--json"]) == 0
    app = _json(capsys)["application"]
    _as(monkeypatch, creds, "reviewer1")
    assert main(["seal", "review", str(app), "--level", "1", "--approve"]) == 0
    assert "every level approved" in capsys.readouterr().out
    _as(monkeypatch, creds, "keeper")
    assert main(["seal", "make", str(app)]) == 2  # no PIN
    assert "SEALFLOW_SEAL_PIN" in capsys.readouterr().err
    monkeypatch.setenv("SEALFLOW_SEAL_PIN", "contract-pin")
    assert main(["seal", "make", str(app), "--json"]) == 0
    contract = _json(capsys)["es_id"]

    # refusals: exit 1 with what is wrong; unknown things exit 2
    _as(monkeypatch, creds, "applicant")
    assert main(["seal", "apply", "--unit", code, "--kind", "personal", "--name", "张四",
                 "--holder", "450102198001011231"]) in (1, 2)
    _as(monkeypatch, creds, "keeper")
    assert main(["seal", "revoke", contract, "--reason", "x"]) == 1
    assert "NotAuthorised" in capsys.readouterr().err
    assert main(["seal", "show", "450000000000000000"]) == 2
    assert "no seal" in capsys.readouterr().err

    assert main(["seal", "report-lost", contract, "--reason", "lost"]) == 0
    monkeypatch.delenv("SEALFLOW_USER")  # the OS user running demo-setup is the demo's administrator
    assert main(["seal", "resume", contract, "--reason", "found"]) == 0
    _as(monkeypatch, creds, "keeper")
    assert main(["seal", "renew", contract]) == 1
    assert "renewal opens on" in capsys.readouterr().err
    out = tmp_path / "c.esl"
    assert main(["seal", "export-esl", contract, str(out)]) == 0
    assert main(["seal", "inspect", "--json", str(out)]) == 0
    capsys.readouterr()
    assert main(["seal", "revoke", contract, "--reason", "x", "--actor", "admin"]) == 2  # a claim, not a login
    assert "authenticated as 'keeper'" in capsys.readouterr().err
    _as(monkeypatch, creds, "admin")
    assert main(["seal", "revoke", contract, "--reason", "no longer needed", "--actor", "admin"]) == 0
    assert main(["seal", "resume", contract, "--reason", "undo"]) == 1
    assert "final" in capsys.readouterr().err

    assert main(["audit", "show", "--es-id", contract, "--json"]) == 0
    actions = [e["action"] for e in _json(capsys)]
    assert actions == ["seal.make", "seal.report_lost", "seal.resume", "seal.revoke", "seal.destroy"]
    assert main(["audit", "checkpoint", "--offline"]) == 0  # no object store here: anchors are tested elsewhere
    assert "checkpoint signed" in capsys.readouterr().out
    assert main(["audit", "verify", "--offline", "--json"]) == 0
    report = _json(capsys)
    assert report["ok"] and report["covered_to"] == report["last_seq"]

    # the daily job: nothing due now; two years on, every live seal expires
    settings = Settings.from_env()
    sessions = open_database(settings.resolved_database_url)
    registry = SealRegistry(sessions, settings)
    assert run_maintenance(registry, sessions)["expired"] == []  # no object store here
    done = run_maintenance(registry, sessions, datetime.now(UTC) + timedelta(days=800))
    assert sorted(done["expired"]) == sorted(demo["es_ids"].values()) and done["checkpoint_seq"]

    # tampering shows in `audit verify` with the first bad entry
    import sqlite3

    with sqlite3.connect(home / "sealflow.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
    assert main(["audit", "verify", "--offline"]) == 1
    assert "first bad entry 3" in capsys.readouterr().err
