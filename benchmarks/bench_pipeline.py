"""Pipeline benchmark: batches of 1,000 and 10,000 sample certificates through ``stamp_batch``.

What runs: a throw-away embedded stack (SeaweedFS + Airflow api-server, scheduler with the
LocalExecutor, dag-processor, triggerer) in a temporary state directory on free ports; the demo
registry with its official seal enrolled for batch use; per size a generated batch
(``stamping.batch.samples.write_batch``, PDF and OFD, several licence types, no bad rows) that is
triggered through the REST API and whose 用章审批 is answered as the keeper does — with the
one-time code from the local SMS outbox (``sealflow.batch_runner``). The run's stamp and verify
chunks are mapped tasks; the DAG's ``max_active_tasks=2`` runs two of them at once on two cores.

Figures per size:

- ``wall_s``: from the trigger to the run's terminal state as seen by the REST API (polled every
  0.25 s), approval round trip included. Generating the sample batch is not timed.
- ``docs_per_s`` and ``per_doc_ms``: documents stamped *and* verified (the report's ``verified``)
  over ``wall_s`` — so the fixed costs of a run (approval round trip, first and last task) weigh
  on 1,000 documents far more than on 10,000.
- ``domain_s``: seconds spent in SealFlow's own code: every ``stamp_chunk``/``verify_chunk``
  reports the wall seconds of its domain step (``stamping.batch.process``; on a loaded machine
  they include waiting for a CPU) in its XCom result; for
  the single tasks ``ingest`` and ``report`` the whole task duration counts as domain time (so
  overhead is, if anything, under-stated).
- ``airflow_overhead_share``: 1 − domain time on the critical path / wall, where the critical
  path counts the mapped chunks' domain time divided by the slots that run them in parallel
  (min(2, chunks)) and the single tasks' time in full. What is left is Airflow: scheduling
  latency between tasks, task process start-up and DAG parsing in each task, the approval's
  deferral and resumption, XCom and state updates.
- ``task_overhead_s``: Σ(task instance duration) − Σ(domain time) for the mapped tasks — the
  per-task cost inside task instances (start-up, DAG parse, SDK calls), summed.
- ``report_bytes_per_doc``: the batch report (``report.html``) the run wrote, in bytes per document
  of the batch (issue 16 asks for at most 5 KB).
- ``peak_rss_mb``: the largest resident set of any single process of the stack (Airflow
  components and every task process they fork), sampled every 0.5 s with psutil;
  ``peak_pss_total_mb`` is the largest sum of their proportional set sizes (every 3 s; shared
  pages split between the processes sharing them: the stack's whole footprint).
- ``cpu_s``: CPU seconds per Airflow component during the run (the scheduler's include the task
  processes); ``loadavg_1m`` the machine's load before and after — on a shared machine other
  work shows up there and in the wall time.

- ``stack_cpu_ms_per_doc``: CPU of every process of the stack (Airflow components, the tasks they
  fork, SeaweedFS, the TSA, the platform simulator) from the trigger to the run's end, per
  verified document (``cpu_figures.TreeCpu``: counts reaped task processes too). Not counted: the
  database server when it is an external PostgreSQL (SQLite, the default, is in-process).
- ``domain_cpu_ms_per_doc``: the reference measured in the same run — the same documents through
  the same domain steps (``ingest``, ``stamp_chunk``, ``verify_chunk``, ``finish`` of
  ``stamping.batch.process``, built by the Airflow glue's ``tools()``) in this one plain process,
  no Airflow, no S3; its CPU plus the TSA's for the tokens it asks for. ``cpu_overhead_ratio`` is
  the first over the second (target ≤ 2).

``--background-load N`` runs N bounded CPU burners for the whole benchmark (started and stopped
by it) to reproduce failures that show only on a loaded machine.

Run: ``make bench-pipeline`` (or ``.venv/bin/python benchmarks/bench_pipeline.py [sizes...]
[--chunk-size N] [--background-load N]``).
The last stdout line is one JSON object: the largest size's figures at the top level plus
``per_doc_ms_1000``/``per_doc_ms_10000`` and every size under ``runs``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from cpu_figures import BackgroundLoad, TreeCpu

from kernel.settings import Settings
from sealflow.airflow_api import AirflowApi, AirflowApiError
from sealflow.batch_runner import DAG_ID, airflow_api, approve, prepare_demo_seal, submit
from sealflow.stack import AIRFLOW_COMPONENTS, down, read_pid, spawn_reaper, up
from stamping.batch import process
from stamping.batch.samples import write_batch
from stamping.placement import Placement

REPO = Path(__file__).resolve().parents[1]
SIZES = (1_000, 10_000)
TERMINAL = {"success", "failed"}
DAG_SLOTS = 2  # stamp_batch's max_active_tasks
STACK_COMPONENTS = (*AIRFLOW_COMPONENTS, "seaweedfs", "tsa", "platform")



def batch_report_file(settings: Settings, batch_id: str, name: str) -> bytes:
    """A batch's ``report.json`` or ``report.html`` from the work bucket, where the tasks wrote it."""
    from kernel.objectstore import s3_client
    from kernel.workstore import S3WorkStore
    from stamping.batch.keys import batch_file_key

    return S3WorkStore(s3_client(settings), settings.work_bucket).get(batch_file_key(batch_id, name))

