"""Airflow glue of the batch pipeline: one function per task of ``stamp_batch``, over the domain objects
of the composition root (``sealflow_airflow.root``). Only references (batch id, chunk numbers,
counts, decisions) are returned — they are what goes to XCom."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from sqlalchemy import update

from kernel.db import transaction
from sealflow_airflow.assets import STAMPED_BATCHES
from sealflow_airflow.root import seals, sessions, settings, tools
from stamping.batch import admission, approval, process
from stamping.batch.keys import batch_prefix
from stamping.batch.manifest import quarantine_table
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.sms import gateway_for
from stamping.placement import Placement

log = logging.getLogger(__name__)



def inbox_batches() -> list:
    """The ``stamp_inbox`` scan: the batches complete in ``<state>/inbox`` (see ``stamping.batch.inbox``)."""
    from stamping.batch.inbox import ready_batches

    return ready_batches(settings().state_dir / "inbox")


def _batch_id(params: dict[str, Any], run_id: str) -> str:
    """The form's batch id, else the run's name: ``batch__NAME`` (the CLI's and the form's way to
    name a run) is batch ``NAME``, any other run id is the batch id as it stands."""
    raw = params.get("batch_id") or run_id.removeprefix("batch__")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw).strip("-")[:64]


def _source(location: str) -> Path | str:
    """A local folder as is (checked to exist); an ``s3://bucket/prefix`` is read by ingest itself, through
    the work store's client, into a scratch folder it removes (``process.ingest``)."""
    if location.startswith("s3://"):
        return location
    folder = Path(location).expanduser()
    if not folder.is_dir():
        raise process.BatchError(f"batch folder {folder} does not exist")
    return folder


def ingest_batch(params: dict[str, Any], run_id: str) -> dict:
    """Claim the batch id for this run, read the batch, and refuse it before approval when the seal is not
    the issuer's (or a unit it serves); licences sealed before are quarantined unless re-issued."""
    batch_id = _batch_id(params, run_id)
    if not params.get("es_id"):
        raise process.BatchError("the trigger form must name the seal (es_id)")
    if not params.get("batch_location"):
        raise process.BatchError("the trigger form must give the batch folder or S3 prefix")
    requester = params.get("requester") or "unknown"
    try:
        admission.claim(sessions(), batch_id=batch_id, run_id=run_id, es_id=params["es_id"], requester=requester,
                        source=params["batch_location"],
                        work_dir=tools().store.name(batch_prefix(batch_id)))
    except admission.AdmissionError as exc:
        raise AirflowFailException(str(exc)) from None
    seals().check_can_request(params["es_id"], params.get("requester") or "")
    counts = process.ingest(
        tools(), batch_id=batch_id, source=_source(params["batch_location"]),
        es_id=params["es_id"], requester=requester,
        placement=Placement.parse(params.get("placement") or "anchor:（盖章）"),
        options={"pdf_container": params.get("pdf_container", "pkcs7")},
        chunk_size=settings().stamp_chunk_size,
    )
    _admit(batch_id, params["es_id"])
    with sessions()() as session:
        counts = process.state_counts(session, batch_id)
    log.info("batch %s ingested: %s", batch_id, counts)
    if counts.get("quarantined"):
        with sessions()() as session:
            bad = [(d.row, d.file, list(d.reasons)) for d in process.documents(session, batch_id, ["quarantined"])]
        log.warning("batch %s: %d row(s) quarantined, not stamped:\n%s", batch_id, len(bad),
                    quarantine_table(bad))
    return {"batch_id": batch_id, "es_id": params["es_id"], "requester": requester, "run_id": run_id,
            "accepted": counts.get("accepted", 0) + counts.get("stamped", 0)
            + counts.get("verified", 0), "quarantined": counts.get("quarantined", 0), "documents": counts["documents"]}


