"""The work bucket's clean-up (工作副本清理): a batch's received files, sealed files and provenance notes are
removed from the work bucket once the archive holds its records, the platform has filed them, and the
retention period has passed. From then on the records office's copy of a sealed document is the archive's.

What goes and what stays (``stamping.batch.keys``):

* **removed** — ``batches/<id>/in/``, ``sealed/`` and ``made/``, and there exactly the objects the database
  names for the batch's documents: the received copy of each input (by its SM3), each sealed file and its
  provenance note (by input SM3, row and format). Nothing is removed because a listing showed it: what a
  listing of those folders finds besides is reported as ``left`` and stays.
* **kept** — ``manifest.csv|json`` and ``report.json|html``: a few kilobytes that say what the office asked
  for and what was done, which ``sealflow batch report`` and the console's links read. The report is
  written once more, saying when the work copies were removed.

When — every condition read from the SealFlow database, again for each batch on each run (:func:`hold_reasons`):

1. stamping finished the batch as ``done``;
2. each of its documents is ``verified`` or ``quarantined``. A *quarantined* row was refused at the door
   (manifest or file check, a licence sealed before): nothing was sealed for it, the report keeps its
   reason and the office keeps its original, so it does not hold the batch. A *failed* row (stamping or
   验章 refused it), a *refused* one or one still waiting does: a sealed file that fails verification is
   the evidence of what went wrong, and only the work bucket has it — the batch stays until an operator
   has dealt with it (cleared and re-run, the row then verified), and is never removed otherwise;
3. the archive finished with the batch and refused none of its documents (a refused, verified document
   is in no archive: its work copy is the only one);
4. every verified document is an archived record, by the SM3 of its sealed file;
5. every archiving run of the batch has its registration (``archive.register``) filed: sent, with the
   platform's receipt;
6. ``SEALFLOW_WORK_RETENTION_DAYS`` days have passed since the later of (3) and (5). ``0`` keeps the work
   copies for ever: removing at once is never what a zero or a missing digit should mean.

Decisions:

* **Idempotent and safe side by side**: deleting an object that is gone is no error, so two runs at once
  may both delete. The batch is marked (``archive_batch.work_purged_at``) by a conditional update in the
  transaction that writes the audit entry: exactly one run marks it, and there is one ``work.purge``
  entry per batch. Delete first, mark after: a run that dies in between leaves the batch unmarked and
  the next run finishes it; a mark without the deletion would hide objects that are still there.
* **A batch id that is not a plain name is never touched** (``/``, ``..``): its keys could reach
  another batch's folder. Nor is a document whose database row does not match the layout stamping writes
  (an input SM3 that is not one, an unknown format, a sealed object named elsewhere): the batch is held.
* The work bucket must not be the archive's: a configuration that makes them one is refused.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from archive.models import ARCHIVED, ArchivedBatch, ArchiveRecord, ArchiveRun
from archive.service.work import as_utc
from filing.outbox import SENT, OutboxRecord
from kernel.db import transaction
from kernel.settings import Settings
from kernel.workstore import WorkStore
from stamping.batch import keys
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.process import MANIFEST_NAMES

log = logging.getLogger(__name__)

ACTOR = "work-purge"
ACTION = "work.purge"
PURGED_FOLDERS = ("in/", "sealed/", "made/")
KEPT = (*MANIFEST_NAMES, *keys.REPORT_NAMES)
# Document states that do not hold a batch (see the module docstring, condition 2).
DONE_STATES = ("verified", "quarantined")
FORMATS = ("pdf", "ofd")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.-]+")
_SM3 = re.compile(r"[0-9a-f]{64}")


class PurgeRefused(ValueError):
    """The settings make the clean-up unsafe (a negative retention, the work bucket the archive's)."""


@dataclass
class BatchPurge:
    """What one run did (or, dry, would do) with one batch's work copies."""

    batch_id: str
    state: str  # purged | would_purge | held | already_purged | error
    reasons: list[str] = field(default_factory=list)
    objects: int = 0  # objects removed (or to remove)
    left: list[str] = field(default_factory=list)  # objects of the three folders the database does not name
    since: datetime | None = None  # archived and filed since

    def to_json(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "state": self.state, "reasons": self.reasons, "objects": self.objects,
                "left": self.left[:20], "left_count": len(self.left),
                "since": self.since.isoformat() if self.since else ""}


@dataclass
class PurgeReport:
    retention_days: int
    dry_run: bool
    batches: list[BatchPurge] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for b in self.batches if b.state == state)

    @property
    def errors(self) -> list[BatchPurge]:
        return [b for b in self.batches if b.state == "error"]

    def to_json(self) -> dict[str, Any]:
        states = ("purged", "would_purge", "held", "already_purged", "error")
        return {"retention_days": self.retention_days, "dry_run": self.dry_run,
                "counts": {s: self.count(s) for s in states},
                "objects": sum(b.objects for b in self.batches if b.state in ("purged", "would_purge")),
                "batches": [b.to_json() for b in self.batches]}


