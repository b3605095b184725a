"""The distributed stack for real (``sealflow stack up --distributed``): the layout of
``sealflow.stack.layout`` as separate processes on loopback, on this machine's PostgreSQL and Redis.

Runs when ``SEALFLOW_TEST_PG_DSN`` names a PostgreSQL server where this user may create databases
and ``SEALFLOW_TEST_REDIS_URL`` a Redis (``.ci/run`` sets both when they answer); skipped with the
reason otherwise. The stack gets a temporary home, so its own ports, databases and Redis keys; the
module's teardown stops it and drops exactly those (``cluster.purge``).

The tests run in file order and share one stack: the last one stops it (and a second stack).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernel.settings import Settings
from sealflow.batch_runner import DemoSeal, prepare_demo_seal, run_batch
from sealflow.stack import down, layout, prepare_distributed, read_pid, spawn_reaper, stack_processes, status, up
from sealflow.stack.cluster import SEAWEED_PORTS, ClusterPlan, read_plan, worker_env, worker_home
from sealflow.stack.cluster_stores import purge
from sealflow.stack.ports import SEAWEED_GRPC_OFFSET
from stamping.batch.samples import write_batch
from tests.distributed.helpers import cluster_test_settings, ran_by, unavailable, worker_of
from tests.faults.helpers import SchedulerStack, assert_batch_invariants

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.distributed]

DOCUMENTS = 2000  # "a few thousand" (issue 17), kept to 2,000 for CI time
CHUNK = 250  # 8 stamp chunks and 8 verify chunks: more tasks than one worker's two slots


@dataclass
class Cluster:
    base: Settings  # what `up` is given: the home (status and down need nothing else)
    settings: Settings  # with the stack's ports and its SealFlow database on PostgreSQL
    plan: ClusterPlan
    seal: DemoSeal


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    base = cluster_test_settings(tmp_path_factory.mktemp("cluster") / "var", CHUNK)
    spawn_reaper(base)  # stops the processes even if this run is killed (the databases then stay: purge)
    try:
        settings, plan = prepare_distributed(base, log.info)
        seal = prepare_demo_seal(settings)  # first: the registry's people become the API server's users
        up(base, distributed=True, out=log.info)
        yield Cluster(base, settings, plan, seal)
    finally:
        down(base, out=log.info)
        purge(base)


def _processes(settings: Settings) -> list[Any]:
    """Every process of the stack (psutil handles, so a PID reused later is not mistaken for one):
    the components' and what they forked (Celery's children, task supervisors, tasks)."""
    import psutil

    pids = {c["pid"] for c in status(settings)["components"].values() if c["pid"]}
    found = []
    for pid in pids | {m.pid for m in stack_processes(settings)}:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return found


def test_status_shows_every_component_of_the_layout_alive_and_ready(cluster: Cluster) -> None:
    components = status(cluster.base)["components"]
    assert set(components) == {s.component for s in layout.SERVICES}
    not_ready = {name: c for name, c in components.items() if c["state"] != "running" or not c["healthy"]}
    assert not not_ready
    assert len({c["pid"] for c in components.values()}) == len(components)  # separate processes
    for name in SEAWEED_PORTS[:len(layout.SEAWEED_SERVICES)]:
        assert components[name]["port"] == cluster.plan.ports[name]


def test_each_worker_has_its_own_home_logs_and_scratch(cluster: Cluster) -> None:
    """The workers' environments (as launched: a running Celery worker's /proc/<pid>/environ is
    overwritten by its process title): own SealFlow home, Airflow logs, log-server port and TMPDIR;
    the folders they share are exactly layout.WORKER_SHARES, as links into the stack's state."""
    seen: dict[str, tuple[str, ...]] = {}
    for service in layout.WORKERS:
        assert read_pid(cluster.base, service.component) is not None
        env = worker_env(cluster.settings, cluster.plan, service.component)
        home = worker_home(cluster.settings, service.component)
        assert env["SEALFLOW_HOME"] == str(home)
        assert env["TMPDIR"].startswith(str(home)) and env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"].startswith(str(home))
        seen[service.component] = tuple(env[k] for k in layout.WORKER_OWN_SETTINGS)
        links = {p.name: p.resolve() for p in home.iterdir() if p.is_symlink()}
        assert links == {s.name: cluster.settings.state_dir / s.name for s in layout.WORKER_SHARES}
        assert {p.name for p in home.iterdir() if not p.is_symlink()} <= {"airflow", "tmp"}  # nothing else
    first, second = seen.values()
    assert not set(first) & set(second)  # nothing of a worker's own is the other's


