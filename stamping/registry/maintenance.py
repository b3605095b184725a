"""The registry's hourly job (``seal_maintenance`` DAG): expire seals past their validity, sign an
audit checkpoint and anchor every checkpoint outside the database (the archive bucket under Object
Lock; the platform filing is queued with the checkpoint and sent by the filing drain), so that no
entry stays uncovered longer than the checkpoint interval (``audit verify`` fails otherwise)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from kernel.db import transaction
from stamping.audit.anchors import BucketAnchors, enqueue_missing
from stamping.registry.service import SealRegistry


def run_maintenance(registry: SealRegistry, sessions: sessionmaker[Session], now: datetime | None = None, *,
                    anchors: BucketAnchors | None = None) -> dict[str, Any]:
    """Expire due seals (filed and audited each), checkpoint the audit log and write the checkpoints to
    ``anchors`` (the archive bucket's, built by ``archive.audit_anchors.bucket_anchors``); a summary for XCom.
    ``registry`` and ``sessions`` come from the composition root (the same database)."""
    expired = registry.expire_due(now)
    with transaction(sessions) as session:
        point = registry.audit.checkpoint(session)
        enqueue_missing(session, registry.settings.audit_key_id)
    anchored: list[int] = []
    if anchors is not None:
        with sessions() as session:
            anchored = anchors.publish(session)
    return {"expired": expired, "checkpoint_seq": point.seq if point else None, "anchored": anchored}