def check_settings(settings: Settings) -> None:
    """Refuse settings under which a clean-up could remove what it must not."""
    if settings.work_retention_days < 0:
        raise PurgeRefused(f"SEALFLOW_WORK_RETENTION_DAYS={settings.work_retention_days}: give 0 (keep the work "
                           f"copies for ever) or a number of days")
    archive_buckets = {settings.archive_bucket, settings.resolved_replica_bucket}
    if settings.work_bucket in archive_buckets:
        raise PurgeRefused(f"the work bucket {settings.work_bucket!r} is an archive bucket: nothing is removed "
                           f"from it (set SEALFLOW_WORK_BUCKET to the bucket of the batches' work copies)")


def waiting_batches(session: Session, before: datetime) -> list[str]:
    """Batches the archive finished with before ``before`` whose work copies are still there, oldest first:
    the only ones that may be due (archiving is the earliest a batch's clock can start)."""
    return list(session.scalars(select(ArchivedBatch.batch_id).where(
        ArchivedBatch.work_purged_at.is_(None), ArchivedBatch.finished_at <= before)
        .order_by(ArchivedBatch.finished_at, ArchivedBatch.batch_id)))


def hold_reasons(session: Session, batch_id: str, *, now: datetime, retention: timedelta
                 ) -> tuple[list[str], datetime | None]:
    """Why the batch's work copies must stay (empty: they may go), and since when it is archived and filed
    (None when it is not)."""
    batch = session.get(Batch, batch_id)
    if batch is None:
        return [f"no batch {batch_id} in the database"], None
    reasons = _name_reasons(batch_id) + _stamping_reasons(session, batch) + _archive_reasons(session, batch_id)
    filed, since = _filing(session, batch_id)
    reasons += filed
    if not reasons and since is not None and now < since + retention:
        reasons.append(f"kept until {(since + retention).isoformat(timespec='seconds')}: "
                       f"{retention.days} days (SEALFLOW_WORK_RETENTION_DAYS) after it was archived and filed")
    return reasons, since


def _name_reasons(batch_id: str) -> list[str]:
    if _PLAIN_ID.fullmatch(batch_id) and batch_id not in (".", ".."):
        return []
    return [f"batch id {batch_id!r} is not a plain name: its keys could reach another batch's folder"]


def _stamping_reasons(session: Session, batch: Batch) -> list[str]:
    reasons = []
    if batch.finished_at is None or batch.status != "done":
        reasons.append(f"stamping has not finished it as done (status {batch.status})")
    states = dict(session.execute(select(BatchDocument.state, func.count()).where(
        BatchDocument.batch_id == batch.batch_id).group_by(BatchDocument.state)).all())
    holding = {state: n for state, n in sorted(states.items()) if state not in DONE_STATES}
    if holding:
        reasons.append("documents neither verified nor quarantined ("
                       + ", ".join(f"{n} {state}" for state, n in holding.items())
                       + "): a failed document's sealed file and provenance note are the evidence of what went "
                         "wrong, and only the work bucket has them")
    odd = [d.file for d in _verified(session, batch.batch_id) if _layout_problem(batch.batch_id, d)]
    if odd:
        reasons.append(f"{len(odd)} verified document(s) not where stamping writes them (first: {odd[0]}): "
                       f"the database does not name their work copies")
    return reasons


def _verified(session: Session, batch_id: str) -> list[Any]:
    return list(session.execute(select(
        BatchDocument.file, BatchDocument.row, BatchDocument.format, BatchDocument.input_sm3,
        BatchDocument.output_path, BatchDocument.output_sm3)
        .where(BatchDocument.batch_id == batch_id, BatchDocument.state == "verified")).all())