def _progress(settings: Settings, batch_id: str) -> dict[str, Any]:
    """What ``sealflow batch status`` shows, from the stack's SealFlow database on PostgreSQL."""
    from sealflow import root
    from sealflow.commands.batch import batch_progress

    with root.database(settings.resolved_database_url, migrated=False) as sessions, sessions() as session:
        return batch_progress(session, batch_id)


def _log_of(home: Path, run_id: str, row: dict[str, Any]) -> list[Path]:
    folder = home / "airflow" / "logs" / "dag_id=stamp_batch" / f"run_id={run_id}" / f"task_id={row['task_id']}"
    if row["map_index"] >= 0:
        folder = folder / f"map_index={row['map_index']}"
    return list(folder.glob(f"attempt={row['try_number']}.log"))


def test_a_batch_runs_to_done_across_both_workers(cluster: Cluster, tmp_path: Path) -> None:
    expected = write_batch(tmp_path / "in", DOCUMENTS, bad=False)
    result = run_batch(cluster.settings, tmp_path / "in", cluster.seal.es_id, cluster.seal.keeper, "dist-1",
                       timeout=1500)
    assert result["state"] == "success", result
    progress = _progress(cluster.settings, "dist-1")
    assert progress["status"] == "done" and progress["counts"]["verified"] == expected["good"] == DOCUMENTS
    rows = ran_by(cluster.plan.database_url("airflow"), result["run_id"])
    assert len([r for r in rows if r["task_id"] == "stamp_chunk"]) == DOCUMENTS // CHUNK
    workers = {worker_of(r) for r in rows if r["worker"]}
    assert workers == {s.component for s in layout.WORKERS}, rows
    stamped_on = {worker_of(r) for r in rows if r["task_id"] == "stamp_chunk"}
    log.info("stamp chunks per worker: %s", {w: sum(1 for r in rows if r["task_id"] == "stamp_chunk"
                                                     and worker_of(r) == w) for w in stamped_on})
    for row in rows:  # each task's log is in the own folder of the worker Celery says ran it
        if row["worker"]:  # (a task the scheduler skipped never reached a worker)
            assert _log_of(worker_home(cluster.settings, worker_of(row)), result["run_id"], row), row
    # A deferred task (the approval, parked until the keeper answers) may resume on the other worker,
    # which then writes the same attempt's log in its own folder: logs are per worker, never one folder.
    for service in layout.WORKERS:
        assert list((worker_home(cluster.settings, service.component) / "airflow" / "logs").rglob("*.log"))
    assert not list((cluster.settings.airflow_home / "logs").rglob("dag_id=stamp_batch/**/*.log"))
    # The data plane: a batch's files are in the work bucket, never in a folder of a worker or the stack.
    homes = [cluster.settings.state_dir, *(worker_home(cluster.settings, s.component) for s in layout.WORKERS)]
    assert not [home / "batches" for home in homes if (home / "batches").exists()]
    # The fault suite's invariants: one seal.use per document, audit intact, one archive package per
    # document, the batch's registration filed once.
    stack = SchedulerStack(cluster.settings)
    try:
        assert_batch_invariants(stack.sessions, stack.registry, "dist-1")
        stack.downstream_invariants("dist-1", timeout=900)
    finally:
        stack.api.close()


def test_down_stops_every_process_and_another_home_gets_other_ports(cluster: Cluster,
                                                                     tmp_path_factory: pytest.TempPathFactory
                                                                     ) -> None:
    """A second stack started beside the first picks ports, databases and a queue of its own; ``down``
    of each leaves no process of it (checked by PID)."""
    second = cluster_test_settings(tmp_path_factory.mktemp("cluster-2") / "var", CHUNK)
    spawn_reaper(second)
    try:
        up(second, distributed=True, out=log.info)
        other = read_plan(second)
        grpc = lambda plan: {plan.ports[n] + SEAWEED_GRPC_OFFSET for n in SEAWEED_PORTS}  # noqa: E731
        assert not (set(other.ports.values()) | grpc(other)) & (set(cluster.plan.ports.values()) | grpc(cluster.plan))
        assert other.queue != cluster.plan.queue
        assert {other.database(r) for r in layout.DATABASES}.isdisjoint(cluster.plan.database(r)
                                                                         for r in layout.DATABASES)
        assert all(c["healthy"] for c in status(second)["components"].values())
        for settings in (cluster.base, second):
            processes = _processes(settings)
            assert len(processes) > len(layout.SERVICES)  # the components and their children
            down(settings, out=log.info)
            assert not [p.pid for p in processes if _running(p)]
            assert not status(settings)["leftovers"]
    finally:
        down(second, out=log.info)
        purge(second)


def _running(proc: Any) -> bool:
    """Still the same process (PID and start time) and not a zombie."""
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
