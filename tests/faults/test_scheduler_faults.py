"""Faults under the real scheduler (embedded stack, LocalExecutor), through the REST API as an office
and its seal keeper use it: a chunk out of retries, a task killed with SIGKILL, the scheduler killed
with SIGKILL. After each, every document is sealed-and-verified (or set aside with a reason), with
exactly one ``seal.use``, one archive package each, the batch's filing delivered once, and the
audit log intact.

Chunks of 4 documents keep the map small and the runs short (the suite must stay within minutes).
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import func, select

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from sealflow import stack
from sealflow.airflow_api import AirflowApi
from sealflow.batch_runner import DAG_ID, airflow_api, approve, prepare_demo_seal, submit
from stamping.batch.samples import write_batch
from stamping.registry.service import SealRegistry
from tests.faults.helpers import assert_batch_invariants, documents
from tests.stack_fixtures import stack_settings

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

APPROVAL_SETTLE_S = 8.0


class SchedulerStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        self.sessions = session_factory(engine)
        self.registry = SealRegistry(self.sessions, settings)
        self.seal = prepare_demo_seal(settings)
        self.api: AirflowApi = airflow_api(settings)

    def task_instances(self, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
        data = self.api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {(ti["task_id"], ti["map_index"]): ti for ti in data["task_instances"]}

    def wait_for_task_state(self, run_id: str, task_id: str, state: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for (tid, _index), ti in self.task_instances(run_id).items():
                if tid == task_id and ti["state"] == state:
                    return ti
            time.sleep(0.3)
        raise AssertionError(f"{task_id} never {state} in {run_id}: {self.task_instances(run_id)}")

    def downstream_invariants(self, batch_id: str, timeout: float = 240) -> None:
        """One archive package per verified document, the batch's registration filed once."""
        from archive.models import ArchiveRecord
        from filing.outbox import SENT, OutboxRecord

        verified = {d.file for d in documents(self.sessions, batch_id) if d.state == "verified"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sessions() as session:
                archived = session.scalar(select(func.count()).select_from(ArchiveRecord)
                                          .where(ArchiveRecord.batch_id == batch_id))
                filed = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "archive.register",
                                                                   OutboxRecord.subject == batch_id)).all()
            if archived >= len(verified) and filed and all(r.state == SENT for r in filed):
                break
            time.sleep(2)
        with self.sessions() as session:
            names = session.scalars(select(ArchiveRecord.document_name).where(ArchiveRecord.batch_id == batch_id))
            packages = list(names)
        assert len(packages) == len(verified), f"{len(packages)} packages for {len(verified)} documents"
        assert len(filed) == 1 and filed[0].state == SENT, [(r.record_id, r.state, r.last_error) for r in filed]
        with sqlite3.connect(stack.platform_db(self.settings)) as db:
            held = db.execute("SELECT COUNT(*) FROM filings WHERE record_id = ?", (filed[0].record_id,)).fetchone()
        assert held == (1,)


@pytest.fixture(scope="module")
def sched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerStack]:
    settings = stack_settings(tmp_path_factory.mktemp("faults") / "var").with_overrides(stamp_chunk_size=4)
    stack.spawn_reaper(settings)
    try:
        prepare_demo_seal(settings)  # first: the registry's people (the keeper) become the API server's users
        stack.up(settings, ui=True, out=lambda _m: None)
        env = SchedulerStack(settings)
        yield env
        env.api.close()
    finally:
        stack.down(settings, out=lambda _m: None)


def _approve(sched: SchedulerStack, run_id: str, batch_id: str, code: str | None = None) -> None:
    """The keeper answers once the request has been parked a while: Airflow 3.3 fails a HITL task whose
    answer overtakes the scheduler's handling of the parking (seen under load even 3 s after parking)."""
    sched.api.wait_for_approval(DAG_ID, run_id, timeout=300)
    time.sleep(APPROVAL_SETTLE_S)
    approve(sched.settings, run_id, batch_id, sched.seal.keeper, code=code)