def stack_pids(settings: Settings, names: tuple[str, ...] = STACK_COMPONENTS) -> list[int]:
    return [entry.pid for name in names if (entry := read_pid(settings, name)) is not None]


def domain_reference(settings: Settings, es_id: str, folder: Path, batch_id: str) -> dict[str, float]:
    """CPU seconds of the domain steps alone on ``folder``'s documents, in this process (plus the TSA's).

    The Airflow glue's ``tools()`` builds the same stampers, verifiers, signer and registry look-ups
    the tasks use; the steps run one after the other, chunk by chunk, as the DAG would."""
    sys.path.insert(0, str(REPO))
    from tests.pipeline.plugins_path import pipeline_module

    tools = pipeline_module(settings).tools()
    tsa = TreeCpu(stack_pids(settings, ("tsa",))).start()
    cpu, wall = time.process_time(), time.perf_counter()
    process.ingest(tools, batch_id=batch_id, source=folder, es_id=es_id, requester="applicant",
                   placement=Placement.parse("anchor:（盖章）"), options={"pdf_container": "pkcs7"},
                   chunk_size=settings.stamp_chunk_size)
    for chunk in process.chunks(tools, batch_id):
        process.stamp_chunk(tools, batch_id, chunk, "bench-keeper")
    verified = sum(process.verify_chunk(tools, batch_id, chunk)["verified"]
                   for chunk in process.chunks(tools, batch_id))
    process.finish(tools, batch_id)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    tsa_cpu = tsa.stop()
    return {"cpu_s": cpu + tsa_cpu, "own_cpu_s": cpu, "tsa_cpu_s": tsa_cpu, "wall_s": wall, "verified": verified}


