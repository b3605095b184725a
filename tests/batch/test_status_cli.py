"""``sealflow batch status`` while a batch waits for its 用章审批: the office reading it learns who
answers and the exact command, with the run it belongs to; once answered, that line is gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kernel.db import session_factory, transaction
from kernel.settings import get_settings
from sealflow import cli
from stamping.batch.approval import request_id_of
from stamping.batch.models import Batch, SealUseApproval

ES_ID = "450000202600825362"


@pytest.fixture
def waiting(db_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("SEALFLOW_KEK", "66" * 32)
    monkeypatch.setenv("SEALFLOW_DATABASE_URL", db_engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    sessions = session_factory(db_engine)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.add(Batch(batch_id="walk-1", source=str(tmp_path / "in"), es_id=ES_ID, requester="applicant",
                          status="awaiting_approval", work_dir="", created_at=now, run_id="batch__walk-1"))
        session.add(SealUseApproval(request_id=request_id_of("walk-1"), batch_id="walk-1", run_id="batch__walk-1",
                                    es_id=ES_ID, keeper="keeper", requester="applicant", documents=60, code_salt="",
                                    code_digest="", expires_at=now + timedelta(minutes=30)))
    yield sessions
    get_settings.cache_clear()


def test_a_batch_awaiting_approval_names_the_keeper_and_the_command(waiting, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["batch", "status", "walk-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "approval: awaiting the keeper" in lines[0]
    assert lines[1].strip() == ("the keeper answers with the texted code: sealflow batch approve --keeper keeper "
                                "--run-id batch__walk-1 --code CODE (or in the Airflow UI)")


def test_once_approved_the_status_no_longer_asks(waiting, capsys: pytest.CaptureFixture) -> None:
    with transaction(waiting) as session:
        session.get(Batch, "walk-1").status = "approved"
        session.get(SealUseApproval, request_id_of("walk-1")).state = "approved"
    assert cli.main(["batch", "status", "walk-1"]) == 0
    out = capsys.readouterr().out
    assert "approval: approved" in out and "batch approve" not in out