def _run(sched: SchedulerStack, folder: Path, batch_id: str, timeout: float = 600) -> dict[str, Any]:
    run_id = submit(sched.api, folder, sched.seal.es_id, batch_id)
    _approve(sched, run_id, batch_id)
    return {"run_id": run_id, "state": sched.api.wait_for_run(DAG_ID, run_id, timeout=timeout)}


def _files_in_manifest_order(folder: Path) -> list[str]:
    with open(folder / "manifest.csv", encoding="utf-8") as handle:
        return [row["file"] for row in csv.DictReader(handle)]


def test_a_chunk_out_of_retries_fails_alone_and_the_operator_retries_it_alone(
        sched: SchedulerStack, tmp_path: Path) -> None:
    batch_id = "chunkfail-1"
    write_batch(tmp_path / "in", 12, bad=False, start=100)
    files = _files_in_manifest_order(tmp_path / "in")
    # Chunk 1 (documents 4..7) cannot write its sixth document's sealed file: a directory is in the way.
    blocker = sched.settings.state_dir / "batches" / batch_id / "out" / files[5]
    blocker.mkdir(parents=True)

    result = _run(sched, tmp_path / "in", batch_id)

    assert result["state"] == "failed"  # never green with documents not sealed
    tis = sched.task_instances(result["run_id"])
    assert {i: tis[("stamp_chunk", i)]["state"] for i in range(3)} == {0: "success", 1: "failed", 2: "success"}
    assert {i: tis[("verify_chunk", i)]["state"] for i in range(3)} == {
        0: "success", 1: "upstream_failed", 2: "success"}
    assert tis[("report", -1)]["state"] == "failed"  # the report still came, and says so
    # Chunks were verified as soon as they were stamped, not after every chunk: before chunk 1 gave up.
    assert tis[("verify_chunk", 0)]["end_date"] < tis[("stamp_chunk", 1)]["end_date"]
    report = json.loads((sched.settings.state_dir / "batches" / batch_id / "report.json").read_text())
    assert report["status"] == "incomplete" and report["pending_chunks"] == [1]
    states = {d.file: d.state for d in documents(sched.sessions, batch_id)}
    assert {states[f] for f in files[:4] + files[8:]} == {"verified"}
    assert "failed" not in states.values()
    waiting = [d for d in report["documents"] if d["state"] in ("accepted", "stamped")]
    assert waiting and all("clear stamp_chunk[1]" in d["reasons"][0] or "clear verify_chunk[1]" in d["reasons"][0]
                           for d in waiting)

    blocker.rmdir()  # the operator fixes the cause, then clears that chunk alone
    sched.api._call("POST", f"/dags/{DAG_ID}/clearTaskInstances", json={
        "dag_run_id": result["run_id"], "task_ids": [["stamp_chunk", 1]], "include_downstream": True,
        "only_failed": False, "dry_run": False, "reset_dag_runs": True})
    assert sched.api.wait_for_run(DAG_ID, result["run_id"], timeout=300) == "success"
    after = sched.task_instances(result["run_id"])
    assert after[("stamp_chunk", 0)]["try_number"] == tis[("stamp_chunk", 0)]["try_number"]  # not rerun
    assert after[("stamp_chunk", 2)]["try_number"] == tis[("stamp_chunk", 2)]["try_number"]
    assert {d.state for d in documents(sched.sessions, batch_id)} == {"verified"}
    assert_batch_invariants(sched.sessions, sched.registry, batch_id)
    sched.downstream_invariants(batch_id)


def _task_process(ti_id: str) -> psutil.Process | None:
    """The task's own process: Airflow titles it ``airflow worker -- <task instance id>``."""
    for proc in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(proc.info.get("cmdline") or []):
            return proc
    return None


