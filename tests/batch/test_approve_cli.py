"""``sealflow batch approve`` as a keeper first types it: without ``--keeper`` (and with no ``$USER``,
as in a container) the answer goes as the stack's administrator, whom SealFlow's answer gate refuses
(403). The one line then says who answered and how to answer as the keeper. The Airflow API is a
stand-in that answers as the gate does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel.settings import get_settings
from sealflow import batch_runner, cli
from sealflow.airflow_api import AirflowApiError


class _GateRefusesStrangers:
    def __init__(self, user: str) -> None:
        self.user = user

    def pending_approvals(self, _dag_id: str, _run: str) -> list:
        return [SimpleNamespace(run_id="batch__walk-1", subject="用章审批 walk-1")]

    def answer(self, _pending, _choice: str, _params: dict) -> None:
        if self.user != "keeper":
            raise AirflowApiError("PATCH …: 403", status=403,
                                  detail=f"{self.user} is not the keeper of seal 450000202600825362; only keeper "
                                         "can answer")

    def close(self) -> None:
        pass


@pytest.fixture
def answered_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("SEALFLOW_KEK", "66" * 32)
    monkeypatch.delenv("USER", raising=False)
    get_settings.cache_clear()
    used: list[str] = []
    monkeypatch.setattr(batch_runner, "airflow_api",
                        lambda _settings, user=None: used.append(user) or _GateRefusesStrangers(user))
    yield used
    get_settings.cache_clear()


def test_an_answer_from_the_wrong_user_says_who_answered_and_how_to_answer_as_the_keeper(
        answered_as: list[str], capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["batch", "approve", "--code", "257367"]) == 1
    err = capsys.readouterr().err.strip()
    assert answered_as == ["admin"]
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "admin is not the keeper of seal" in err
    assert "you answered as admin" in err and "--keeper NAME" in err


def test_the_keeper_named_with_keeper_is_the_one_who_answers(answered_as: list[str], monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(batch_runner, "approval_outcome", lambda _settings, _run_id: None)
    assert cli.main(["batch", "approve", "--keeper", "keeper", "--code", "257367"]) == 0
    assert answered_as == ["keeper"] and capsys.readouterr().out.startswith("answered: 用章审批 walk-1")
