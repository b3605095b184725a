"""Faults under the real scheduler (embedded stack, LocalExecutor), through the REST API as an office
and its seal keeper use it: a chunk out of retries, a task killed with SIGKILL, the scheduler killed
with SIGKILL, SeaweedFS killed with SIGKILL while archive_batch uploads. After each, every document
is sealed-and-verified (or set aside with a reason), with exactly one ``seal.use``, one archive
package each, the batch's filing delivered once, and the audit log intact.

One stack serves the module (each test has its own batch, and checks only that batch). It is
tuned for faults the way an operator could tune a production scheduler: a dead task is noticed
after 40 s (heartbeat timeout, checked every 5 s) instead of 60, a dead scheduler's tasks are
adopted within 5 s, and tries are 1 s apart (archive: 8 s, the time SeaweedFS takes to come back).
Chunks of 4 documents keep the map small and the runs short (the suite must stay within minutes).
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import func, select

from gmpki.gm.sm3 import sm3
from kernel.objectstore import s3_client
from kernel.workstore import S3WorkStore
from sealflow import stack
from sealflow.batch_runner import DAG_ID, approve, prepare_demo_seal, submit
from stamping.batch import keys
from stamping.batch.samples import write_batch
from tests.faults.helpers import SchedulerStack, assert_batch_invariants, documents, task_process, wait_for
from tests.stack_fixtures import stack_settings

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

FAST_FAULTS = {"stamp_chunk_size": 4, "airflow_heartbeat_timeout_s": 40, "airflow_heartbeat_check_s": 5,
               "airflow_orphan_check_s": 5, "task_retry_delay_s": 1, "archive_retry_delay_s": 8,
               # one upload at a time: a batch's packages appear one by one, so SeaweedFS can be killed
               # between the first and the last of them
               "archive_upload_workers": 1}


@pytest.fixture(scope="module")
def sched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchedulerStack]:
    settings = stack_settings(tmp_path_factory.mktemp("faults") / "var").with_overrides(**FAST_FAULTS)
    stack.spawn_reaper(settings)
    try:
        prepare_demo_seal(settings)  # first: the registry's people (the keeper) become the API server's users
        stack.up(settings, ui=True, out=lambda _m: None)
        env = SchedulerStack(settings)
        yield env
        env.api.close()
    finally:
        stack.down(settings, out=lambda _m: None, grace=3)  # thrown away: no graceful end needed


def _approve(sched: SchedulerStack, run_id: str, batch_id: str, code: str | None = None) -> None:
    """The keeper answers as soon as the request is parked: the answer gate records the decision
    before Airflow resumes the task, so no answer has to wait for Airflow to settle."""
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
    # Chunk 1 (documents 4..7) cannot read its sixth document's received copy: the work store lost it
    # after ingest (the object is taken away before the keeper approves, and put back by the "operator").
    work = S3WorkStore(s3_client(sched.settings), sched.settings.work_bucket)
    lost = (tmp_path / "in" / files[5]).read_bytes()
    lost_key = keys.input_key(batch_id, sm3(lost).hex())
    run_id = submit(sched.api, tmp_path / "in", sched.seal.es_id, batch_id)
    deadline = time.monotonic() + 300
    while not any(d.file == files[5] for d in documents(sched.sessions, batch_id)):
        assert time.monotonic() < deadline, "ingest did not register the batch"
        time.sleep(1)
    work.delete(lost_key)
    _approve(sched, run_id, batch_id)
    result = {"run_id": run_id, "state": sched.api.wait_for_run(DAG_ID, run_id, timeout=600)}

    assert result["state"] == "failed"  # never green with documents not sealed
    tis = sched.task_instances(result["run_id"])
    assert {i: tis[("stamp_chunk", i)]["state"] for i in range(3)} == {0: "success", 1: "failed", 2: "success"}
    assert {i: tis[("verify_chunk", i)]["state"] for i in range(3)} == {
        0: "success", 1: "upstream_failed", 2: "success"}
    assert tis[("report", -1)]["state"] == "failed"  # the report still came, and says so
    # Chunks were verified as soon as they were stamped, not after every chunk: before chunk 1 gave up.
    assert tis[("verify_chunk", 0)]["end_date"] < tis[("stamp_chunk", 1)]["end_date"]
    report = json.loads(work.get(keys.batch_file_key(batch_id, "report.json")))
    assert report["status"] == "incomplete" and report["pending_chunks"] == [1]
    states = {d.file: d.state for d in documents(sched.sessions, batch_id)}
    assert {states[f] for f in files[:4] + files[8:]} == {"verified"}
    assert "failed" not in states.values()
    waiting = [d for d in report["documents"] if d["state"] in ("accepted", "stamped")]
    assert waiting and all("clear stamp_chunk[1]" in d["reasons"][0] or "clear verify_chunk[1]" in d["reasons"][0]
                           for d in waiting)

    work.put(lost_key, lost)  # the operator fixes the cause, then clears that chunk alone
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


def test_a_task_killed_with_sigkill_is_retried_and_seals_each_document_once(
        sched: SchedulerStack, tmp_path: Path) -> None:
    batch_id = "killtask-1"
    write_batch(tmp_path / "in", 8, bad=False, start=200)
    run_id = submit(sched.api, tmp_path / "in", sched.seal.es_id, batch_id)
    _approve(sched, run_id, batch_id)
    ti = sched.wait_for_task_state(run_id, "stamp_chunk", "running")
    deadline = time.monotonic() + 30
    while (victim := task_process(ti["id"])) is None and time.monotonic() < deadline:
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
    stack.CHILDREN.pop(scheduler.pid).wait(timeout=10)
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
    for batch_id, run_id in runs.items():
        approve(sched.settings, run_id, batch_id, sched.seal.keeper, code=_code_for(sched, batch_id))
    for run_id in runs.values():
        assert sched.api.wait_for_run(DAG_ID, run_id, timeout=400) == "success"
    for batch_id in runs:
        assert_batch_invariants(sched.sessions, sched.registry, batch_id)
        sched.downstream_invariants(batch_id, timeout=90)


def _package_keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="packages/")
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _archive_task(sched: SchedulerStack, after: str) -> dict[str, Any] | None:
    """The ``archive`` task of the newest archive_batch run queued after ``after`` (ISO time)."""
    for run in sched.api.runs("archive_batch", limit=5):
        if (run.get("queued_at") or run.get("run_after") or "") > after:
            data = sched.api._call("GET", f"/dags/archive_batch/dagRuns/{run['dag_run_id']}/taskInstances")
            return next((ti for ti in data["task_instances"] if ti["task_id"] == "archive"), None)
    return None


def test_seaweedfs_killed_while_archive_batch_uploads_leaves_no_unsigned_run_and_index_agrees_with_packages(
        sched: SchedulerStack, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from archive.fixity import RUN_FILES, run_fixity
    from archive.models import ArchiveRecord
    from archive.package import BATCH_SIGNATURE, untar_package
    from archive.store import ObjectStore
    from kernel.objectstore import s3_client

    batch_id = "killweed-1"
    write_batch(tmp_path / "in", 16, bad=False, start=500)
    bucket = sched.settings.archive_bucket
    s3 = s3_client(sched.settings, retries={"max_attempts": 1})
    before = _package_keys(s3, bucket)
    submitted = datetime.now(UTC).isoformat()
    run_id = submit(sched.api, tmp_path / "in", sched.seal.es_id, batch_id)
    _approve(sched, run_id, batch_id)

    # The moment archive_batch has stored its first packages of this batch: freeze the store there
    # (SIGSTOP: its clients' requests hang from this instant), check the run is not finished, kill it.
    wait_for("the batch's first archive packages", lambda: _package_keys(s3, bucket) - before, timeout=400, every=0.02)
    weed = stack.read_pid(sched.settings, "seaweedfs")
    assert weed is not None
    os.kill(weed.pid, signal.SIGSTOP)
    try:
        with sched.sessions() as session:
            published = session.scalar(select(func.count()).select_from(ArchiveRecord).where(
                ArchiveRecord.batch_id == batch_id, ArchiveRecord.state == "archived"))
        assert published == 0, "archive_batch finished before SeaweedFS was stopped: nothing was interrupted"
    finally:
        os.kill(weed.pid, signal.SIGKILL)
        child = stack.CHILDREN.pop(weed.pid, None)
        if child is not None:
            child.wait(timeout=10)
    failed_try = wait_for("archive's try to fail", lambda: (ti := _archive_task(sched, submitted)) is not None and (
        ti["state"] in ("up_for_retry", "failed") or ti["try_number"] >= 2) and ti, timeout=120)
    stack.up(sched.settings, ui=True, out=lambda _m: None)  # the operator (or systemd) restarts the store

    archive_ti = wait_for("archive_batch to end", lambda: (ti := _archive_task(sched, submitted)) is not None
                       and ti["state"] in ("success", "failed") and ti, timeout=300)
    if archive_ti["state"] == "failed":  # every try came while the store was still starting (a loaded machine):
        sched.api._call("POST", "/dags/archive_batch/clearTaskInstances", json={  # what its error says to do
            "dag_run_id": archive_ti["dag_run_id"], "task_ids": ["archive"], "only_failed": True,
            "dry_run": False, "reset_dag_runs": True})
        archive_ti = wait_for("archive_batch to succeed", lambda: (ti := _archive_task(sched, submitted)) is not None
                           and ti["state"] == "success" and ti, timeout=300)
    assert archive_ti["state"] == "success"
    assert archive_ti["try_number"] >= 2 and failed_try["try_number"] <= archive_ti["try_number"]  # Airflow retried
    assert sched.api.wait_for_run(DAG_ID, run_id, timeout=300) == "success"
    assert_batch_invariants(sched.sessions, sched.registry, batch_id)
    sched.downstream_invariants(batch_id)  # one package per verified document, the registration filed once

    with sched.sessions() as session:
        rows = list(session.scalars(select(ArchiveRecord).where(ArchiveRecord.batch_id == batch_id)))
    assert len(rows) == 16 and {r.state for r in rows} == {"archived"}
    assert _package_keys(s3, bucket) - before == {r.object_key for r in rows}  # no stray package of a dead try
    store = ObjectStore(sched.settings)
    for row in rows:  # the index's 归档时间 is the package's own
        _folder, files = untar_package(store.get(row.object_key, row.object_version), row.object_key)
        stored_at = datetime.fromisoformat(json.loads(files["metadata.json"])["archived_at"])
        indexed_at = row.archived_at if row.archived_at.tzinfo else row.archived_at.replace(tzinfo=UTC)
        assert stored_at == indexed_at, (row.archival_code, stored_at, indexed_at)

    folders: dict[str, set[str]] = {}
    for obj in store.list(f"runs/{batch_id}/"):
        folder, _, name = obj.key.rpartition("/")
        folders.setdefault(folder, set()).add(name)
    assert folders and all(BATCH_SIGNATURE in names for names in folders.values()), folders  # none unsigned
    assert any(names == set(RUN_FILES) for names in folders.values())
    report = run_fixity(store, sched.sessions, store_report=False)
    designed = {"incomplete_run", "staged_run", "unpublished_run"}  # what a crash may leave, reported as such
    assert {p["problem"] for p in report["problems"]} <= designed, report["problems"]
