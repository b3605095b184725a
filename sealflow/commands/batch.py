"""``sealflow batch enrol|submit|approve|status|report|purge-work`` — a records office and a seal keeper at the
command line, through the same interfaces as the Airflow UI (its REST API) and the registry; and the work
bucket's clean-up an operator can run (and preview) by hand, as the hourly job does."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from kernel.settings import get_settings
from sealflow.exits import CheckFailed, UsageError


def _enrol(args: argparse.Namespace) -> int:
    from sealflow import root

    pin = os.environ.get(args.pin_env, "")
    if not pin:
        raise UsageError(f"put the seal's PIN in the environment variable {args.pin_env}")
    settings = get_settings()  # enrolling uses the seal: root checks its people against the registers
    try:
        root.batch_seals(settings).enrol(args.es_id, pin, args.keeper)
    except Exception as exc:  # registry refusals and key-store errors carry their own reasons (never the PIN)
        raise CheckFailed(f"seal {args.es_id} not enrolled: {exc}") from None
    print(f"seal {args.es_id} enrolled for batch use; each batch still needs the keeper's approval")
    return 0


def _submit(args: argparse.Namespace) -> int:
    from sealflow.airflow_api import AirflowApiError
    from sealflow.batch_runner import airflow_api, submit

    folder = Path(args.folder).resolve()
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder")
    batch_id = args.batch_id or folder.name
    api = airflow_api(get_settings())
    try:
        run_id = submit(api, folder, args.seal, batch_id, requester=args.requester,
                        placement=args.placement, pdf_container=args.pdf_container)
    except AirflowApiError as exc:
        if exc.status == 409:  # the run id carries the batch id: the batch was submitted before
            raise CheckFailed(f"batch {batch_id} was already submitted (run batch__{batch_id}); a batch is "
                              f"stamped once: see `sealflow batch status {batch_id}`, or submit under a new "
                              f"--batch-id") from None
        raise
    finally:
        api.close()
    print(f"submitted: run {run_id}; the seal's keeper gets a one-time code to approve it")
    return 0


def _approve(args: argparse.Namespace) -> int:
    """The keeper answers as their own Airflow user; SealFlow's answer gate checks the code on arrival,
    so a wrong code comes back at once with the tries left (exit 1), and the final outcome is read
    from SealFlow's approval record (exit 0 only when approved, or when the refusal was asked for)."""
    from sealflow.airflow_api import AirflowApiError
    from sealflow.batch_runner import DAG_ID, airflow_api, approval_outcome
    from sealflow.stack import ADMIN_USER

    settings = get_settings()
    if not args.reject and not args.code:
        raise UsageError("give the one-time code with --code, or --reject")
    who = args.keeper or ADMIN_USER
    api = airflow_api(settings, who)
    try:
        pending = [p for p in api.pending_approvals(DAG_ID, "~") if args.run_id in (None, p.run_id)]
        if not pending:
            raise UsageError("no batch is waiting for approval" + (f" in run {args.run_id}" if args.run_id else ""))
        if len(pending) > 1 and args.run_id is None:
            raise UsageError("several batches wait for approval: name one with --run-id "
                             + ", ".join(p.run_id for p in pending))
        try:
            api.answer(pending[0], "Reject" if args.reject else "Approve", {"code": args.code or ""})
        except AirflowApiError as exc:
            if exc.status == 403:  # the gate answers for a user; the keeper answers as themselves
                raise CheckFailed(f"not accepted: {exc.detail} (you answered as {who}: give the seal "
                                  f"keeper's user with --keeper NAME)") from None
            if exc.status in (400, 409):
                raise CheckFailed(f"not accepted: {exc.detail}") from None
            raise
    finally:
        api.close()
    outcome = approval_outcome(settings, pending[0].run_id)
    if outcome is None or outcome["state"] == "pending":
        print(f"answered: {pending[0].subject}")
        return 0
    if outcome["state"] == "approved":
        print(f"approved: batch {outcome['batch_id']} ({outcome['reason']})")
        return 0
    print(f"{outcome['state']}: batch {outcome['batch_id']} will not be stamped ({outcome['reason']})")
    return 0 if args.reject else 1


def _serve(args: argparse.Namespace) -> int:
    from kernel.db import transaction
    from sealflow import root
    from stamping.batch import admission

    settings = get_settings()
    sessions = root.sessions(settings)
    seals = root.batch_seals(settings, sessions)
    seals.registry.show(args.es_id)  # an unknown seal is refused with the registry's reason
    with transaction(sessions) as session:
        admission.serve(session, es_id=args.es_id, credit_code=args.unit, name=args.name, actor=args.actor)
        seals.audit(session, actor=args.actor, action="seal.serves_unit", es_id=args.es_id, reason=args.name,
                    payload={"credit_code": args.unit})
    print(f"seal {args.es_id} may seal licences issued by {args.name} ({args.unit})")
    return 0


STAGES = ("checked", "quarantined", "approved", "stamped", "verified", "failed", "archived", "filed")


