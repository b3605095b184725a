"""The whole path on the embedded stack: documents dropped in the inbox → ``stamp_inbox`` →
用章审批 → stamped and verified (``stamp_batch``) → archived and locked (``archive_batch``) → filed
with receipts (``file_records``).

What is timed (wall): from the moment the batch folder is complete in ``<state>/inbox/`` (its
``batch.json`` written last, as a records office does) to the filing receipt of the batch's
archive registration. ``stamp_inbox`` is triggered through the REST API at once (its schedule
is every ten minutes: the wait for the next tick is not SealFlow's cost); ``archive_batch`` and
``file_records`` start on the Assets the runs before them emit, as in production. The keeper
answers with the texted code (``bench_pipeline.approve_after_park`` says why it waits for the
scheduler to see the approval task park). Generating the sample batch is not timed.

Figures: ``wall_s`` and ``stage_s`` (inbox scan, approval, stamp+verify, archive, filing; each
from the end of the one before), ``stack_cpu_ms_per_doc`` (CPU of every process of the stack,
tasks included, ``cpu_figures.TreeCpu``), ``domain_cpu_ms_per_doc`` — the reference measured in
the same run: the same documents through the same domain steps in this one process (ingest,
stamp and verify chunk by chunk, report, ``archive.integration.archive_batch``, the
registration queued and drained to the platform), no Airflow — on a twin batch (same kinds and
formats, other serial numbers: the archive takes each 证照标识 once); its CPU plus that of SeaweedFS, the
TSA and the platform simulator, which the work needs either way — and ``cpu_overhead_ratio``
(the first over the second; target ≤ 2), ``filed`` (archive registrations of the batch holding a
platform receipt), ``archived``, ``peak_rss_mb`` (largest single process) and
``peak_pss_total_mb`` (the stack's proportional set sizes summed).

Run: ``make bench-e2e`` (``BENCH_E2E_DOCS=10000``), or
``.venv/bin/python benchmarks/bench_e2e.py [--docs 1000] [--background-load N]``.
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from bench_pipeline import (
    REPO,
    StackSampler,
    approve_after_park,
    batch_report_file,
    domain_reference,
    keep_stack_logs,
    stack_pids,
)
from cpu_figures import BackgroundLoad, TreeCpu
from sqlalchemy import func, select

from kernel.settings import Settings
from sealflow.batch_runner import airflow_api, prepare_demo_seal
from sealflow.stack import down, spawn_reaper, up
from stamping.batch.inbox import BATCH_FILE, run_id_for
from stamping.batch.samples import write_batch

DAGS = ("stamp_inbox", "stamp_batch", "archive_batch", "file_records")
TERMINAL = {"success", "failed"}


def _wait(what: str, check, timeout: float = 3600, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def _run_after(api, dag_id: str, after: str, terminal: bool = True) -> dict[str, Any] | None:
    for run in api.runs(dag_id):
        queued = run.get("queued_at") or run.get("run_after") or ""
        if queued > after and (not terminal or run["state"] in TERMINAL):
            return run
    return None


def _filed(settings: Settings, batch_id: str) -> tuple[int, int]:
    """(archive registrations of the batch with a receipt, all of them)."""
    from filing.outbox import SENT, OutboxRecord
    from kernel.db import make_engine, session_factory

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            where = (OutboxRecord.kind == "archive.register", OutboxRecord.subject == batch_id)
            total = session.scalar(select(func.count()).where(*where)) or 0
            sent = session.scalar(select(func.count()).where(*where, OutboxRecord.state == SENT,
                                                            OutboxRecord.receipt.is_not(None))) or 0
    finally:
        engine.dispose()
    return sent, total


def _archived(settings: Settings, batch_id: str) -> int:
    from archive.models import ArchiveRun
    from kernel.db import make_engine, session_factory

    engine = make_engine(settings.resolved_database_url)
    try:
        with session_factory(engine)() as session:
            return sum(r.records for r in session.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)))
    finally:
        engine.dispose()


def domain_whole_path(settings: Settings, es_id: str, folder: Path, batch_id: str) -> dict[str, float]:
    """The reference: the whole path's domain steps in this process (see the module docstring)."""
    from tests.pipeline.plugins_path import pipeline_module

    pipeline_module(settings)
    from sealflow_airflow import archiving, root
    from sealflow_airflow.platform_hook import SealflowPlatformHook

    from archive.integration import archive_batch
    from filing.dispatcher import drain

    helpers = TreeCpu(stack_pids(settings, ("seaweedfs", "tsa", "platform"))).start()
    stamped = domain_reference(settings, es_id, folder, batch_id)
    cpu = time.process_time()
    sessions = root.sessions()
    result = archive_batch(root.settings(), sessions, batch_id, work=root.work_store(), signer=root.archive_signer(),
                           trust=root.trust())
    archiving.queue_registrations(sessions, batch_id)
    with SealflowPlatformHook().get_conn() as client:
        drain(sessions, client)
    cpu = time.process_time() - cpu
    return {"cpu_s": stamped["own_cpu_s"] + cpu + helpers.stop(),
            "verified": stamped["verified"], "archived": result.archived,
            "filed": _filed(settings, batch_id)[0]}


