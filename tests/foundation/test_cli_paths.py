"""The ``sealflow`` command as a person meets it, run as a real process: quiet unless asked,
one line instead of a traceback, silent when piped to ``head``, and never inventing a home."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stamping.batch.samples import MANIFEST_FIELDS, sample_rows

SEALFLOW = str(Path(sys.executable).with_name("sealflow"))


def _run(args: list[str], cwd: Path, env: dict[str, str], shell_pipe: str = "") -> subprocess.CompletedProcess:
    if shell_pipe:
        command = " ".join([SEALFLOW, *args]) + " | " + shell_pipe
        return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return subprocess.run([SEALFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment with no SealFlow home and no settings file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALFLOW_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return env


@pytest.fixture
def home_env(tmp_path: Path, bare_env: dict[str, str]) -> dict[str, str]:
    return {**bare_env, "SEALFLOW_HOME": str(tmp_path / "home"), "SEALFLOW_KEK": "44" * 32}


def test_without_a_home_commands_refuse_and_create_nothing(tmp_path: Path, bare_env: dict[str, str]) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    done = _run(["archive", "search", "--batch", "x"], folder, bare_env)
    assert done.returncode == 2
    assert "no SealFlow home found: set SEALFLOW_HOME" in done.stderr
    assert str(tmp_path / "config" / "sealflow" / "sealflow.env") in done.stderr
    assert list(folder.iterdir()) == []  # no ./var/sealflow.db made behind the user's back


def test_a_home_is_found_from_the_settings_file_or_an_existing_var(tmp_path: Path, bare_env: dict[str, str]) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (tmp_path / "config" / "sealflow").mkdir(parents=True)
    (tmp_path / "config" / "sealflow" / "sealflow.env").write_text(f"SEALFLOW_HOME={tmp_path / 'h'}\n")
    done = _run(["batch", "status", "nosuch"], folder, bare_env)
    assert done.returncode == 2 and f"no batch nosuch in {tmp_path / 'h'}" in done.stderr, done.stderr
    (tmp_path / "config" / "sealflow" / "sealflow.env").unlink()
    (folder / "var").mkdir(mode=0o700)  # a home is private (state at rest)
    done = _run(["batch", "status", "nosuch"], folder, bare_env)
    assert done.returncode == 2 and f"no batch nosuch in {folder / 'var'}" in done.stderr, done.stderr


def test_offline_verification_needs_no_home(tmp_path: Path, bare_env: dict[str, str]) -> None:
    done = _run(["verify", str(tmp_path / "missing.pdf"), "--trust", str(tmp_path / "root.pem")], tmp_path, bare_env)
    assert "no SealFlow home" not in done.stderr


def test_library_info_logs_only_with_verbose(tmp_path: Path, home_env: dict[str, str]) -> None:
    quiet = _run(["seal", "list"], tmp_path, home_env)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    loud = _run(["--verbose", "seal", "list"], tmp_path, home_env)
    assert "INFO alembic" in loud.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_needs_debug(
        tmp_path: Path, home_env: dict[str, str]) -> None:
    env = {**home_env, "SEALFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = _run(["seal", "list"], tmp_path, env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "sealflow: unexpected error: OperationalError" in done.stderr
    assert "run it again with --debug" in done.stderr
    assert "Traceback" in _run(["--debug", "seal", "list"], tmp_path, env).stderr


def test_a_stopped_stack_is_named_as_the_likely_cause(tmp_path: Path, home_env: dict[str, str]) -> None:
    """After `make stack-down`, submitting a batch met a refused connection: the hint says to look
    at the stack rather than to read a traceback."""
    from sealflow.stack.ports import free_port_block

    (tmp_path / "batch").mkdir()
    env = {**home_env, "SEALFLOW_AIRFLOW_PORT": str(free_port_block(1))}  # nothing listens there
    done = _run(["batch", "submit", str(tmp_path / "batch"), "--seal", "450000202600825362"], tmp_path, env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    first, hint = done.stderr.strip().splitlines()
    assert first.startswith("sealflow: unexpected error: ConnectError")
    assert hint.startswith("sealflow: nothing answers there: is the stack running? `sealflow stack status`")


def _batch_with_many_quarantined_rows(home: Path, tmp_path: Path) -> None:
    from kernel.db import make_engine, migrate, session_factory
    from kernel.workstore import FolderWorkStore
    from stamping.batch import process
    from stamping.placement import Placement

    folder = tmp_path / "batch"
    folder.mkdir()
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(sample_rows(3000))  # no file is there: every row is quarantined
    engine = make_engine(f"sqlite:///{home / 'sealflow.db'}")
    migrate(engine)
    tools = process.BatchTools(session_factory=session_factory(engine), store=FolderWorkStore(tmp_path / "work"))
    process.ingest(tools, batch_id="many", source=folder, es_id="es", requester="office",
                   placement=Placement.parse("anchor:（盖章）"))
    engine.dispose()


def test_a_closed_pipe_is_silent(tmp_path: Path, home_env: dict[str, str]) -> None:
    _batch_with_many_quarantined_rows(Path(home_env["SEALFLOW_HOME"]), tmp_path)
    full = _run(["batch", "status", "many"], tmp_path, home_env)
    assert len(full.stdout) > 200_000  # more than a pipe holds: the writer meets the closed pipe
    done = _run(["batch", "status", "many"], tmp_path, home_env, shell_pipe="head -2")
    assert done.stdout.startswith("batch many — ingested")
    assert done.stderr == ""


def test_batch_status_counts_each_stage_from_the_database(tmp_path: Path, home_env: dict[str, str]) -> None:
    _batch_with_many_quarantined_rows(Path(home_env["SEALFLOW_HOME"]), tmp_path)
    done = _run(["batch", "status", "many"], tmp_path, home_env)
    lines = done.stdout.splitlines()
    assert lines[0] == "batch many — ingested — seal es — approval: awaiting the keeper"
    counts = {line.split()[0]: line.split()[1] for line in lines[1:9]}
    assert counts == {"checked": "3000", "quarantined": "3000", "approved": "0", "stamped": "0",
                      "verified": "0", "failed": "0", "archived": "0", "filed": "0"}


def test_batch_status_follows_the_approval(tmp_path: Path) -> None:
    """The pipeline's own writes, in its order: a request, a wrong code (still awaiting the keeper), a
    refusal, then the same run asking again (a retried task): a refusal is final, never re-opened."""
    from kernel.db import make_engine, migrate, session_factory, transaction
    from kernel.workstore import FolderWorkStore
    from sealflow.commands.batch import batch_progress
    from stamping.batch import approval, process
    from stamping.batch.models import Batch
    from stamping.batch.sms import LocalSmsGateway
    from stamping.placement import Placement

    folder = tmp_path / "batch"
    folder.mkdir()
    rows = sample_rows(2, formats=("pdf",))
    for row in rows:
        (folder / row["file"]).write_bytes(b"%PDF-1.7\n")
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sessions = session_factory(engine)
    key = approval.load_mac_key(tmp_path / "approval-mac.key")
    tools = process.BatchTools(session_factory=sessions, store=FolderWorkStore(tmp_path / "work"))
    process.ingest(tools, batch_id="b1", source=folder, es_id="es", requester="office",
                   placement=Placement.parse("anchor:（盖章）"))

    def request() -> None:  # as sealflow_airflow.pipeline.request_approval does
        with transaction(sessions) as session:
            req = approval.request_approval(session, batch_id="b1", run_id="run-1", es_id="es", keeper="keeper",
                                            keeper_phone="keeper", requester="office", documents=2,
                                            gateway=LocalSmsGateway(tmp_path / "sms"), mac_key=key)
            if req.state == "pending":
                session.get(Batch, "b1").status = "awaiting_approval"

    def answer(approve: bool, code: str) -> approval.Decision:  # as record_decision does
        with transaction(sessions) as session:
            decision = approval.decide(session, batch_id="b1", run_id="run-1", approve=approve, code=code,
                                       responder="keeper", mac_key=key)
            if decision.final:
                session.get(Batch, "b1").status = "approved" if decision.approved else "refused"
            return decision

    def progress() -> dict:
        with sessions() as session:
            return batch_progress(session, "b1")

    request()
    assert (progress()["status"], progress()["approval"]) == ("awaiting_approval", "awaiting the keeper")
    assert not answer(True, "not-the-code").final
    assert (progress()["status"], progress()["approval"]) == ("awaiting_approval", "awaiting the keeper")
    answer(False, "")
    assert (progress()["status"], progress()["approval"], progress()["counts"]["approved"]) == (
        "refused", "refused", 0)
    request()  # the same run asks again: the refusal stands
    assert (progress()["status"], progress()["approval"]) == ("refused", "refused")
    engine.dispose()
