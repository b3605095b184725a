"""Demo steps of the batch pipeline: the demo seal, a generated batch, stamp_batch under the real
scheduler with the keeper's approval answered through Airflow's REST API, and the batch summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

DEMO_DOCUMENTS = 40


def step_seal(ctx: Any) -> None:
    from sealflow.batch_runner import prepare_demo_seal

    seal = prepare_demo_seal(ctx.settings)
    ctx.data["seal"] = seal
    ctx.note("demo seal", f"{seal.es_id} (kept by {seal.keeper}; enrolled for batch use)")


def step_batch(ctx: Any) -> None:
    from sealflow.batch_runner import run_batch
    from sealflow.stack import up
    from stamping.batch.samples import write_batch

    up(ctx.settings, ui=True, out=lambda msg: print(f"    {msg}"))
    batch_id = time.strftime("demo-%Y%m%d-%H%M%S")
    folder = ctx.settings.state_dir / "inbox" / batch_id
    expected = write_batch(folder, DEMO_DOCUMENTS, bad=True)
    print(f"    batch {batch_id}: {expected['documents']} documents ({expected['bad']} deliberately bad) in {folder}")
    seal = ctx.data["seal"]
    result = run_batch(ctx.settings, folder, seal.es_id, seal.keeper, batch_id)
    print(f"    stamp_batch: {result['state']} in {result['seconds']} s (run {result['run_id']})")
    if result["state"] != "success":
        from sealflow.cli import CheckFailed

        raise CheckFailed(f"stamp_batch ended {result['state']}; see the run {result['run_id']} in the Airflow UI")
    report_path = ctx.settings.state_dir / "batches" / batch_id / "report.json"
    report = json.loads(report_path.read_text())
    counts = report["counts"]
    ctx.data["batch"] = {"batch_id": batch_id, "report": report}
    ctx.note("batch", f"{batch_id}: {counts.get('verified', 0)} sealed and verified, "
                      f"{counts.get('quarantined', 0)} quarantined, {counts.get('failed', 0)} failed")
    for doc in report["documents"]:
        if doc["state"] in ("quarantined", "failed"):
            ctx.note(f"  {doc['state']}", f"row {doc['row']} {doc['file']}: {'; '.join(doc['reasons'])}")
    ctx.note("batch report", str(Path(report_path).with_name("report.html")))
    ctx.note("sealed documents", str(ctx.settings.state_dir / "batches" / batch_id / "out"))
    ctx.note("verify one yourself", f"sealflow verify {ctx.settings.state_dir / 'batches' / batch_id / 'out'} "
                                    f"--trust {ctx.settings.state_dir / 'ca' / 'ca-root.pem'}")
