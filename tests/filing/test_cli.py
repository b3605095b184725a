"""sealflow filing setup|drain|status|retry|reconcile against a simulator of its own."""

from __future__ import annotations

import json
from argparse import Namespace

import pytest
from sqlalchemy import select

from filing.outbox import OutboxRecord, enqueue
from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from sealflow.cli import build_parser
from sealflow.commands import filing as cmd
from sealflow.exits import CheckFailed, UsageError


def _operator_cert(tmp_path, sim):
    """The platform certificate as its operator hands it over (pinned from this file, never fetched)."""
    path = tmp_path / "platform-cert-from-operator.der"
    path.write_bytes(sim.cert_der)
    return path


def test_filing_commands_end_to_end(tmp_path, own_simulator, seal_payload, capsys) -> None:
    own_sim = own_simulator
    settings = Settings(home=tmp_path / "var", kek="00" * 32, platform_url=own_sim.url, filing_key_pin="135790")
    with pytest.raises(UsageError, match="sealflow filing setup"):
        cmd.run_drain(Namespace(max=None, url=None, json=True), settings)
    assert cmd.run_setup(Namespace(ca=tmp_path / "ca", platform_cert=_operator_cert(tmp_path, own_sim)), settings) == 0
    assert (settings.state_dir / "filing" / "platform-cert.pem").is_file()

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    bad = seal_payload("CLI0002", seal_kind="secret")
    with transaction(sessions) as session:
        good = [enqueue(session, "seal.make", "CLI0001", seal_payload("CLI0001")),
                enqueue(session, "seal.renew", "CLI0001", seal_payload("CLI0001"))]
        dead = enqueue(session, "seal.make", "CLI0002", bad)
    capsys.readouterr()

    cmd.run_drain(Namespace(max=None, url=None, json=True), settings)
    drained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (drained["sent"], drained["dead"]) == (2, 1)

    cmd.run_status(Namespace(json=True), settings)
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"pending": 0, "sent": 2, "failed": 0, "dead": 1}
    assert status["dead"][0]["record_id"] == dead and "seal_kind" in status["dead"][0]["reason"]
    cmd.run_status(Namespace(json=False), settings)
    assert f"dead {dead}" in capsys.readouterr().out

    assert cmd.run_reconcile(Namespace(url=None, json=True, apply=False), settings) == 0
    assert json.loads(capsys.readouterr().out)["ours_sent"] == 2

    cmd.run_retry(Namespace(record_ids=[], dead=True, failed=False), settings)
    assert "1 records made due again" in capsys.readouterr().out
    with sessions() as session:
        assert session.scalar(select(OutboxRecord.state).where(OutboxRecord.record_id == dead)) == "pending"
    with pytest.raises(UsageError):
        cmd.run_retry(Namespace(record_ids=[], dead=False, failed=False), settings)

    with transaction(sessions) as session:  # our stored receipt no longer matches the platform's
        row = session.scalars(select(OutboxRecord).where(OutboxRecord.record_id == good[0])).one()
        row.receipt = {"receipt": dict(row.receipt["receipt"], receipt_id="RC-forged"), "signature": "x"}
    with pytest.raises(CheckFailed, match="differences"):
        cmd.run_reconcile(Namespace(url=None, json=False, apply=False), settings)
    assert "mismatch " + good[0] in capsys.readouterr().out
    engine.dispose()


def test_filing_parser() -> None:
    args = build_parser().parse_args(["filing", "retry", "--dead"])
    assert args.handler is cmd.run_retry and args.dead
    assert build_parser().parse_args(["filing", "status", "--json"]).json


def test_wrong_pin_is_a_usage_error_without_the_pin(tmp_path, own_simulator) -> None:
    settings = Settings(home=tmp_path / "var", kek="00" * 32, platform_url=own_simulator.url, filing_key_pin="135790")
    cmd.run_setup(Namespace(ca=tmp_path / "ca", platform_cert=_operator_cert(tmp_path, own_simulator)), settings)
    wrong = settings.with_overrides(filing_key_pin="999999")
    with pytest.raises(UsageError, match="wrong PIN") as refused:
        cmd.run_drain(Namespace(max=None, url=None, json=True), wrong)
    assert "999999" not in str(refused.value) and "135790" not in str(refused.value)
