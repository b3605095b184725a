"""Anchors of the audit log (审计日志锚定): copies of each signed checkpoint kept outside the database.

A checkpoint signed by the audit key pins every entry up to it, but only against someone without
that key: whoever holds the database and the key can rewrite the log and sign new checkpoints.
So every checkpoint head ``(seq, chain, signature)`` is also kept where such a person cannot
rewrite it:

* **the archive bucket**, one object per checkpoint (``audit-anchors/<key id>/<seq>.json``) under
  Object Lock COMPLIANCE until 9999-12-31 — written once, never overwritten (``If-None-Match``),
  and every stored version is read back, so a second version put beside a locked one shows;
* **the national platform**, through the filing outbox (record kind ``audit.checkpoint``, queued in
  the checkpoint's own transaction, its signed receipt kept with the record). The platform's
  listing gives each record's SM3; the payload is read from our outbox row, whose SM3 must match.

:func:`stamping.audit.log.verify_audit` compares the database with both. Decisions: the anchors are
read whole on each verification (one object per checkpoint: hundreds a year at the hourly job, a
few per stamped batch); an anchor store that cannot be read is a failure of verification, not a
skipped check; problems found while reading are returned, not raised, so that the report names them.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from filing.outbox import OutboxRecord, enqueue
from stamping.audit.log import ANCHOR_KIND, Anchor, AnchorSet, checkpoint_body
from stamping.audit.models import AuditCheckpoint

ANCHOR_PREFIX = "audit-anchors"
RETAIN_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


def anchor_key(key_id: str, seq: int) -> str:
    return f"{ANCHOR_PREFIX}/{key_id}/{seq:012d}.json"


def _anchor(body: Any, source: str) -> Anchor:
    """An :class:`Anchor` from an anchored body; ValueError naming ``source`` when malformed."""
    try:
        seq, chain = int(body["seq"]), str(body["chain"])
        signature = base64.b64decode(body["signature"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"{source}: not an audit checkpoint anchor ({exc})") from None
    return Anchor(seq=seq, chain=chain, signature=signature, source=source)


class BucketAnchors:
    """The anchors in the archive bucket. ``store`` is an :class:`archive.store.ObjectStore` on the
    Object-Lock bucket (``settings.archive_bucket``)."""

    def __init__(self, store: Any, key_id: str) -> None:
        self.store = store
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"BucketAnchors({self.store.bucket!r}, {self.key_id!r})"

    @property
    def name(self) -> str:
        return f"the archive bucket {self.store.bucket!r}"

    def publish(self, session: Session) -> list[int]:
        """Write every checkpoint not yet in the bucket (locked, once); returns the seqs written."""
        have = {a.seq for a in self.read().anchors}
        written = []
        for point in session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.key_id == self.key_id)
                                     .order_by(AuditCheckpoint.seq)):
            if point.seq in have:
                continue
            body = json.dumps(checkpoint_body(point), sort_keys=True, separators=(",", ":")).encode("utf-8")
            self.store.put(anchor_key(self.key_id, point.seq), body, retain_until=RETAIN_UNTIL,
                           content_type="application/json")
            written.append(point.seq)
        return written

    def read(self) -> AnchorSet:
        """Every stored version of every anchor object (a rewritten object shows as a second version)."""
        found = AnchorSet(self.name)
        prefix = f"{ANCHOR_PREFIX}/{self.key_id}/"
        paginator = self.store.client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.store.bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                key, version_id = version["Key"], version["VersionId"]
                source = f"{self.name} object {key}"
                try:
                    body = json.loads(self.store.get(key, version_id))
                    anchor = _anchor(body, source)
                except ValueError as exc:
                    found.problems.append(str(exc))
                    continue
                if key != anchor_key(self.key_id, anchor.seq):
                    found.problems.append(f"{source} holds the anchor of entry {anchor.seq}, not of its name")
                found.anchors.append(anchor)
            if page.get("DeleteMarkers"):
                found.problems.append(f"someone tried to delete anchors under {prefix} (delete markers present)")
        return found


def enqueue_missing(session: Session, key_id: str) -> list[int]:
    """Queue a platform filing for every checkpoint that has none (those signed before anchoring
    existed, or whose record was lost); returns their seqs. New checkpoints are queued when signed."""
    filed = {int(r.payload.get("seq", 0)) for r in session.scalars(
        select(OutboxRecord).where(OutboxRecord.kind == ANCHOR_KIND, OutboxRecord.subject == key_id))}
    queued = []
    for point in session.scalars(select(AuditCheckpoint).where(AuditCheckpoint.key_id == key_id)
                                 .order_by(AuditCheckpoint.seq)):
        if point.seq not in filed:
            enqueue(session, ANCHOR_KIND, key_id, checkpoint_body(point))
            queued.append(point.seq)
    return queued


def platform_anchors(session: Session, client: Any, key_id: str) -> AnchorSet:
    """The checkpoints the national platform holds for ``key_id``: its listing names each record and
    its SM3; the payload is our outbox row's, which must hash to that SM3 (the platform signed a
    receipt over it). A record the platform holds but our database lost is a problem."""
    from filing.dispatcher import wire_record
    from filing.protocol import record_digest

    found = AnchorSet("the national platform")
    for item in client.listing():
        if item.get("kind") != ANCHOR_KIND or item.get("subject") != key_id:
            continue
        record_id = str(item.get("record_id"))
        row = session.scalars(select(OutboxRecord).where(OutboxRecord.record_id == record_id)).first()
        source = f"the national platform (record {record_id}, receipt {item.get('receipt_id')})"
        if row is None:
            found.problems.append(f"{source} anchors an audit checkpoint that the database no longer has a filing "
                                  "record of (filing records deleted)")
            continue
        if record_digest(wire_record(row)) != item.get("record_sm3"):
            found.problems.append(f"our copy of {source} was altered: its SM3 differs from the one the platform "
                                  "received")
            continue
        try:
            found.anchors.append(_anchor(row.payload, source))
        except ValueError as exc:
            found.problems.append(str(exc))
    return found