def batch_progress(session, batch_id: str) -> dict | None:
    """A batch's live progress counted in the database (None when no batch has that id).

    ``checked`` rows went through ingest; ``approved`` documents may be stamped (the keeper said
    yes); ``stamped`` were sealed (verified or not yet); ``archived`` are in the archive index;
    ``filed`` were registered with the platform (备案). The status is the batch row's own, so a
    new approval request shows as awaiting approval, never as an earlier refusal.
    """
    from sqlalchemy import func, select

    from archive.models import ARCHIVED, ArchivedBatch, ArchiveRecord
    from filing.outbox import SENT, OutboxRecord
    from stamping.batch.models import Batch, BatchDocument, SealUseApproval

    batch = session.get(Batch, batch_id)
    if batch is None:
        return None
    states = dict(session.execute(select(BatchDocument.state, func.count()).where(
        BatchDocument.batch_id == batch_id).group_by(BatchDocument.state)).all())
    stamped = session.scalar(select(func.count()).where(
        BatchDocument.batch_id == batch_id, BatchDocument.stamped_at.is_not(None)))
    request = session.scalars(select(SealUseApproval).where(SealUseApproval.batch_id == batch_id)).first()
    approval = "awaiting the keeper" if batch.status == "awaiting_approval" or request is None else request.state
    approved = sum(n for s, n in states.items() if s != "quarantined") if approval == "approved" else 0
    archived = session.scalar(select(func.count()).where(
        ArchiveRecord.batch_id == batch_id, ArchiveRecord.state == ARCHIVED))
    filings = session.scalars(select(OutboxRecord).where(
        OutboxRecord.kind == "archive.register", OutboxRecord.subject == batch_id)).all()
    filed = sum(int(r.payload.get("documents", 0)) for r in filings if r.state == SENT)
    counts = {"documents": sum(states.values()), "checked": sum(states.values()),
              "quarantined": states.get("quarantined", 0), "approved": approved, "stamped": stamped or 0,
              "verified": states.get("verified", 0), "failed": states.get("failed", 0),
              "archived": archived or 0, "filed": filed}
    report = str((batch.report or {}).get("html") or "")  # its name in the work bucket, once written
    finished = session.get(ArchivedBatch, batch_id)
    purged = finished.work_purged_at if finished is not None else None
    return {"batch_id": batch_id, "status": batch.status, "es_id": batch.es_id, "requester": batch.requester,
            "run_id": batch.run_id, "keeper": request.keeper if request else "", "approval": approval,
            "approval_reason": request.reason if request and approval != "awaiting the keeper" else "",
            "counts": counts, "filing_records": dict(Counter(r.state for r in filings)),
            "report": report,
            "work_purged": {"at": purged.isoformat(), "objects": finished.work_purged_objects} if purged else None}


def _status(args: argparse.Namespace) -> int:
    from sealflow import root
    from stamping.batch import process

    settings = get_settings()
    with root.database(settings.resolved_database_url) as sessions, sessions() as session:
        data = batch_progress(session, args.batch_id)
        bad = [] if data is None else [
            (d.row, d.file, d.state, d.reasons) for d in process.documents(session, args.batch_id,
                                                                           ["quarantined", "failed"])]
    if data is None:
        raise UsageError(f"no batch {args.batch_id} in {settings.state_dir}: a batch is listed once its ingest "
                         "has run (sealflow batch submit FOLDER --seal ES_ID)")
    if args.json:
        data["documents"] = [{"row": r, "file": f, "state": s, "reasons": why} for r, f, s, why in bad]
        print(json.dumps(data, ensure_ascii=False, indent=1))
        return 1 if data["counts"]["failed"] else 0
    reason = f" ({data['approval_reason']})" if data["approval_reason"] else ""
    print(f"batch {data['batch_id']} — {data['status']} — seal {data['es_id']} — "
          f"approval: {data['approval']}{reason}")
    if data["approval"] == "awaiting the keeper" and data["keeper"]:  # what happens next, and who does it
        run = f" --run-id {data['run_id']}" if data["run_id"] else ""
        print(f"  the keeper answers with the texted code: sealflow batch approve --keeper {data['keeper']}{run} "
              f"--code CODE (or in the Airflow UI)")
    total = data["counts"]["documents"]
    for key in STAGES:
        print(f"  {key:<12} {data['counts'][key]:>6} / {total}")
    for row, file, state, reasons in bad:
        print(f"  row {row:>5} {state:<11} {file}: {'; '.join(reasons)}")
    if data["report"]:
        print(f"  report: {data['report']} (sealflow batch report {data['batch_id']} -o report.html)")
    if data["work_purged"]:
        print(f"  work files: removed {data['work_purged']['at'][:19]} ({data['work_purged']['objects']} received "
              f"and sealed files, provenance notes) after archiving and filing; manifest and report kept — the "
              f"sealed documents are in the archive: sealflow archive search --batch {data['batch_id']}")
    return 1 if data["counts"]["failed"] else 0


