"""One end-to-end run of stamp_batch under the real scheduler (LocalExecutor), triggered and
approved through Airflow's REST API exactly as an office and its seal keeper do; and keepers who
answer the moment the approval parks (the HITL race of ``plugins/sealflow_airflow/executor.py``)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealflow.batch_runner import prepare_demo_seal, run_batch
from sealflow.stack import down, up
from stamping.batch.samples import write_batch
from tests.stack_fixtures import stack_settings
from tests.work_bucket import work_store

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scheduler_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    # Its own state directory: a scheduler must not pick up the dag.test() runs of other tests.
    settings = stack_settings(tmp_path_factory.mktemp("e2e") / "var")
    try:
        prepare_demo_seal(settings)  # first: the registry's people (the keeper) become the API server's users
        up(settings, ui=True, out=lambda _m: None)
        yield settings
    finally:
        down(settings, out=lambda _m: None)


def test_batch_under_the_scheduler(scheduler_stack, tmp_path: Path) -> None:
    settings = scheduler_stack
    seal = prepare_demo_seal(settings)
    expected = write_batch(tmp_path / "in", 30, bad=True)
    result = run_batch(settings, tmp_path / "in", seal.es_id, seal.keeper, "e2e-1", timeout=600)
    assert result["state"] == "success", result
    report = json.loads(work_store(settings).get("batches/e2e-1/report.json"))  # in the work bucket
    assert report["counts"]["verified"] == expected["good"]
    assert report["counts"]["quarantined"] == expected["bad"]
    assert report["status"] == "done"


def test_office_and_keeper_use_the_cli(scheduler_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture) -> None:
    """``sealflow batch submit`` by the office, ``sealflow batch approve`` by the keeper: a wrong code is
    refused at once with the tries left (exit 1) and the keeper types again; a refusal fails the run; a
    resubmitted batch gets one line. No step waits for Airflow to settle."""
    from kernel.settings import get_settings
    from sealflow import cli
    from sealflow.batch_runner import DAG_ID, airflow_api, last_code
    from sealflow.stack import sealflow_env

    settings = scheduler_stack
    seal = prepare_demo_seal(settings)
    for key, value in sealflow_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("USER", seal.keeper)  # the keeper's OS user answers as their Airflow user
    get_settings.cache_clear()
    api = airflow_api(settings)
    try:
        write_batch(tmp_path / "cli-batch", 6, bad=False, start=500)
        assert cli.main(["batch", "submit", str(tmp_path / "cli-batch"), "--seal", seal.es_id,
                         "--batch-id", "cli-1"]) == 0
        pending = api.wait_for_approval(DAG_ID, "batch__cli-1", timeout=300)
        capsys.readouterr()
        assert cli.main(["batch", "approve", "--run-id", pending.run_id, "--code", "000000"]) == 1  # wrong code
        assert "4 tries left" in capsys.readouterr().err
        assert cli.main(["batch", "approve", "--run-id", pending.run_id, "--reject"]) == 0
        assert api.wait_for_run(DAG_ID, "batch__cli-1", timeout=300) == "failed"  # refused: red, not green
        capsys.readouterr()
        cli.main(["batch", "status", "cli-1"])
        assert "refused" in capsys.readouterr().out  # nothing stamped
        assert cli.main(["batch", "report", "cli-1", "--json"]) == 0  # read from the work bucket
        assert json.loads(capsys.readouterr().out)["status"] == "refused"
        assert cli.main(["batch", "submit", str(tmp_path / "cli-batch"), "--seal", seal.es_id,
                         "--batch-id", "cli-1"]) == 1
        resubmitted = capsys.readouterr()
        assert "batch cli-1 was already submitted" in resubmitted.err and "Traceback" not in resubmitted.err
        assert len(resubmitted.err.strip().splitlines()) == 1
        write_batch(tmp_path / "cli-batch-2", 6, bad=False, start=600)
        assert cli.main(["batch", "submit", str(tmp_path / "cli-batch-2"), "--seal", seal.es_id,
                         "--batch-id", "cli-2"]) == 0
        api.wait_for_approval(DAG_ID, "batch__cli-2", timeout=300)
        code = last_code(settings, seal.keeper, "cli-2")
        assert cli.main(["batch", "approve", "--run-id", "batch__cli-2", "--code", code]) == 0
        assert api.wait_for_run(DAG_ID, "batch__cli-2", timeout=300) == "success"
        capsys.readouterr()
        assert cli.main(["batch", "status", "cli-2", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["counts"]["verified"] == 6
        task_logs = "\n".join(p.read_text(errors="replace") for p in (settings.airflow_home / "logs").rglob("*.log"))
        assert "local SMS gateway: one message" in task_logs and code not in task_logs  # the code is never logged
    finally:
        api.close()
        get_settings.cache_clear()


RACING_RUNS = 3


def test_an_answer_the_moment_the_approval_parks_resumes_it_in_the_same_try(scheduler_stack, tmp_path: Path) -> None:
    """Several batches at once, each approved as soon as its 用章审批 parks (no wait for Airflow to settle):
    every run is green and every approval succeeded in its first try, with no "state mismatch" in
    Airflow's audit log. Without the executor of ``sealflow_airflow.executor``, the parking process's
    late exit event fails resumed approvals (the retry then recovers them: try 2)."""
    from sealflow.batch_runner import DAG_ID, airflow_api, last_code, submit

    settings = scheduler_stack
    seal = prepare_demo_seal(settings)
    api, keeper = airflow_api(settings), airflow_api(settings, seal.keeper)
    try:
        batches: dict[str, str] = {}
        for i in range(RACING_RUNS):
            write_batch(tmp_path / f"race-{i}", 1, bad=False, start=800 + 10 * i)
            batches[submit(api, tmp_path / f"race-{i}", seal.es_id, f"race-{i}")] = f"race-{i}"
        answered: set[str] = set()
        deadline = time.monotonic() + 600  # a hang guard only: the assertions below are about outcomes
        while answered != set(batches):
            assert time.monotonic() < deadline, f"approvals never parked: {set(batches) - answered}"
            for pending in keeper.pending_approvals(DAG_ID, "~"):
                if pending.run_id in batches and pending.run_id not in answered:
                    code = last_code(settings, seal.keeper, batches[pending.run_id])
                    keeper.answer(pending, "Approve", {"code": code})
                    answered.add(pending.run_id)
            time.sleep(0.1)
        outcomes = {run_id: _approval_outcome(api, run_id) for run_id in batches}
        assert all(outcome == ("success", 1, []) for outcome in outcomes.values()), outcomes
    finally:
        keeper.close()
        api.close()


def _approval_outcome(api, run_id: str) -> tuple[str, int, list[str]]:
    """(run state, the approval's try number, the "state mismatch" entries of the run's audit log)."""
    from sealflow.batch_runner import DAG_ID

    state = api.wait_for_run(DAG_ID, run_id, timeout=600)
    ti = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/seal_use_approval")
    events = api.get("/eventLogs", dag_id=DAG_ID, run_id=run_id, event="state mismatch")
    return state, ti["try_number"], [str(e.get("extra", ""))[:300] for e in events["event_logs"]]
