"""Airflow glue of archiving: which batches to archive, and archiving them.

A run archives the batch its conf names, or else every batch the SealFlow database shows as
finished and not yet archived — the asset events only wake the DAG up (two batches finishing
together leave one queued event; both are archived). A run in which some record could not be
stored fails, so that Airflow retries it (issue 11, item 4).
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from sealflow_airflow import pipeline, root
from sealflow_airflow.assets import ARCHIVED_BATCHES

log = logging.getLogger(__name__)


def batches_to_archive(context: Any) -> list[str]:
    """``conf.batch_id`` when given; else every finished, not yet archived batch in the SealFlow
    database, oldest first, then any triggering event's batch not among them. Oldest first because a
    licence's records are chained in the order they are archived: the batch that sealed the original
    is archived before the one that re-issued it (换发/补发), even when the re-issue's event woke the run."""
    conf = (context.get("dag_run").conf or {}) if context.get("dag_run") else {}
    if conf.get("batch_id"):
        return [str(conf["batch_id"])]
    from archive.integration import batches_to_archive as waiting

    with root.sessions()() as session:
        ids = waiting(session) + triggering_batches(context)
    return list(dict.fromkeys(ids))


def triggering_batches(context: Any) -> list[str]:
    """The batch ids of the stamp_batch events that scheduled this run."""
    ids: list[str] = []
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            batch_id = (event.extra or {}).get("batch_id")
            status = (event.extra or {}).get("status", "done")
            if batch_id and status == "done" and batch_id not in ids:
                ids.append(batch_id)
    return ids


def archive_batches(batch_ids: list[str], context: Any) -> list[dict]:
    from archive.integration import WorkCopiesRemoved, archive_batch

    settings = root.settings()
    sessions = root.sessions()
    out = []
    unstored: list[str] = []
    for batch_id in batch_ids:
        try:
            result = archive_batch(settings, sessions, batch_id, work=root.work_store(),
                                   signer=root.archive_signer(), trust=root.trust())
        except WorkCopiesRemoved as exc:  # a run asked for an archived batch whose work copies are gone
            log.info("%s", exc)
            out.append({"batch_id": batch_id, "skipped": str(exc)})
            continue
        summary = result.to_json()
        log.info("batch %s archived: %s", batch_id, summary["counts"])
        for refused in summary["not_archived"]:  # refused with a reason (also in the batch report), never silent
            if refused["status"] == "rejected":
                log.warning("batch %s: %s not archived: %s", batch_id, refused["file"], "; ".join(refused["reasons"]))
        summary["registrations_queued"] = queue_registrations(sessions, batch_id)
        summary["report_html"] = pipeline.refresh_report(batch_id)  # now with each 档号
        out.append(summary)
        unstored += [f"{batch_id}/{o.file}: {o.reasons[0] if o.reasons else 'not stored'}"
                     for o in result.outcomes if o.status == "failed"]
    # Runs archived by a task that died before queueing their registration (the batch already counts
    # as archived, so it is not archived again): queued now, whichever batch they belong to.
    late = queue_registrations(sessions)
    if late:
        log.info("queued %d archive registration(s) left over by earlier runs", late)
    context["outlet_events"][ARCHIVED_BATCHES].extra = {"batch_ids": batch_ids}
    if unstored:
        # Records that could not be stored (the object store down, a write refused) are the
        # machine's fault: the task fails so Airflow retries it (the batch is not recorded as
        # archived, so the retry picks them up); a run where nothing could be stored is never green.
        raise ArchiveIncomplete(f"{len(unstored)} record(s) not stored, first: {unstored[0]} — Airflow retries "
                                f"this task; if every try fails, fix the object store and clear archive_batch")
    return out


class ArchiveIncomplete(RuntimeError):
    """Some verified records of the run's batches could not be stored."""


def scheduled_fixity() -> dict:
    """The ``archive_fixity`` task: one fixity pass over the archive (the report without the problem list)."""
    from archive.integration import scheduled_fixity as run

    return run(root.settings(), root.sessions())


def queue_registrations(sessions: Any, batch_id: str | None = None) -> int:
    """One archive.register filing record per archiving run of the batch (of every batch when
    ``batch_id`` is None), queued once."""
    from sqlalchemy import select

    from archive.models import ArchiveRun
    from filing.outbox import OutboxRecord, enqueue
    from kernel.db import transaction

    with transaction(sessions) as session:
        registered = select(OutboxRecord).where(OutboxRecord.kind == "archive.register")
        archived = select(ArchiveRun).order_by(ArchiveRun.created_at)
        if batch_id is not None:
            registered = registered.where(OutboxRecord.subject == batch_id)
            archived = archived.where(ArchiveRun.batch_id == batch_id)
        queued = {r.payload.get("manifest_sm3") for r in session.scalars(registered)}
        added = 0
        for run in session.scalars(archived).all():
            if run.manifest_sm3 in queued:
                continue
            enqueue(session, "archive.register", run.batch_id, {
                "batch_id": run.batch_id, "documents": run.records, "bytes": run.bytes,
                "manifest_sm3": run.manifest_sm3,
                "registered_at": (run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
                                  ).isoformat(),
                "package_uri": run.manifest_key})
            added += 1
    return added