def _admit(batch_id: str, es_id: str) -> None:
    """Refuse the batch before approval when the identity registers do not confirm the seal's unit or
    people (身份核验), or when the seal is not the issuer's; a declared re-issue is audited."""
    from stamping.registry.errors import IdentityMismatch

    desk = seals()
    try:
        desk.check_identities(es_id)
    except IdentityMismatch as exc:  # audited by the registry (identity.mismatch) with the reason
        refuse_batch(batch_id, str(exc))
        raise AirflowFailException(str(exc)) from None
    unit_code, unit_name = desk.seal_unit(es_id)
    try:
        with transaction(sessions()) as session:
            admission.check_issuers(session, batch_id=batch_id, es_id=es_id, seal_unit_code=unit_code,
                                    seal_unit_name=unit_name)
            for reissue in admission.check_licences(session, batch_id=batch_id):
                desk.audit(session, actor="sealflow", action="licence.reissue", es_id=es_id,
                           reason=f"{reissue.kind}: {reissue.reason}",
                           payload={"batch_id": batch_id, "licence_id": reissue.licence_id, "file": reissue.file,
                                    "kind": reissue.kind, "previous_batch": reissue.previous_batch})
    except admission.AdmissionError as exc:
        refuse_batch(batch_id, str(exc))
        raise AirflowFailException(str(exc)) from None


def refuse_batch(batch_id: str, reason: str) -> None:
    """The batch will not be stamped: its waiting documents say why, the report says refused."""
    with transaction(sessions()) as session:
        session.execute(update(BatchDocument).where(BatchDocument.batch_id == batch_id,
                                                    BatchDocument.state == "accepted")
                        .values(state="refused", reasons=[reason]))
        session.execute(update(Batch).where(Batch.batch_id == batch_id).values(status="refused"))
    process.finish(tools(), batch_id, status="refused")


def request_approval(batch_id: str, run_id: str) -> dict:
    """Ask the seal's keeper (a new code; the wrong-try counter is kept); a decided approval is returned."""
    desk = seals()
    with transaction(sessions()) as session:
        batch = session.get(Batch, batch_id)
        keeper = desk.keeper_of(batch.es_id)
        counts = process.state_counts(session, batch_id)
        documents = sum(counts.get(state, 0) for state in ("accepted", "stamped", "verified"))
        try:
            req = approval.request_approval(
                session, batch_id=batch_id, run_id=run_id, es_id=batch.es_id, keeper=keeper.name,
                keeper_phone=keeper.phone, requester=batch.requester, documents=documents,
                gateway=gateway_for(settings()), mac_key=mac_key())
        except approval.ApprovalError as exc:
            raise AirflowFailException(str(exc)) from None
        if req.state == "pending":
            batch.status = "awaiting_approval"
        return {"state": req.state, "keeper": req.keeper, "reason": req.reason, "decided_by": req.decided_by}


def mac_key() -> bytes:
    return approval.load_mac_key(settings().resolved_approval_mac_key_file)


def record_decision(batch_id: str, run_id: str, *, approve: bool, code: str, responder: str) -> approval.Decision:
    """Check and record one answer (only the keeper's counts); every outcome is audited."""
    desk = seals()
    with transaction(sessions()) as session:
        decision = approval.decide(session, batch_id=batch_id, run_id=run_id, approve=approve, code=code,
                                   responder=responder, mac_key=mac_key())
        desk.audit_decision(session, decision, run_id=run_id)
        if decision.final:
            batch = session.get(Batch, batch_id)
            batch.status = "approved" if decision.approved else "refused"
    log.info("用章审批 of batch %s: %s (%s)", batch_id, decision.outcome, decision.reason)
    if decision.final and not decision.approved:
        refuse_batch(batch_id, f"用章审批: {decision.reason}")
    return decision


def expire_approval(batch_id: str, reason: str) -> None:
    desk = seals()
    with transaction(sessions()) as session:
        decision = approval.expire(session, batch_id=batch_id, reason=reason)
        if decision is not None:
            desk.audit_decision(session, decision)
    refuse_batch(batch_id, f"用章审批: {reason}")