def _layout_problem(batch_id: str, doc: Any) -> bool:
    """Whether a verified document's row does not match what stamping writes (so its copies are not named)."""
    if not _SM3.fullmatch(doc.input_sm3 or "") or doc.format not in FORMATS:
        return True
    sealed = keys.sealed_key(SimpleNamespace(batch_id=batch_id, input_sm3=doc.input_sm3, row=doc.row,
                                             format=doc.format))
    return not (doc.output_path or "").endswith("/" + sealed)


def _archive_reasons(session: Session, batch_id: str) -> list[str]:
    finished = session.get(ArchivedBatch, batch_id)
    if finished is None:
        return ["the archive has not finished with it"]
    reasons = []
    if finished.refused or finished.not_archived:
        reasons.append(f"the archive refused {finished.refused or len(finished.not_archived)} of its documents: "
                       f"a verified document the archive refused is in no archive, its work copy is the only one")
    archived = set(session.scalars(select(ArchiveRecord.document_sm3).where(
        ArchiveRecord.batch_id == batch_id, ArchiveRecord.state == ARCHIVED)))
    missing = [d.file for d in _verified(session, batch_id) if d.output_sm3 not in archived]
    if missing:
        reasons.append(f"{len(missing)} verified document(s) are no archived record (first: {missing[0]})")
    return reasons


def _filing(session: Session, batch_id: str) -> tuple[list[str], datetime | None]:
    """Why the batch's archive registrations are not all filed, and since when they are (the archive's
    finish or the last receipt, whichever is later)."""
    finished = session.get(ArchivedBatch, batch_id)
    runs = list(session.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)))
    if not runs:
        return ["no archiving run of it is recorded: nothing was filed"], None
    sent = {r.payload.get("manifest_sm3"): r for r in session.scalars(select(OutboxRecord).where(
        OutboxRecord.kind == "archive.register", OutboxRecord.subject == batch_id))
        if r.state == SENT and r.receipt and r.sent_at is not None}
    unfiled = [run.run_id for run in runs if run.manifest_sm3 not in sent]
    if unfiled:
        return [f"{len(unfiled)} of its {len(runs)} archive registration(s) not filed (备案) yet: "
                f"the platform's receipt is what proves the archive holds it"], None
    times = [as_utc(sent[run.manifest_sm3].sent_at) for run in runs]
    if finished is not None:
        times.append(as_utc(finished.finished_at))
    return [], max(times)


def named_keys(session: Session, batch_id: str) -> set[str]:
    """The work-bucket keys the database names for the batch's documents, in the three removed folders."""
    named: set[str] = set()
    for row, input_sm3, doc_format in session.execute(select(
            BatchDocument.row, BatchDocument.input_sm3, BatchDocument.format)
            .where(BatchDocument.batch_id == batch_id)).all():
        if not _SM3.fullmatch(input_sm3 or ""):
            continue  # refused before it was read: nothing was stored for it
        named.add(keys.input_key(batch_id, input_sm3))
        if doc_format in FORMATS:
            doc = SimpleNamespace(batch_id=batch_id, input_sm3=input_sm3, row=row, format=doc_format)
            named.update((keys.sealed_key(doc), keys.note_key(doc)))
    folders = tuple(keys.batch_prefix(batch_id) + folder for folder in PURGED_FOLDERS)
    outside = sorted(k for k in named if not k.startswith(folders))
    if outside:  # cannot happen for a plain batch id; never delete on the strength of "cannot happen"
        raise ValueError(f"batch {batch_id}: {outside[0]} is outside its folders {', '.join(folders)}")
    return named