def _purge_work(args: argparse.Namespace) -> int:
    """The work bucket's clean-up (archive.work_purge), as the hourly job runs it: each batch removed or
    held, with the reasons; ``--dry-run`` changes nothing. Exit 1 when a batch could not be dealt with."""
    from archive.work_purge import PurgeRefused, purge_work
    from sealflow import root
    from sealflow.commands.seal import os_login

    settings = get_settings()
    sessions = root.sessions(settings)
    try:
        report = purge_work(settings, sessions, root.work_store(settings), root.registry(settings, sessions).audit,
                            dry_run=args.dry_run, batch_ids=args.batch or None,
                            trigger=f"sealflow batch purge-work (OS user {os_login()})")
    except PurgeRefused as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
        return 1 if report.errors else 0
    if not report.retention_days:
        print("SEALFLOW_WORK_RETENTION_DAYS=0: the work copies are kept for ever; nothing removed")
        return 0
    for batch in report.batches:
        detail = "; ".join(batch.reasons) if batch.reasons else f"{batch.objects} objects"
        if batch.left:
            detail += f"; {len(batch.left)} other objects in its folders left (not named by the database)"
        print(f"  {batch.state:<14} {batch.batch_id}: {detail}")
    summary = report.to_json()
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} the work copies of {summary['counts']['would_purge' if args.dry_run else 'purged']} batch(es), "
          f"{summary['objects']} objects; {summary['counts']['held']} held, {summary['counts']['error']} failed "
          f"(retention {report.retention_days} days after archiving and filing)")
    return 1 if report.errors else 0


def _report(args: argparse.Namespace) -> int:
    """A batch's report, read from the work bucket where the pipeline wrote it: to a file, or to stdout."""
    from kernel.workstore import ObjectMissing
    from sealflow.root import work_store
    from stamping.batch.keys import batch_file_key

    settings = get_settings()
    name = "report.json" if args.json else "report.html"
    try:
        data = work_store(settings).get(batch_file_key(args.batch_id, name))
    except ObjectMissing:
        raise UsageError(f"batch {args.batch_id} has no {name} in the work bucket {settings.work_bucket} yet: the "
                         f"report task writes it (sealflow batch status {args.batch_id})") from None
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {name} of batch {args.batch_id} ({len(data)} bytes)")
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("batch", help="submit batches, approve them as a seal keeper, read reports")
    sub = group.add_subparsers(dest="batch_command", required=True)
    p = sub.add_parser("enrol", help="keeper: enrol a seal for batch use (its PIN kept under the KEK)")
    p.add_argument("es_id")
    p.add_argument("--keeper", required=True, help="the keeper's user name in the registry")
    p.add_argument("--pin-env", default="SEALFLOW_PIN", help="environment variable holding the seal's PIN")
    p.set_defaults(handler=_enrol)
    p = sub.add_parser("submit", help="records office: submit a batch folder to stamp_batch")
    p.add_argument("folder")
    p.add_argument("--seal", required=True, help="es_id of the seal to use")
    p.add_argument("--batch-id")
    p.add_argument("--requester", default=os.environ.get("USER", "office"))
    p.add_argument("--placement", default="anchor:（盖章）")
    p.add_argument("--pdf-container", choices=["pkcs7", "gbt35275"], default="pkcs7")
    p.set_defaults(handler=_submit)
    p = sub.add_parser("approve", help="keeper: answer a batch's 用章审批 with the one-time code")
    p.add_argument("--run-id")
    p.add_argument("--keeper", default=os.environ.get("USER", ""),
                   help="your Airflow user (the seal's keeper); default: $USER, else admin")
    p.add_argument("--code")
    p.add_argument("--reject", action="store_true")
    p.set_defaults(handler=_approve)
    p = sub.add_parser("serve", help="administrator: let a seal seal licences issued by another unit")
    p.add_argument("es_id")
    p.add_argument("--unit", required=True, help="the issuing unit's 统一社会信用代码")
    p.add_argument("--name", required=True, help="the issuing unit's name")
    p.add_argument("--actor", default=os.environ.get("USER", "admin"))
    p.set_defaults(handler=_serve)
    p = sub.add_parser("report", help="a batch's report (report.html, or report.json with --json) from the work bucket")
    p.add_argument("batch_id")
    p.add_argument("--json", action="store_true")
    p.add_argument("-o", "--output", help="write it to this file (default: stdout)")
    p.set_defaults(handler=_report)
    p = sub.add_parser("purge-work", help="operator: remove the received and sealed files of batches archived and "
                                          "filed more than SEALFLOW_WORK_RETENTION_DAYS ago (manifest and report "
                                          "kept, each batch audited); what the hourly seal_maintenance job does")
    p.add_argument("--dry-run", action="store_true", help="only say which batches would go and which are held, why")
    p.add_argument("--batch", action="append", metavar="BATCH_ID",
                   help="only this batch (repeatable); the same conditions apply")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_purge_work)
    p = sub.add_parser("status", help="a batch's live progress: checked, approved, stamped, verified, archived, filed")
    p.add_argument("batch_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_status)