def test_a_task_killed_with_sigkill_is_retried_and_seals_each_document_once(
        sched: SchedulerStack, tmp_path: Path) -> None:
    batch_id = "killtask-1"
    write_batch(tmp_path / "in", 8, bad=False, start=200)
    run_id = submit(sched.api, tmp_path / "in", sched.seal.es_id, batch_id)
    _approve(sched, run_id, batch_id)
    ti = sched.wait_for_task_state(run_id, "stamp_chunk", "running")
    deadline = time.monotonic() + 30
    while (victim := _task_process(ti["id"])) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim is not None, "the running stamp_chunk's process was not found"
    victim.send_signal(signal.SIGKILL)

    assert sched.api.wait_for_run(DAG_ID, run_id, timeout=400) == "success"
    retried = sched.task_instances(run_id)[("stamp_chunk", ti["map_index"])]
    assert retried["try_number"] >= 2
    assert {d.state for d in documents(sched.sessions, batch_id)} == {"verified"}
    assert_batch_invariants(sched.sessions, sched.registry, batch_id)
    sched.downstream_invariants(batch_id)


def test_a_scheduler_killed_with_sigkill_leaves_nothing_behind_and_the_batch_completes(
        sched: SchedulerStack, tmp_path: Path) -> None:
    batch_id = "killsched-1"
    write_batch(tmp_path / "in", 8, bad=False, start=300)
    run_id = submit(sched.api, tmp_path / "in", sched.seal.es_id, batch_id)
    _approve(sched, run_id, batch_id)
    sched.wait_for_task_state(run_id, "stamp_chunk", "running")
    scheduler = stack.read_pid(sched.settings, "scheduler")
    assert scheduler is not None
    workers = {m.pid for m in stack.stack_processes(sched.settings, ["scheduler"])} - {scheduler.pid}
    os.kill(scheduler.pid, signal.SIGKILL)
    stack._CHILDREN.pop(scheduler.pid).wait(timeout=10)
    orphans = {m.pid for m in stack.leftovers(sched.settings, ["scheduler"])}
    assert orphans & workers  # the workers it forked outlived it

    messages: list[str] = []
    stack.start_components(sched.settings, ["scheduler"], out=messages.append)  # what `stack up --ui` runs
    assert any("leftover processes" in m for m in messages), messages
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in orphans)

    assert sched.api.wait_for_run(DAG_ID, run_id, timeout=400) == "success"
    assert {d.state for d in documents(sched.sessions, batch_id)} == {"verified"}
    assert_batch_invariants(sched.sessions, sched.registry, batch_id)
    sched.downstream_invariants(batch_id)


def _code_for(sched: SchedulerStack, batch_id: str) -> str:
    """The one-time code texted to the keeper for this batch (several requests may be waiting)."""
    outbox = sched.settings.resolved_sms_outbox / f"{sched.seal.keeper}.txt"
    for line in reversed(outbox.read_text(encoding="utf-8").splitlines()):
        if f"batch {batch_id}," in line:
            return re.search(r"code (\d{6})", line).group(1)
    raise AssertionError(f"no code texted for batch {batch_id}")


def test_two_batches_finishing_together_are_both_archived_and_filed(sched: SchedulerStack, tmp_path: Path) -> None:
    runs = {}
    for n, batch_id in enumerate(("together-a", "together-b")):
        write_batch(tmp_path / batch_id, 4, bad=False, start=400 + 10 * n)
        runs[batch_id] = submit(sched.api, tmp_path / batch_id, sched.seal.es_id, batch_id)
    for run_id in runs.values():  # both waiting first, then both approved at once: they finish together
        sched.api.wait_for_approval(DAG_ID, run_id, timeout=300)
    time.sleep(APPROVAL_SETTLE_S)
    for batch_id, run_id in runs.items():
        approve(sched.settings, run_id, batch_id, sched.seal.keeper, code=_code_for(sched, batch_id))
    for run_id in runs.values():
        assert sched.api.wait_for_run(DAG_ID, run_id, timeout=400) == "success"
    for batch_id in runs:
        assert_batch_invariants(sched.sessions, sched.registry, batch_id)
        sched.downstream_invariants(batch_id, timeout=90)
