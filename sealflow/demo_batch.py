"""Demo steps of the batch pipeline: the demo seal, a generated batch, stamp_batch under the real
scheduler with the keeper's approval answered through Airflow's REST API, and the batch summary."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stamping.batch.keys import batch_file_key, sealed_prefix

DEMO_DOCUMENTS = 40


def step_seal(ctx: Any) -> None:
    from sealflow.batch_runner import prepare_demo_seal

    seal = prepare_demo_seal(ctx.settings)
    ctx.data["seal"] = seal
    ctx.note("demo seal", f"{seal.es_id} (kept by {seal.keeper}; enrolled for batch use)")
    ctx.note("identity checks", identity_line(ctx.settings))


def identity_line(settings: Any) -> str:
    """What the identity register answers (over HTTP) for the demo's keeper, and for a wrong number:
    the checks that applying for and using the demo's seals passed, and that a stranger would not."""
    from sealflow.root import with_stack_identity
    from stamping.registry.demo import DEMO_PERSON, DEMO_PERSON_ID
    from stamping.registry.identity_source import HttpIdentitySource, IdentityUnavailable

    url = with_stack_identity(settings).identity_url
    if not url:
        return "no identity register configured: applying for and using seals is refused"
    source = HttpIdentitySource(url)
    try:
        good = source.check_person(DEMO_PERSON, DEMO_PERSON_ID)
        wrong = source.check_person(DEMO_PERSON, "110101199001010000")
    except IdentityUnavailable as exc:
        return f"{url} did not answer ({exc}): seals cannot be applied for or used"
    finally:
        source.close()
    return (f"{url}: keeper {DEMO_PERSON} {'confirmed' if good.match else 'NOT confirmed'} on apply and use; "
            f"a wrong 公民身份号码 is refused ({wrong.reason})")


def step_batch(ctx: Any) -> None:
    from sealflow.batch_runner import run_batch
    from sealflow.stack import up
    from stamping.batch.samples import write_batch

    up(ctx.settings, ui=True, out=lambda msg: print(f"    {msg}"))
    batch_id = time.strftime("demo-%Y%m%d-%H%M%S")
    folder = ctx.settings.state_dir / "samples" / batch_id
    import secrets

    # New serial numbers each run: the archive keeps one record per certificate (证照标识).
    expected = write_batch(folder, DEMO_DOCUMENTS, bad=True, start=secrets.randbelow(9_000_000))
    print(f"    batch {batch_id}: {DEMO_DOCUMENTS} certificates and {expected['documents'] - DEMO_DOCUMENTS} "
          f"deliberately bad rows in {folder} ({expected['bad']} rows to be set aside: a duplicate 证照编号 "
          f"quarantines both rows that carry it)")
    seal = ctx.data["seal"]
    ctx.data["batch_started"] = datetime.now(UTC).isoformat()
    result = run_batch(ctx.settings, folder, seal.es_id, seal.keeper, batch_id)
    print(f"    stamp_batch: {result['state']} in {result['seconds']} s (run {result['run_id']})")
    if result["state"] != "success":
        from sealflow.exits import CheckFailed

        raise CheckFailed(f"stamp_batch ended {result['state']}; see the run {result['run_id']} in the Airflow UI")
    from sealflow.root import work_store

    store = work_store(ctx.settings)
    report = json.loads(store.get(batch_file_key(batch_id, "report.json")))
    counts = report["counts"]
    ctx.data["batch"] = {"batch_id": batch_id, "report": report}
    ctx.note("batch", f"{batch_id}: {counts.get('verified', 0)} sealed and verified, "
                      f"{counts.get('quarantined', 0)} quarantined, {counts.get('failed', 0)} failed")
    for doc in report["documents"]:
        if doc["state"] in ("quarantined", "failed"):
            ctx.note(f"  {doc['state']}", f"row {doc['row']} {doc['file']}: {'; '.join(doc['reasons'])}")
    ctx.note("batch report", store.name(batch_file_key(batch_id, "report.html")))
    ctx.note("sealed documents", f"{store.name(sealed_prefix(batch_id))} (the work bucket)")
    copies = copy_sealed(store, batch_id, folder.with_name(f"{batch_id}-sealed"), report["documents"])
    ca = ctx.settings.state_dir / "ca"
    ctx.note("verify one yourself", f"sealflow verify {copies} "
                                    f"--trust {ca / 'ca-root.pem'} --trust {ca / 'ca-intermediate.pem'}")
    ctx.data["stamp_yourself"] = stamp_yourself(ctx.settings, seal, folder)


