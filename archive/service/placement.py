"""Where a record goes among its licence's records in the index, decided before any work is done.

The same sealed document archived by the same batch is ``already_archived`` (a rerun); a pending
one from a crashed run resumes with its reserved 档号; a declared 换发/补发 becomes a new record
superseding the licence's current one; any other document of an archived licence is ``rejected``
with the reason (see :func:`place`).

Decision: a record is recognised by its 证照标识 and the SM3 of its sealed document — the one
recorded at stamping (:func:`document_sm3` computes it only when a caller did not carry it).
"""

from __future__ import annotations

from dataclasses import dataclass

from archive.models import ARCHIVED, PENDING, ArchiveRecord
from archive.service.jobs import read_document
from archive.service.records import ArchiveInput, RecordOutcome
from gmpki.gm.sm3 import sm3_hex
from stamping.batch.manifest import REISSUE_KINDS


@dataclass(frozen=True)
class Placement:
    """Where a record goes in its licence's chain: a pending row of its own to resume, or a new row
    (superseding ``supersedes`` when that is not empty)."""

    resume: ArchiveRecord | None = None
    supersedes: str = ""


def declared_reissue(record: dict[str, str]) -> tuple[str, str] | None:
    """(kind, reason) when the record's batch declared it a 换发/补发 with a reason, else None."""
    kind, reason = record.get("reissue", "").strip(), record.get("reissue_reason", "").strip()
    return (kind, reason) if kind in REISSUE_KINDS and reason else None


def reissue_facts(record: dict[str, str], supersedes: str) -> dict[str, str] | None:
    """What a package's metadata says of its re-issue (None for a licence's first record)."""
    declared = declared_reissue(record)
    if declared is None and not supersedes:
        return None
    kind, reason = declared or ("", "")
    return {"kind": kind, "reason": reason, "supersedes": supersedes}


def document_sm3(inp: ArchiveInput) -> str:
    """The sealed document's SM3: the one recorded at stamping, else computed (rare: callers carry it)."""
    if inp.sm3:
        return inp.sm3.lower()
    try:
        return sm3_hex(read_document(inp))
    except (OSError, ValueError):
        return ""  # phase one refuses an unreadable document with the reason


def place(inp: ArchiveInput, rows: list[ArchiveRecord], batch_id: str) -> Placement | RecordOutcome:
    """Where ``inp`` goes among its licence's records (``rows``, oldest first), or its outcome now.

    - the same sealed document (证照标识 and SM3) archived by this batch: ``already_archived`` (a rerun);
      archived by another batch: ``rejected`` (a document is archived once);
    - the same document pending (a crashed run reserved it): resumed under its reserved 档号;
    - a licence whose earlier record is pending or held after a restore: not archived now, with why;
    - another sealed document of an archived licence: a new record superseding the current one when
      its batch declared a 换发/补发 with a reason, else ``rejected`` naming the earlier record
      (admission quarantines such documents; reaching the archive means the database was changed).
    """
    lid = inp.record.get("licence_id", "")
    if not rows:
        return Placement()
    digest = document_sm3(inp)

    def outcome(status: str, reason: str = "", row: ArchiveRecord | None = None) -> RecordOutcome:
        return RecordOutcome(lid, inp.file_name, status, row.archival_code if row else "",
                             row.object_key if row else "", reasons=[reason] if reason else [])

    same = next((r for r in rows if digest and r.document_sm3 == digest), None)
    if same is not None and same.state == ARCHIVED:
        if same.batch_id == batch_id:
            return outcome("already_archived", row=same)
        return outcome("rejected", f"licence {lid}: this sealed document (SM3 {digest[:16]}…) is already "
                                   f"archived as {same.archival_code} by batch {same.batch_id}; a document is "
                                   f"archived once")
    if same is not None and same.state == PENDING:
        return Placement(resume=same)
    pending = next((r for r in rows if r.state == PENDING), None)
    if pending is not None:  # its run crashed; the retry of that batch publishes it, then this one follows
        return outcome("failed", f"licence {lid}: record {pending.archival_code} of another document of this "
                                 f"licence is still pending (its archiving run did not finish); this document "
                                 f"is archived after it, on the next run")
    held = same or next((r for r in rows if r.state != ARCHIVED), None)
    if held is not None:
        return outcome("rejected", f"licence {lid}: the archive holds record {held.archival_code} of this "
                                   f"licence in state {held.state} (found after a restore, see `sealflow backup "
                                   f"check`); not archived until an operator has dealt with it")
    heads = [r for r in rows if not r.superseded_by]
    if len(heads) != 1:
        return outcome("rejected", f"licence {lid}: its archived records {', '.join(r.archival_code for r in rows)} "
                                   f"do not form one chain of versions (index edited?); not archived")
    head = heads[0]
    if declared_reissue(inp.record) is not None:
        return Placement(supersedes=head.archival_code)
    return outcome("rejected", f"licence {lid} is already archived as {head.archival_code} (batch "
                               f"{head.batch_id}, sealed document SM3 {head.document_sm3[:16]}…); this is "
                               f"another sealed document of the licence and its batch declared no 换发/补发 "
                               f"with a reason: not archived (a licence is sealed again only as a declared "
                               f"re-issue: manifest columns reissue and reissue_reason)")