def plan_chunks(batch_id: str, decision: dict) -> list[int]:
    if not decision.get("approved"):
        log.warning("batch %s: seal use not approved (%s); nothing is stamped", batch_id, decision.get("reason"))
        return []
    return process.chunks(tools(), batch_id)


def _require_approval(batch_id: str) -> Batch:
    with sessions()() as session:
        batch = session.get(Batch, batch_id)
        # The approval must be the one of the run that owns the batch (an approval belongs to one run).
        if batch is None or not approval.is_approved(session, batch_id, batch.run_id or None):
            raise process.BatchError(f"batch {batch_id}: the seal's use is not approved; refusing to stamp")
        return batch


def stamp_chunk(batch_id: str, chunk: int) -> dict:
    batch = _require_approval(batch_id)
    try:
        return process.stamp_chunk(tools(), batch_id, chunk, actor=batch.requester)
    except process.SealUseRefused as exc:  # a decision of the registry: a retry would change nothing
        raise AirflowFailException(str(exc)) from None


def verify_chunk(batch_id: str, chunk: int) -> dict:
    return process.verify_chunk(tools(), batch_id, chunk)


def _never_approved(batch_id: str) -> bool:
    """The approval step failed or timed out (not refused): nothing was meant to be stamped."""
    with sessions()() as session:
        batch = session.get(Batch, batch_id)
        return batch is not None and batch.status != "refused" and not approval.is_approved(
            session, batch_id, batch.run_id or None)


def refresh_report(batch_id: str) -> str:
    """Write a finished batch's report again with what the archive and the filing did since (档号,
    archived, filed), in the work store; the name of report.html. A report that cannot be refreshed is
    logged, never fails the archiving or filing that called it (the console shows the live state)."""
    from archive.integration import after_stamping
    from kernel.db import transaction
    from stamping.batch.report import refresh_report as rewrite

    try:
        with transaction(sessions()) as session:
            written = rewrite(session, batch_id, after_stamping(session, batch_id), tools().store,
                              tools_reports_dir())
    except Exception as exc:
        log.warning("batch %s: report not refreshed: %s", batch_id, exc)
        return ""
    return written["html"]


def tools_reports_dir() -> Path | None:
    return Path(settings().reports_dir) if settings().reports_dir else None


def finish_batch(batch_id: str, context: Any) -> dict:
    if _never_approved(batch_id):
        from airflow.sdk.exceptions import AirflowFailException

        summary = process.finish(tools(), batch_id, status="not_approved")
        raise AirflowFailException(f"batch {batch_id}: the seal's use was never approved (the approval step failed "
                                   f"or timed out); nothing was stamped — submit the batch again "
                                   f"(report {summary['report_html']})")
    summary = process.finish(tools(), batch_id)
    summary["report_s3"] = summary["report_html"]  # finish wrote the report to the work bucket
    if summary["status"] == "incomplete":
        # Documents wait: the run must not end green and archiving must not start. Failing (not
        # retrying) the report is right: only clearing the named chunks can change the answer.
        from airflow.sdk.exceptions import AirflowFailException

        chunks = ", ".join(f"stamp_chunk[{c}]" for c in summary["pending_chunks"])
        raise AirflowFailException(
            f"batch {batch_id} is incomplete: {summary['counts']} — documents of chunk(s) "
            f"{summary['pending_chunks']} are not sealed and verified; fix the cause in those tasks' logs, then "
            f"clear {chunks} with downstream to retry them alone (report {summary['report_html']})")
    if summary["status"] == "refused":
        # The report task runs whatever happened upstream, so it is the one that keeps a refused batch
        # red: an operator must see the refusal at a glance, never a green run with nothing stamped.
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"batch {batch_id} was refused: nothing was stamped — {summary['counts']} "
                                   f"(report {summary['report_html']})")
    context["outlet_events"][STAMPED_BATCHES].extra = {"batch_id": batch_id, "status": summary["status"]}
    log.info("batch %s finished: %s — report %s", batch_id, summary["counts"], summary["report_html"])
    return summary