def purge_work(settings: Settings, sessions: sessionmaker[Session], store: WorkStore, audit: Any, *,
               now: datetime | None = None, dry_run: bool = False, batch_ids: list[str] | None = None,
               trigger: str = "pipeline") -> PurgeReport:
    """Remove the work copies of every batch that is due (of ``batch_ids`` only, when given); see the module
    docstring. ``audit``: the registry's audit log (one ``work.purge`` entry per batch removed); ``trigger``
    says who ran it, in that entry. ``dry_run``: only say what would go and what is held, and why."""
    check_settings(settings)
    report = PurgeReport(settings.work_retention_days, dry_run)
    if settings.work_retention_days == 0:
        return report
    now = now or datetime.now(UTC)
    retention = timedelta(days=settings.work_retention_days)
    with sessions() as session:
        wanted = list(dict.fromkeys(batch_ids)) if batch_ids else waiting_batches(session, now - retention)
    for batch_id in wanted:
        try:
            report.batches.append(_one(settings, sessions, store, audit, batch_id, now=now, retention=retention,
                                       dry_run=dry_run, trigger=trigger))
        except Exception as exc:  # one batch's failure (the store, the database) never stops the others
            log.warning("work copies of batch %s: %s", batch_id, exc)
            report.batches.append(BatchPurge(batch_id, "error", [f"{type(exc).__name__}: {exc}"]))
    return report


def _one(settings: Settings, sessions: sessionmaker[Session], store: WorkStore, audit: Any, batch_id: str, *,
         now: datetime, retention: timedelta, dry_run: bool, trigger: str) -> BatchPurge:
    with sessions() as session:
        finished = session.get(ArchivedBatch, batch_id)
        if finished is not None and finished.work_purged_at is not None:
            return BatchPurge(batch_id, "already_purged", [f"removed on {as_utc(finished.work_purged_at):%Y-%m-%d}"],
                              objects=finished.work_purged_objects)
        reasons, since = hold_reasons(session, batch_id, now=now, retention=retention)
        if reasons:
            return BatchPurge(batch_id, "held", reasons, since=since)
        named = named_keys(session, batch_id)
    prefix = keys.batch_prefix(batch_id)
    present = {k for folder in PURGED_FOLDERS for k in store.keys(prefix + folder)}
    doomed = sorted(named & present)
    if dry_run:
        return BatchPurge(batch_id, "would_purge", objects=len(doomed), left=sorted(present - named), since=since)
    store.delete_many(doomed)
    left = sorted(k for folder in PURGED_FOLDERS for k in store.keys(prefix + folder))
    marked = _mark(sessions, audit, batch_id, objects=len(doomed), left=left, since=since, now=now,
                   retention_days=retention.days, trigger=trigger)
    if not marked:  # another run marked it first (and wrote the audit entry)
        return BatchPurge(batch_id, "already_purged", objects=len(doomed), left=left, since=since)
    _rewrite_report(settings, sessions, store, batch_id)
    return BatchPurge(batch_id, "purged", objects=len(doomed), left=left, since=since)


def _mark(sessions: sessionmaker[Session], audit: Any, batch_id: str, *, objects: int, left: list[str],
          since: datetime | None, now: datetime, retention_days: int, trigger: str) -> bool:
    """Mark the batch purged and audit it, in one transaction; False when another run marked it first."""
    with transaction(sessions) as session:
        done = session.execute(update(ArchivedBatch).where(
            ArchivedBatch.batch_id == batch_id, ArchivedBatch.work_purged_at.is_(None))
            .values(work_purged_at=now, work_purged_objects=objects)).rowcount
        if done != 1:
            return False
        es_id = session.scalar(select(Batch.es_id).where(Batch.batch_id == batch_id)) or ""
        audit.append(session, actor=ACTOR, action=ACTION,
                     reason=f"work copies of batch {batch_id} removed ({objects} objects: received files, sealed "
                            f"files, provenance notes), {retention_days} days after it was archived and filed; "
                            f"manifest and report kept",
                     payload={"batch_id": batch_id, "es_id": es_id, "objects": objects,
                              "folders": list(PURGED_FOLDERS), "kept": list(KEPT), "left": len(left),
                              "archived_and_filed": since.isoformat() if since else "",
                              "retention_days": retention_days, "trigger": trigger})
    return True


def _rewrite_report(settings: Settings, sessions: sessionmaker[Session], store: WorkStore, batch_id: str) -> None:
    """The batch report again, now saying the work copies are gone; a report that cannot be written is
    logged, never undoes the clean-up (the database says what happened; the console shows it live)."""
    from archive.integration import after_stamping
    from stamping.batch.report import refresh_report

    try:
        with transaction(sessions) as session:
            refresh_report(session, batch_id, after_stamping(session, batch_id), store,
                           Path(settings.reports_dir) if settings.reports_dir else None)
    except Exception as exc:
        log.warning("batch %s: report not rewritten after its work copies were removed: %s", batch_id, exc)
