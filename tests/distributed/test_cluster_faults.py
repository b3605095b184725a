"""Faults on the distributed stack (issue 17, must-have 3): a Celery worker killed with its whole
process group in the middle of a stamp chunk, a SeaweedFS volume server killed while archive_batch
uploads, the stack's PostgreSQL connections dropped during a batch, the broker (Redis) restarted
empty with a task queued, and a keeper answering the moment the 用章审批 parks. After each: every
document sealed-and-verified (or set aside with a reason), exactly one ``seal.use`` per document,
one archive package per document, the registration filed once, the audit log intact — the embedded
fault suite's checks (``tests.faults.helpers``).

One stack serves the module (each test has its own batch and checks only that batch), tuned like
the embedded fault suite's: a task whose supervisor died is failed (and retried) after 40 s, a task
queued whose Celery message was lost is re-queued after 60 s, tries 1 s apart (archive: 8 s,
doubling). It runs on its OWN ``redis-server`` (a throw-away process on a free port of the stack
range, given to the stack through ``SEALFLOW_CLUSTER_REDIS_URL``): the machine's Redis on 6379 is
shared and never restarted. PostgreSQL is the machine's too (shared): only the connections to this
stack's databases (``sf_<stack>_*``) are terminated, the server is never restarted.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from kernel.settings import Settings
from sealflow import stack
from sealflow.batch_runner import DAG_ID, airflow_api, approve, last_code, prepare_demo_seal, submit
from sealflow.stack import down, prepare_distributed, read_pid, spawn_reaper, up
from sealflow.stack.cluster import ClusterPlan
from sealflow.stack.cluster_stores import purge
from sealflow.stack.ports import free_port_block
from stamping.batch.samples import write_batch
from tests.distributed.helpers import cluster_test_settings, ran_by, unavailable, worker_of
from tests.faults.helpers import SchedulerStack, assert_batch_invariants, documents, wait_for

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.distributed]

REDIS_SERVER = "/usr/bin/redis-server"
FAST_FAULTS = {"airflow_heartbeat_timeout_s": 40, "airflow_heartbeat_check_s": 5, "airflow_orphan_check_s": 5,
               "airflow_queued_timeout_s": 60, "task_retry_delay_s": 1, "archive_retry_delay_s": 8,
               "archive_upload_workers": 1}  # one upload at a time: a volume server dies between packages
CHUNK = 4


class OwnRedis:
    """A throw-away ``redis-server`` of the test stack (no persistence: a restart loses every key)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port_block(1)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")], start_new_session=True)
        wait_for("redis-server", lambda: _pings(redis.Redis(port=self.port, socket_connect_timeout=1)), 30, 0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _pings(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


@dataclass
class Faulty:
    base: Settings  # what `up` is given
    settings: Settings  # the stack's (ports, SealFlow database on PostgreSQL)
    plan: ClusterPlan
    stack: SchedulerStack
    redis: OwnRedis


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} is not installed (the fault suite restarts a Redis of its own)")
    root = tmp_path_factory.mktemp("cluster-faults")
    redis = OwnRedis(root / "redis")
    redis.start()
    base = cluster_test_settings(root / "var", CHUNK, cluster_redis_url=redis.url, **FAST_FAULTS)
    spawn_reaper(base)
    env = None
    try:
        settings, plan = prepare_distributed(base, log.info)
        prepare_demo_seal(settings)  # first: the registry's keeper becomes the API server's user
        up(base, distributed=True, out=log.info)
        env = SchedulerStack(settings)
        yield Faulty(base, settings, plan, env, redis)
    finally:
        if env is not None:
            env.api.close()
        down(base, out=log.info, grace=3)
        purge(base)
        redis.kill()


def _submit(faulty: Faulty, folder: Path, batch_id: str, documents: int, start: int) -> str:
    write_batch(folder, documents, bad=False, start=start)
    return submit(faulty.stack.api, folder, faulty.stack.seal.es_id, batch_id)


def _finish(faulty: Faulty, run_id: str, batch_id: str, timeout: float = 900) -> None:
    """The run is green and every invariant of the fault suite holds for the batch."""
    assert faulty.stack.api.wait_for_run(DAG_ID, run_id, timeout=timeout) == "success"
    assert {d.state for d in documents(faulty.stack.sessions, batch_id)} == {"verified"}
    assert_batch_invariants(faulty.stack.sessions, faulty.stack.registry, batch_id)
    faulty.stack.downstream_invariants(batch_id, timeout=600)


def _celery_task_process(ti_id: str) -> psutil.Process | None:
    """The Celery pool process running the task: it titles itself ``airflow supervisor: <ti id>``
    (the LocalExecutor's is ``airflow worker -- <ti id>``, ``tests.faults.helpers.task_process``)."""
    for proc in psutil.process_iter(["cmdline"]):
        if f"airflow supervisor: {ti_id}" in " ".join(proc.info.get("cmdline") or []):
            return proc
    return None


def _worker_running(faulty: Faulty, proc: psutil.Process) -> str:
    """Which worker component ``proc`` (a task's supervisor) descends from."""
    for name in ("worker-1", "worker-2"):
        entry = read_pid(faulty.base, name)
        if entry is not None and proc.pid in {p.pid for p in psutil.Process(entry.pid).children(recursive=True)}:
            return name
    raise AssertionError(f"task process {proc.pid} descends from no worker")


def _kill_group(faulty: Faulty, component: str) -> None:
    """SIGKILL a component's whole process tree, as a machine's death would: its process group (it
    leads one) and every descendant — an Airflow task process leads a group of its own, so killing
    the worker's group alone would leave the task running, finishing its chunk as an orphan."""
    entry = read_pid(faulty.base, component)
    assert entry is not None, f"{component} is not running"
    tree = psutil.Process(entry.pid).children(recursive=True)
    os.killpg(entry.pid, signal.SIGKILL)
    for proc in tree:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    child = stack.CHILDREN.pop(entry.pid, None)
    if child is not None:
        child.wait(timeout=10)
    psutil.wait_procs(tree, timeout=10)


def test_a_worker_killed_mid_chunk_has_the_chunk_retried_on_the_other_and_seals_each_document_once(
        faulty: Faulty, tmp_path: Path) -> None:
    """Recovery is Airflow's, not Celery's: the layout keeps Airflow's Celery defaults (acks_late, a
    visibility timeout of 24 h), so the killed worker's unacknowledged message would come back only
    after a day (and then be refused: its try is over). The scheduler fails the task instance once
    its heartbeats have stopped for ``airflow_heartbeat_timeout_s`` and retries it; the retry goes
    to the queue and the surviving worker takes it (the killed one is restarted only afterwards)."""
    batch_id = "killworker-1"
    run_id = _submit(faulty, tmp_path / "in", batch_id, 24, 200)
    approve(faulty.settings, run_id, batch_id, faulty.stack.seal.keeper)
    ti = faulty.stack.wait_for_task_state(run_id, "stamp_chunk", "running")
    victim = wait_for("the running stamp_chunk's process", lambda: _celery_task_process(ti["id"]), 30, 0.05)
    killed = _worker_running(faulty, victim)
    _kill_group(faulty, killed)
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE

    _finish(faulty, run_id, batch_id)
    rows = {(r["task_id"], r["map_index"]): r for r in ran_by(faulty.plan.database_url("airflow"), run_id)}
    retried = rows[("stamp_chunk", ti["map_index"])]
    assert retried["try_number"] >= 2
    assert worker_of(retried) not in (None, killed), retried  # the other worker ran the retry
    up(faulty.base, distributed=True, out=log.info)  # the operator (or systemd) restarts the worker
    assert stack.alive(faulty.base, killed)


def test_a_volume_server_killed_while_archiving_is_waited_out_and_the_next_fixity_run_is_clean(
        faulty: Faulty, tmp_path: Path) -> None:
    """With replication 001 and one of the two volume servers dead, SeaweedFS serves every read from
    the other copy but takes no write (a 001 volume needs both servers: the master has no writable
    volume to assign and cannot grow one), so archive's tries fail until the server is back; the task
    retries (doubling delay) and completes then. Reads during the outage come from the replica copy."""
    from archive.fixity import run_fixity
    from archive.store import ObjectStore
    from kernel.objectstore import s3_client

    batch_id = "killvolume-1"
    bucket = faulty.settings.archive_bucket
    s3 = s3_client(faulty.settings, retries={"max_attempts": 1})
    before = _package_keys(s3, bucket)
    run_id = _submit(faulty, tmp_path / "in", batch_id, 16, 500)
    approve(faulty.settings, run_id, batch_id, faulty.stack.seal.keeper)
    first = wait_for("the batch's first archive packages", lambda: _package_keys(s3, bucket) - before, 600, 0.05)
    _kill_group(faulty, "weed-volume-1")
    try:
        key = sorted(first)[0]  # a package stored before the kill reads back from the other copy
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        _probe_write(faulty)  # what a write does meanwhile: reported (SeaweedFS's answer), not asserted
        try:
            wait_for("archive's try to fail", lambda: _archive_failed_once(faulty), 30, 1.0)
            log.info("archive failed a try while the volume server was down")
        except AssertionError:
            log.info("archive did not fail a try within 90 s of the volume server's death")
    finally:
        up(faulty.base, distributed=True, out=log.info)  # the volume server comes back
    _finish(faulty, run_id, batch_id)
    store = ObjectStore(faulty.settings)
    report = run_fixity(store, faulty.stack.sessions, store_report=False)
    designed = {"incomplete_run", "staged_run", "unpublished_run"}  # what a failed try may leave, named
    assert {p["problem"] for p in report["problems"]} <= designed, report["problems"]


def _package_keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="packages/")
    return {obj["Key"] for page in pages for obj in page.get("Contents", [])}