class StackSampler(threading.Thread):
    """Samples memory and CPU time of the stack's processes and all their descendants.

    RSS every ``interval`` (cheap); PSS, which walks every mapping, every ``pss_every`` samples so
    the sampler itself does not take the CPU it measures. CPU seconds are summed per component
    (the scheduler's include its LocalExecutor workers and the task processes they fork).
    """

    def __init__(self, settings: Settings, interval: float = 0.5, pss_every: int = 6) -> None:
        super().__init__(daemon=True)
        self.settings, self.interval, self.pss_every = settings, interval, pss_every
        self.peak_single = 0
        self.peak_total = 0
        self._procs: dict[int, tuple[str, psutil.Process]] = {}
        self._cpu: dict[int, tuple[str, float]] = {}
        self._start_cpu: dict[int, float] = {}
        self._halt = threading.Event()
        self._roots = [(name, psutil.Process(entry.pid)) for name in AIRFLOW_COMPONENTS
                       if (entry := read_pid(settings, name)) is not None and psutil.pid_exists(entry.pid)]

    @staticmethod
    def _cpu_seconds(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return times.user + times.system

    def sample(self, count: int) -> None:
        rss_sum = pss_sum = 0
        for name, root in self._roots:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                known = self._procs.setdefault(proc.pid, (name, proc))[1]  # same object: cpu_times stay valid
                with contextlib.suppress(psutil.Error):
                    if proc.pid not in self._start_cpu:
                        self._start_cpu[proc.pid] = self._cpu_seconds(known) if count == 0 else 0.0
                    self._cpu[proc.pid] = (name, self._cpu_seconds(known))
                    rss = known.memory_info().rss
                    self.peak_single = max(self.peak_single, rss)
                    rss_sum += rss
                    if count % self.pss_every == 0:
                        pss_sum += known.memory_full_info().pss
        if count % self.pss_every == 0:
            self.peak_total = max(self.peak_total, pss_sum)

    def cpu_by_component(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, (name, seconds) in self._cpu.items():
            out[name] = out.get(name, 0.0) + seconds - self._start_cpu.get(pid, 0.0)
        return {k: round(v, 1) for k, v in sorted(out.items())}

    def run(self) -> None:
        count = 0
        while not self._halt.is_set():
            self.sample(count)
            count += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def keep_stack_logs(settings: Settings, root: Path, prefix: str) -> None:
    """After a failed run: stop the stack, copy its logs and Airflow's out of the temporary ``root`` (which
    goes) into a new folder named ``prefix``…, and say where — the only trace left of what went wrong."""
    keep = Path(tempfile.mkdtemp(prefix=prefix))
    down(settings, out=lambda _m: None)
    for folder in (settings.state_dir / "logs", settings.airflow_home / "logs"):
        if folder.is_dir():
            shutil.copytree(folder, keep / folder.relative_to(root), dirs_exist_ok=True)
    print(f"the stack's logs are kept in {keep}", flush=True)


def _duration(ti: dict[str, Any]) -> float:
    if ti.get("duration") is not None:
        return float(ti["duration"])
    return 0.0


def task_instances(api: AirflowApi, run_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
                         params={"limit": 100, "offset": len(out)})
        items = page.get("task_instances", [])
        out.extend(items)
        if not items or len(out) >= page.get("total_entries", 0):
            return out


def xcom_value(api: AirflowApi, run_id: str, task_id: str, map_index: int) -> Any:
    try:
        entry = api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
                          params={"map_index": map_index, "deserialize": True})
    except AirflowApiError:  # a failed task has no result; the run's state says so
        return None
    value = entry.get("value")
    return json.loads(value) if isinstance(value, str) else value


def _log_tail(settings: Settings, run_id: str, ti: dict[str, Any], lines: int = 15) -> str:
    """The end of a failed task's last log (the stack and its logs go away with the benchmark)."""
    folder = settings.airflow_home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={ti['task_id']}"
    if ti["map_index"] >= 0:
        folder = folder / f"map_index={ti['map_index']}"
    logs = sorted(folder.glob("attempt=*.log"))
    if not logs:
        return f"    (no log under {folder})"
    text = logs[-1].read_text(errors="replace").splitlines()
    errors = [line for line in text if '"level":"error"' in line]  # in full: the cause is in their detail
    return "\n".join(["    " + line[:400] for line in text[-lines:]] + ["  errors in full:"] + errors)


def _parked(settings: Settings, run_id: str, task_id: str = "seal_use_approval") -> bool:
    """Has the scheduler taken in the executor's report of the approval task's parking exit?"""
    log = settings.state_dir / "logs" / "scheduler.log"
    needle = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{DAG_ID}', " \
             f"task_id='{task_id}', run_id='{run_id}'"
    return log.is_file() and needle in log.read_text(errors="replace")


def _dropped_events(settings: Settings, run_id: str) -> int:
    """Parking-exit events of ``run_id``'s tasks the stack's executor dropped (each one a race it closed)."""
    log = settings.state_dir / "logs" / "scheduler.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    return sum(1 for line in text.splitlines() if "Dropped executor event" in line and f"run_id='{run_id}'" in line)


def approve_after_park(api: AirflowApi, settings: Settings, run_id: str, batch_id: str, keeper: str,
                       keeper_wait: bool) -> None:
    """Answer the 用章审批 as the keeper; with ``keeper_wait``, only once the scheduler has seen the
    approval task's process exit after parking (AWAITING_INPUT).

    Why the choice: Airflow 3.3.2's LocalExecutor let the parking process's late exit event fail the
    resumed task when the answer came at once (upstream issues #67287 and #72716). The stack's
    executor (``plugins/sealflow_airflow/executor.py``) drops that event at its source, so
    ``--keeper-no-wait`` (an answer at once) checks the fix: ``approval_tries`` stays 1 and
    ``stale_events_dropped`` counts the events the executor kept from failing it."""
    if keeper_wait:
        api.wait_for_approval(DAG_ID, run_id, timeout=600)
        deadline = time.monotonic() + 120
        while not _parked(settings, run_id) and time.monotonic() < deadline:
            time.sleep(0.2)
    approve(settings, run_id, batch_id, keeper, timeout=600)


def measure(settings: Settings, seal: Any, size: int, root: Path, keeper_wait: bool = True) -> dict[str, Any]:
    folder = root / f"in-{size}"
    generated = time.perf_counter()
    # New licence serials each run: a licence sealed before is quarantined unless declared 换发/补发.
    expected = write_batch(folder, size, bad=False, start=secrets.randbelow(9_000_000))
    generated = time.perf_counter() - generated
    print(f"batch of {expected['documents']} generated in {generated:.1f} s", flush=True)
    api = airflow_api(settings)
    load_before = os.getloadavg()[0]
    sampler = StackSampler(settings)
    stack_cpu = TreeCpu(stack_pids(settings)).start()
    sampler.start()
    try:
        started = time.perf_counter()
        batch_id = f"bench-{size}-{int(time.time())}"
        run_id = submit(api, folder, seal.es_id, batch_id)
        approve_after_park(api, settings, run_id, batch_id, seal.keeper, keeper_wait)
        approved = time.perf_counter() - started
        while (state := api.run_state(DAG_ID, run_id)) not in TERMINAL:
            if time.perf_counter() - started > 3600:
                raise RuntimeError(f"run {run_id} did not finish within an hour")
            time.sleep(0.25)
        wall = time.perf_counter() - started
        stack_cpu.stop()
    finally:
        sampler.stop()
    tis = task_instances(api, run_id)
    mapped_domain = mapped_ti = serial = 0.0
    per_task: dict[str, float] = {}
    domain: dict[str, float] = {}
    for ti in tis:
        task_id = ti["task_id"]
        per_task[task_id] = per_task.get(task_id, 0.0) + _duration(ti)
        if task_id in ("stamp_chunk", "verify_chunk"):
            mapped_ti += _duration(ti)
            result = xcom_value(api, run_id, task_id, ti["map_index"])
            seconds = float((result or {}).get("seconds", 0.0))
            mapped_domain += seconds
            domain[task_id] = domain.get(task_id, 0.0) + seconds
        elif task_id in ("ingest", "report"):
            serial += _duration(ti)
    api.close()
    if state != "success":
        for ti in tis:
            print(f"  {ti['task_id']}[{ti['map_index']}]: {ti['state']} {_duration(ti):.1f} s", flush=True)
            if ti["state"] == "failed":
                print(_log_tail(settings, run_id, ti), flush=True)
    chunks = sum(1 for ti in tis if ti["task_id"] == "stamp_chunk")
    batch_id = run_id.removeprefix("batch__")
    report = json.loads(batch_report_file(settings, batch_id, "report.json"))
    verified = report["counts"].get("verified", 0)
    html = batch_report_file(settings, batch_id, "report.html")
    report_bytes = len(html)
    kept = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-report-{size}-")) / "report.html"
    kept.write_bytes(html)  # the stack's bucket goes; the report stays to be read
    # A twin batch (same kinds and formats, other serials): a licence sealed once is quarantined after.
    twin = root / f"ref-{size}-{int(time.time())}"
    write_batch(twin, size, bad=False, start=9_000_000 + secrets.randbelow(900_000))
    reference = domain_reference(settings, seal.es_id, twin, f"domain-ref-{size}-{int(time.time())}")
    stack_ms = 1000 * stack_cpu.seconds / max(1, verified)
    domain_ms = 1000 * reference["cpu_s"] / max(1, reference["verified"])
    critical_domain = serial + mapped_domain / max(1, min(DAG_SLOTS, chunks))
    figures = {
        "docs": size,
        "verified": verified,
        "report_html_bytes": report_bytes,
        "report_bytes_per_doc": round(report_bytes / max(1, report["counts"].get("documents", 0)), 1),
        "report_html": str(kept),
        "state": state,
        "wall_s": round(wall, 2),
        "docs_per_s": round(verified / wall, 1),
        "per_doc_ms": round(1000 * wall / max(1, verified), 2),
        "approval_s": round(approved, 2),
        "approval_tries": next((ti["try_number"] for ti in tis if ti["task_id"] == "seal_use_approval"), 0),
        "stale_events_dropped": _dropped_events(settings, run_id),
        "chunks": chunks,
        "domain_s": round(serial + mapped_domain, 2),
        "airflow_overhead_share": round(max(0.0, 1 - critical_domain / wall), 3),
        "task_overhead_s": round(mapped_ti - mapped_domain, 2),
        "domain_seconds": {k: round(v, 2) for k, v in sorted(domain.items())},
        "task_seconds": {k: round(v, 2) for k, v in sorted(per_task.items())},
        "stack_cpu_s": round(stack_cpu.seconds, 2),
        "stack_cpu_ms_per_doc": round(stack_ms, 2),
        "domain_cpu_ms_per_doc": round(domain_ms, 2),
        "domain_wall_s": round(reference["wall_s"], 2),
        "cpu_overhead_ratio": round(stack_ms / domain_ms, 3) if domain_ms else None,
        "cpu_s": sampler.cpu_by_component(),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "peak_rss_mb": round(sampler.peak_single / 2**20, 1),
        "peak_pss_total_mb": round(sampler.peak_total / 2**20, 1),
    }
    print(json.dumps(figures), flush=True)
    if state != "success" or verified != expected["good"]:
        raise RuntimeError(f"run {run_id}: {state}, {verified} of {expected['good']} verified")
    return figures


def main(sizes: tuple[int, ...], chunk_size: int | None = None, background_load: int = 0,
         keeper_wait: bool = True) -> dict[str, Any]:
    with BackgroundLoad(background_load):
        summary = _main(sizes, chunk_size, keeper_wait)
    summary["background_load"] = background_load
    return summary


def _main(sizes: tuple[int, ...], chunk_size: int | None = None, keeper_wait: bool = True) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))  # run as a script: the tests' stack settings (free ports away from others)
    from tests.stack_fixtures import stack_settings

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        root = Path(tmp)
        settings = stack_settings(root / "var")
        if chunk_size:
            settings = dataclasses.replace(settings, stamp_chunk_size=chunk_size)
        spawn_reaper(settings)  # the stack stops even if this benchmark is killed
        try:
            seal = prepare_demo_seal(settings)  # first: the registry's keeper becomes the API server's user
            up(settings, ui=True, out=lambda _m: None)
            api = airflow_api(settings)
            api.wait_for_dag(DAG_ID, timeout=300)
            api.close()
            runs = [measure(settings, seal, size, root, keeper_wait) for size in sizes]
        except Exception:
            keep_stack_logs(settings, root, "bench-pipeline-logs-")
            raise
        finally:
            down(settings, out=lambda _m: None)
    last = runs[-1]
    summary = {k: last[k] for k in ("docs", "wall_s", "docs_per_s", "peak_rss_mb", "peak_pss_total_mb",
                                    "airflow_overhead_share", "domain_s", "task_overhead_s", "stack_cpu_ms_per_doc",
                                    "domain_cpu_ms_per_doc", "cpu_overhead_ratio")}
    for run in runs:
        summary[f"per_doc_ms_{run['docs']}"] = run["per_doc_ms"]
    summary["cores"] = psutil.cpu_count()
    summary["stamp_chunk_size"] = chunk_size or Settings().stamp_chunk_size
    summary["runs"] = runs
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES), help="batch sizes, in order")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="documents per stamp/verify task (default: Settings.stamp_chunk_size)")
    parser.add_argument("--background-load", type=int, default=0,
                        help="CPU burners to run alongside (a loaded machine, to reproduce failures under load)")
    parser.add_argument("--keeper-no-wait", action="store_true",
                        help="answer the approval at once (reproduces Airflow's stale-event failure under load)")
    args = parser.parse_args()
    print(json.dumps(main(tuple(args.sizes), args.chunk_size, args.background_load, not args.keeper_no_wait)))