def copy_sealed(store: Any, batch_id: str, folder: Path, documents: list[dict]) -> Path:
    """A copy of the batch's sealed files for the person running the demo to open and verify by hand
    (the pipeline itself reads them from the work bucket only). Each copy is named after the file it
    was made from (the report's rows); the stored name, ``<input SM3>-<row>.<ext>``, only when two
    rows share a file name."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {str(d["row"]): Path(d["file"]).name for d in documents}
    taken: set[str] = set()
    for key in store.keys(sealed_prefix(batch_id)):
        stored = key.rsplit("/", 1)[-1]
        name = names.get(stored.rsplit(".", 1)[0].rsplit("-", 1)[-1], stored)
        name = stored if name in taken else name
        taken.add(name)
        (folder / name).write_bytes(store.get(key))
    return folder


def stamp_yourself(settings: Any, seal: Any, folder: Path) -> list[str]:
    """The closing lines of the demo: a seal, its PIN (in a 0600 file, never printed) and the
    commands to stamp and verify one document by hand."""
    from sealflow.batch_runner import personal_pin_file
    from stamping.registry.demo import credentials_file

    pin_file = personal_pin_file(settings)
    if not seal.personal_es_id or not pin_file.exists():
        return ["The demo's personal seal was made by an earlier demo whose PIN was not kept;",
                "start afresh (make clean && make demo) to get a seal and a PIN you may use."]
    sample = next((p for p in sorted(folder.glob("*.pdf")) if p.read_bytes()[:5] == b"%PDF-"), None)
    source = str(sample) if sample else "YOUR.pdf"
    out = settings.state_dir / "demo" / "stamped-by-me.pdf"
    ca = settings.state_dir / "ca"
    return [
        f"Stamp one document yourself with the demo's personal seal {seal.personal_es_id}",
        f"(its PIN is in {pin_file}, readable by you only; you act as its keeper, {seal.keeper!r}):",
        f'  export SEALFLOW_HOME={settings.state_dir} SEALFLOW_PIN="$(cat {pin_file})"',
        f"  export SEALFLOW_USER={seal.keeper} SEALFLOW_USER_CREDENTIAL=\"$(python3 -c 'import json,sys; "
        f"print(json.load(open(sys.argv[1]))[sys.argv[2]])' {credentials_file(settings)} {seal.keeper})\"",
        f"  sealflow stamp --seal {seal.personal_es_id} --pin-env SEALFLOW_PIN {source} {out}",
        f"  sealflow verify {out} --trust {ca / 'ca-root.pem'} --trust {ca / 'ca-intermediate.pem'}",
        "Mind the PIN: five wrong tries lock the seal's key.",
    ]


def step_archive_and_file(ctx: Any) -> None:
    """archive_batch and file_records run by themselves (Assets); wait for them and report."""
    from sqlalchemy import func, select

    from archive.models import ArchiveRun
    from filing.outbox import OutboxRecord
    from sealflow import root
    from sealflow.batch_runner import airflow_api

    api = airflow_api(ctx.settings)
    try:
        archived = api.wait_for_new_run("archive_batch", ctx.data["batch_started"], timeout=600)
        print(f"    archive_batch: {archived['state']} (run {archived['dag_run_id']}, scheduled by the Asset)")
    finally:
        api.close()
    batch_id = ctx.data["batch"]["batch_id"]
    deadline = time.monotonic() + 300
    with root.database(ctx.settings.resolved_database_url, migrated=False) as sessions:
        while True:  # file_records runs on the Assets; wait until the outbox has nothing left to send
            with sessions() as session:
                runs = session.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)).all()
                states = dict(session.execute(select(OutboxRecord.state, func.count())
                                              .group_by(OutboxRecord.state)).all())
            if (not states.get("pending") and not states.get("failed")) or time.monotonic() > deadline:
                break
            time.sleep(2)
    print(f"    file_records: outbox {dict(sorted(states.items()))}")
    ctx.note("archive", f"{sum(r.records for r in runs)} records of {batch_id} in s3://{ctx.settings.archive_bucket}"
                        f" (Object Lock COMPLIANCE); search: sealflow archive search --batch {batch_id}")
    ctx.note("filing outbox", ", ".join(f"{k} {v}" for k, v in sorted(states.items())) +
             "  (sealflow filing status)")