def _probe_write(faulty: Faulty) -> None:
    from kernel.objectstore import s3_client

    client = s3_client(faulty.settings, retries={"max_attempts": 1}, read_timeout=30)
    started = time.monotonic()
    try:
        client.put_object(Bucket=faulty.settings.work_bucket, Key="probe/volume-down", Body=b"x")
        log.info("a write with one volume server down: accepted in %.1f s", time.monotonic() - started)
    except Exception as exc:
        log.info("a write with one volume server down: refused after %.1f s (%s)", time.monotonic() - started, exc)


def _archive_failed_once(faulty: Faulty) -> bool:
    """A try of archive failed in one of the newest archive_batch runs (the ones before all succeeded)."""
    for run in faulty.stack.api.runs("archive_batch", limit=3):
        data = faulty.stack.api._call("GET", f"/dags/archive_batch/dagRuns/{run['dag_run_id']}/taskInstances")
        for ti in data["task_instances"]:
            if ti["task_id"] == "archive" and (ti["state"] in ("up_for_retry", "failed") or ti["try_number"] >= 2):
                return True
    return False


def _terminate_stack_connections(faulty: Faulty) -> int:
    """pg_terminate_backend on the connections to this stack's databases only (never the server's others)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(faulty.plan.pg_dsn, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname LIKE :mine "
                "AND pid <> pg_backend_pid()"), {"mine": f"sf\\_{faulty.plan.stack}\\_%"}).all())
    finally:
        engine.dispose()


def test_the_stack_database_connections_dropped_during_a_batch_are_retried_and_the_batch_completes(
        faulty: Faulty, tmp_path: Path) -> None:
    """Tasks and workers reconnect (pool_pre_ping) and a task whose statement was cut fails its try and
    is retried. Airflow's scheduler does not survive it: a connection terminated under its scheduling
    query ends its loop and the process exits — production runs it under a supervisor that restarts it
    (compose ``restart``, systemd ``Restart=always``); here ``up`` does that supervisor's job."""
    batch_id = "pgdrop-1"
    run_id = _submit(faulty, tmp_path / "in", batch_id, 24, 600)
    approve(faulty.settings, run_id, batch_id, faulty.stack.seal.keeper)
    faulty.stack.wait_for_task_state(run_id, "stamp_chunk", "running")
    dropped = 0
    for _ in range(3):  # three rounds, a few seconds apart: tasks, scheduler, API server all hit
        dropped += _terminate_stack_connections(faulty)
        time.sleep(3)
    assert dropped > 0
    time.sleep(5)  # a component that exits on it has done so by now
    died = [name for name, c in stack.status(faulty.base)["components"].items() if c["state"] != "running"]
    log.info("connections terminated: %s; components that exited: %s", dropped, died or "none")
    up(faulty.base, distributed=True, out=log.info)  # the supervisor restarts what exited
    _finish(faulty, run_id, batch_id)


