"""Scale on the distributed stack: the same N-document batch with ONE Celery worker and with TWO.

What runs: a throw-away distributed stack (``sealflow stack up --distributed``: SeaweedFS master,
two volume servers, filer and S3 gateway; Airflow on Celery with its metadata and the SealFlow
registry on this machine's PostgreSQL, the broker on its Redis — ``SEALFLOW_CLUSTER_PG_DSN`` and
``SEALFLOW_CLUSTER_REDIS_URL``, the machine's by default) in a temporary home, its databases and
Redis keys dropped afterwards. First ``worker-2`` is stopped and a batch of N documents runs on
``worker-1`` alone; then ``worker-2`` is started again and a twin batch (same kinds and formats,
other serial numbers: the archive takes each 证照标识 once) runs on both.

What is timed per phase (wall): from the trigger of ``stamp_batch`` (REST API) to the end of the
``archive_batch`` run that archives it — approval (answered at once with the texted code),
stamp+verify chunks, report and archive. The keeper's answer is part of it; generating the batch is
not. ``stamp_s`` is the part up to ``stamp_batch``'s success. ``stack_cpu_ms_per_doc``: CPU of every
process of the stack (components, their Celery children and tasks: ``cpu_figures.TreeCpu``) per
verified document; PostgreSQL's and Redis's own CPU is not in it (they are the machine's servers,
shared) — ``pg_cpu_s`` is the CPU of the PostgreSQL server's processes over the phase, the whole
server's (other users' work included when the machine is shared).

Chunks: ``--chunk`` (default N/10, at least 50): a 1,000-document run still has ten stamp chunks to
share between workers. ``stamp_batch`` runs at most two of its tasks at once (``max_active_tasks``).

Run: ``make bench-scale`` (``BENCH_SCALE_DOCS``, default 10,000) or
``.venv/bin/python benchmarks/bench_scale.py [--docs 1000] [--chunk 100] [--workers-only 2]``
(``--workers-only 1`` or ``2``: just that phase, for a short run). Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench_e2e import TERMINAL, _archived, _run_after, _wait
from bench_pipeline import REPO, keep_stack_logs, stack_pids
from cpu_figures import TreeCpu, tree_cpu_seconds

from kernel.settings import Settings
from sealflow.batch_runner import DAG_ID, airflow_api, approve, prepare_demo_seal, submit
from sealflow.stack import down, layout, prepare_distributed, spawn_reaper, up
from sealflow.stack.cluster_stores import purge
from stamping.batch.samples import write_batch

COMPONENTS = tuple(s.component for s in layout.SERVICES)


def _pg_server_cpu() -> float:
    """CPU seconds so far of the PostgreSQL server: its postmaster's tree, the backends it has reaped
    included (``cpu_figures.tree_cpu_seconds``) — a closed connection's CPU does not vanish."""
    postmasters = []
    for proc in psutil.process_iter(["name", "ppid"]):
        try:
            if proc.info["name"] in ("postgres", "postmaster") and psutil.Process(proc.info["ppid"]).name() not in (
                    "postgres", "postmaster"):
                postmasters.append(proc.pid)
        except psutil.Error:
            continue
    return tree_cpu_seconds(postmasters)


def _verified(settings: Settings, batch_id: str) -> int:
    from sealflow import root
    from sealflow.commands.batch import batch_progress

    with root.database(settings.resolved_database_url, migrated=False) as sessions, sessions() as session:
        return batch_progress(session, batch_id)["counts"].get("verified", 0)


def phase(settings: Settings, seal: Any, folder: Path, batch_id: str, workers: int) -> dict[str, Any]:
    """One batch through stamp_batch and archive_batch on the stack as it is; its figures."""
    api = airflow_api(settings)
    cpu = TreeCpu(stack_pids(settings, COMPONENTS)).start()
    pg_before = _pg_server_cpu()
    try:
        since = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        run_id = submit(api, folder, seal.es_id, batch_id)
        approve(settings, run_id, batch_id, seal.keeper, timeout=1800)
        state = _wait("stamp_batch run", lambda: (s := api.run_state(DAG_ID, run_id)) in TERMINAL and s)
        stamp_s = time.perf_counter() - started
        if state != "success":
            raise RuntimeError(f"stamp_batch {run_id}: {state}")
        archive_run = _wait("archive_batch run", lambda: _run_after(api, "archive_batch", since))
        wall = time.perf_counter() - started
        if archive_run["state"] != "success":
            raise RuntimeError(f"archive_batch {archive_run['dag_run_id']}: {archive_run['state']}")
        cpu.stop()
    finally:
        api.close()
    verified, archived = _verified(settings, batch_id), _archived(settings, batch_id)
    return {"workers": workers, "verified": verified, "archived": archived, "wall_s": round(wall, 2),
            "stamp_s": round(stamp_s, 2), "docs_per_s": round(verified / wall, 2),
            "stack_cpu_s": round(cpu.seconds, 2),
            "stack_cpu_ms_per_doc": round(1000 * cpu.seconds / max(1, verified), 2),
            "pg_cpu_s": round(_pg_server_cpu() - pg_before, 2)}


def main(docs: int, chunk: int | None, workers_only: int | None) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    chunk = chunk or max(50, docs // 10)
    figures: dict[str, Any] = {"docs": docs, "chunk": chunk, "cores": psutil.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        base = Settings(home=root / "var", kek="00" * 32, stamp_chunk_size=chunk)
        spawn_reaper(base)
        try:
            settings, _plan = prepare_distributed(base, lambda _m: None)
            seal = prepare_demo_seal(settings)  # first: the registry's keeper becomes the API server's user
            up(base, distributed=True, out=lambda _m: None)
            load_before = os.getloadavg()[0]
            for workers in (1, 2):
                if workers_only and workers != workers_only:
                    continue
                if workers == 1:
                    down(base, out=lambda _m: None, only=["worker-2"])
                else:
                    up(base, distributed=True, out=lambda _m: None)  # worker-2 back
                folder = root / f"in-{workers}"
                write_batch(folder, docs, bad=False, start=1_000_000 * workers)  # twin batches: other serials
                result = phase(settings, seal, folder, f"scale-{workers}w-{docs}", workers)
                print(json.dumps(result), flush=True)
                figures[f"workers_{workers}"] = result
            figures["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        except Exception:
            keep_stack_logs(base, root, "bench-scale-logs-")
            raise
        finally:
            down(base, out=lambda _m: None)
            purge(base)
    one, two = figures.get("workers_1"), figures.get("workers_2")
    if one and two:
        figures["wall_s"] = {"one_worker": one["wall_s"], "two_workers": two["wall_s"]}
        figures["docs_per_s"] = {"one_worker": one["docs_per_s"], "two_workers": two["docs_per_s"]}
        figures["throughput_ratio"] = round(two["docs_per_s"] / one["docs_per_s"], 3)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=int(os.environ.get("BENCH_SCALE_DOCS", "10000")))
    parser.add_argument("--chunk", type=int, default=None, help="documents per stamp chunk (default docs/10)")
    parser.add_argument("--workers-only", type=int, choices=(1, 2), default=None,
                        help="run only the phase with this many workers")
    args = parser.parse_args()
    print(json.dumps(main(args.docs, args.chunk, args.workers_only)))