def measure(settings: Settings, seal: Any, docs: int, root: Path) -> dict[str, Any]:
    staging = root / "staging" / f"e2e-{docs}-{int(time.time())}"
    generated = time.perf_counter()
    expected = write_batch(staging, docs, bad=False)
    # The reference's documents: the same kinds, sizes and formats, other serial numbers (the archive
    # takes each 证照标识 once: the stack's documents would be "already archived").
    reference_folder = root / "reference"
    write_batch(reference_folder, docs, bad=False, start=9_000_000 + docs)  # serials stay 7 digits
    print(f"batch of {expected['documents']} generated in {time.perf_counter() - generated:.1f} s", flush=True)
    inbox = settings.state_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    folder = inbox / staging.name
    run_id = run_id_for(folder)
    batch_id = run_id.removeprefix("inbox__")
    api = airflow_api(settings)
    sampler = StackSampler(settings)
    stack_cpu = TreeCpu(stack_pids(settings)).start()
    load_before = os.getloadavg()[0]
    sampler.start()
    stages: dict[str, float] = {}
    try:
        shutil.move(str(staging), folder)  # one rename: the folder appears complete but for batch.json
        (folder / BATCH_FILE).write_text(json.dumps({"es_id": seal.es_id, "requester": "records-office"}))
        started = mark = time.perf_counter()
        since = datetime.now(UTC).isoformat()

        def stage(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            stages[name] = round(now - mark, 2)
            mark = now

        api.trigger("stamp_inbox", {})
        _wait("stamp_inbox run", lambda: _run_after(api, "stamp_inbox", since), timeout=600)
        stage("inbox_scan")
        approve_after_park(api, settings, run_id, batch_id, seal.keeper, keeper_wait=True)
        stage("approval")
        state = _wait("stamp_batch run", lambda: (s := api.run_state("stamp_batch", run_id)) in TERMINAL and s)
        stage("stamp_verify")
        if state != "success":
            raise RuntimeError(f"stamp_batch {run_id}: {state}")
        archive_run = _wait("archive_batch run", lambda: _run_after(api, "archive_batch", since))
        stage("archive")
        if archive_run["state"] != "success":
            raise RuntimeError(f"archive_batch {archive_run['dag_run_id']}: {archive_run['state']}")
        filed, registrations = _wait("filing receipt", lambda: (f := _filed(settings, batch_id))[1] and
                                     f[0] == f[1] and f, every=1.0)
        stage("filing")
        wall = time.perf_counter() - started
        stack_cpu.stop()
    finally:
        sampler.stop()
        api.close()
    verified = json.loads(batch_report_file(settings, batch_id, "report.json"))["counts"].get("verified", 0)
    archived = _archived(settings, batch_id)
    reference = domain_whole_path(settings, seal.es_id, reference_folder, f"domain-ref-{batch_id}"[:60])
    stack_ms = 1000 * stack_cpu.seconds / max(1, verified)
    domain_ms = 1000 * reference["cpu_s"] / max(1, reference["verified"])
    figures = {
        "docs": docs, "verified": verified, "archived": archived, "filed": filed,
        "registrations": registrations,
        "wall_s": round(wall, 2), "stage_s": stages,
        "stack_cpu_s": round(stack_cpu.seconds, 2),
        "stack_cpu_ms_per_doc": round(stack_ms, 2),
        "domain_cpu_ms_per_doc": round(domain_ms, 2),
        "cpu_overhead_ratio": round(stack_ms / domain_ms, 3) if domain_ms else None,
        "domain_reference": {k: round(v, 2) for k, v in reference.items()},
        "peak_rss_mb": round(sampler.peak_single / 2**20, 1),
        "peak_pss_total_mb": round(sampler.peak_total / 2**20, 1),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cores": psutil.cpu_count(),
    }
    if verified != expected["good"] or archived != verified or not filed:
        print(json.dumps(figures), flush=True)
        raise RuntimeError(f"{batch_id}: {verified} of {expected['good']} verified, {archived} archived, "
                           f"{filed} filed")
    return figures


def main(docs: int, background_load: int = 0) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from tests.stack_fixtures import stack_settings

    with BackgroundLoad(background_load), tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        root = Path(tmp)
        settings = stack_settings(root / "var")
        spawn_reaper(settings)
        try:
            seal = prepare_demo_seal(settings)  # first: the registry's keeper becomes the API server's user
            up(settings, ui=True, out=lambda _m: None)
            api = airflow_api(settings)
            for dag_id in DAGS:
                api.wait_for_dag(dag_id, timeout=300)
                api.unpause(dag_id)
            api.close()
            figures = measure(settings, seal, docs, root)
        except Exception:
            keep_stack_logs(settings, root, "bench-e2e-logs-")
            raise
        finally:
            down(settings, out=lambda _m: None)
    figures["background_load"] = background_load
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=int(os.environ.get("BENCH_E2E_DOCS", "1000")))
    parser.add_argument("--background-load", type=int, default=0, help="CPU burners to run alongside")
    args = parser.parse_args()
    print(json.dumps(main(args.docs, args.background_load)))