def test_the_broker_restarted_empty_with_a_task_queued_is_requeued_by_the_scheduler(
        faulty: Faulty, tmp_path: Path) -> None:
    """Both workers are stopped, so the run's first task waits in Redis (a frozen worker would not do:
    its pending BRPOP takes the message into its socket); Redis is killed and restarted empty (no
    persistence: the worst case), the workers come back. The lost message's task stays QUEUED in
    Airflow until ``airflow_queued_timeout_s``, when the scheduler re-queues it (Airflow's event
    "stuck in queued reschedule"); the batch then completes."""
    batch_id = "redis-1"
    workers = ["worker-1", "worker-2"]
    down(faulty.base, out=log.info, only=workers, grace=3)
    try:
        run_id = _submit(faulty, tmp_path / "in", batch_id, 8, 700)
        faulty.stack.wait_for_task_state(run_id, "ingest", "queued", timeout=120)
        time.sleep(3)  # the scheduler has handed it to Celery: its message waits in Redis
        faulty.redis.kill()
        faulty.redis.start()
    finally:
        up(faulty.base, distributed=True, out=log.info)  # the workers come back (and the scheduler, if it exited)
    approve(faulty.settings, run_id, batch_id, faulty.stack.seal.keeper, timeout=600)
    _finish(faulty, run_id, batch_id)
    events = faulty.stack.api.get("/eventLogs", dag_id=DAG_ID, run_id=run_id, event="stuck in queued reschedule")
    assert [e for e in events["event_logs"] if e.get("task_id") == "ingest"], events  # re-queued, not lost


def test_an_answer_the_moment_the_approval_parks_resumes_it_in_the_same_try_on_celery(
        faulty: Faulty, tmp_path: Path) -> None:
    """The LocalExecutor's race (``plugins/sealflow_airflow/executor.py``), checked on the CeleryExecutor:
    several batches, each approved as soon as its 用章审批 parks; every approval succeeds in its first
    try and Airflow logged no "state mismatch"."""
    from tests.pipeline.test_e2e_scheduler import RACING_RUNS, _approval_outcome

    keeper = airflow_api(faulty.settings, faulty.stack.seal.keeper)
    try:
        batches = {_submit(faulty, tmp_path / f"race-{i}", f"race-{i}", 1, 800 + 10 * i): f"race-{i}"
                   for i in range(RACING_RUNS)}
        answered: set[str] = set()
        deadline = time.monotonic() + 600  # a hang guard only: the assertions are about outcomes
        while answered != set(batches):
            assert time.monotonic() < deadline, f"approvals never parked: {set(batches) - answered}"
            for pending in keeper.pending_approvals(DAG_ID, "~"):
                if pending.run_id in batches and pending.run_id not in answered:
                    code = last_code(faulty.settings, faulty.stack.seal.keeper, batches[pending.run_id])
                    keeper.answer(pending, "Approve", {"code": code})
                    answered.add(pending.run_id)
            time.sleep(0.1)
        outcomes = {run_id: _approval_outcome(faulty.stack.api, run_id) for run_id in batches}
        assert all(outcome == ("success", 1, []) for outcome in outcomes.values()), outcomes
    finally:
        keeper.close()
    for batch_id in batches.values():
        assert_batch_invariants(faulty.stack.sessions, faulty.stack.registry, batch_id)
