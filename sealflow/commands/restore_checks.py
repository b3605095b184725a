"""After a restore: the restored home checked against the world (``sealflow backup check``).

A backup is a past state; the world went on. Before the pipeline starts again the restored database is
compared, for real, with everything outside it that cannot have been rolled back:

1. **the archive** — both copies of every archived object are read (primary and replica) and a missing
   or damaged copy is rewritten from the good one (audited; a primary store lost with the home is refilled
   from the replica); then the index against the primary: every package present, digests equal. Packages
   the stores hold that the index never published were archived after the backup: they are listed from
   their own metadata and held in the index as ``found`` (their 档号 stay taken);
2. **the audit chain against its external anchors** — the anchors in the archive bucket and at the
   national platform up to the restored head must match the restored log; anchors beyond it (and
   checkpoint filings the database never queued) show that entries were written after the backup;
3. **the filing outbox against the platform's receipts** — records the platform already holds are marked
   delivered with its original signed receipts (nothing is filed twice); records the platform holds that
   the database never queued were filed after the backup.

Everything found after the backup is reported as such, not as tampering. It composes the domains, so it
lives in the shell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel.settings import Settings

RESTORED_FROM = "restored-from.json"


def restored_from_file(settings: Settings) -> Path:
    """Where ``backup restore`` notes which backup the home came from (id, time taken, time restored)."""
    return settings.state_dir / RESTORED_FROM


class _Listing:
    """A platform client's listing, read once, offered again (to the anchor reader) filtered."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def listing(self) -> list[dict[str, Any]]:
        return self.items


def check_restored(settings: Settings) -> dict[str, Any]:
    """Run the three checks (module docstring); ``ok`` only when the restored state agrees with the world
    up to the backup, and everything after it is accounted for."""
    from kernel.db import database
    from stamping.registry import SealRegistry

    with database(settings.resolved_database_url) as sessions:
        registry = SealRegistry(sessions, settings)
        # Where the restored log ends, read before anything below appends to it (each repair is audited).
        from stamping.audit import verify_audit

        with sessions() as s:
            head = verify_audit(s, registry.audit_public_key()).last_seq
        archive = _archive(settings, sessions)
        from filing.identity import make_client

        with make_client(settings) as client:
            items = list(client.listing())
            audit = _audit(settings, sessions, registry, items, head)
            filing = _filing(sessions, client, items)
    origin = restored_from_file(settings)
    restored = json.loads(origin.read_text()) if origin.is_file() else {}
    after = {"documents": archive.pop("found"), "filings": filing.pop("after_backup"),
             "audit": audit.pop("after_backup")}
    return {"restored_from": restored, "ok": archive["ok"] and audit["ok"] and filing["ok"], "archive": archive,
            "audit": audit, "filing": filing, "after_backup": after,
            "lost_after_backup": len(after["documents"])}


def _archive(settings: Settings, sessions: Any) -> dict[str, Any]:
    from archive.integration import fixity_with_repair
    from archive.recovery import held, hold_found, unindexed_packages
    from archive.replica import archive_store

    report = fixity_with_repair(settings, sessions)
    # A complete, signed run folder the index does not know: archived after the backup (listed below).
    later_runs = [p["key"] for p in report["problems"] if p["problem"] == "unpublished_run"]
    problems = [p for p in report["problems"] if p["problem"] != "unpublished_run"]
    copies = report.get("copies") or {}
    newly = unindexed_packages(archive_store(settings), sessions)
    hold_found(sessions, newly)
    return {"ok": not problems and not copies.get("unrepaired"), "records_checked": report["records_checked"],
            "problems": problems, "copies_repaired": copies.get("repaired", 0),
            "copies_unrepaired": [p for p in copies.get("problems", []) if not p.get("repaired")],
            "runs_after_backup": later_runs, "unreadable_found": [f for f in newly if "unreadable" in f],
            "found": held(sessions), "report_key": report.get("report_key")}


def _audit(settings: Settings, sessions: Any, registry: Any, items: list[dict[str, Any]], head: int
           ) -> dict[str, Any]:
    """The log against its anchors up to ``head`` (the restored log's last entry); anchors beyond it were
    made after the backup."""
    from sqlalchemy import select

    from archive.audit_anchors import bucket_anchors
    from filing.outbox import OutboxRecord
    from stamping.audit import verify_audit
    from stamping.audit.anchors import platform_anchors
    from stamping.audit.log import ANCHOR_KIND, AnchorSet

    key = registry.audit_public_key()
    with sessions() as s:
        known = set(s.scalars(select(OutboxRecord.record_id)))
        bucket = bucket_anchors(settings).read()
        ours = [i for i in items if i["record_id"] in known]
        platform = platform_anchors(s, _Listing(ours), settings.audit_key_id)
        kept = [AnchorSet(group.name, [a for a in group.anchors if a.seq <= head], group.problems)
                for group in (bucket, platform)]
        report = verify_audit(s, key, anchors=kept)
    later = sorted({a.seq for a in bucket.anchors if a.seq > head})
    unknown_checkpoints = [i["record_id"] for i in items
                           if i["record_id"] not in known and i.get("kind") == ANCHOR_KIND]
    return {"ok": report.ok, "entries": report.entries, "last_seq": report.last_seq, "restored_head": head,
            "reason": report.reason, "first_bad_seq": report.first_bad_seq,
            "anchors_checked": sum(len(g.anchors) for g in kept),
            "after_backup": {"anchored_beyond_restored_head": later,
                             "entries_after_backup_at_least": (max(later) - head) if later else 0,
                             "checkpoint_filings_unknown": len(unknown_checkpoints)}}


def _filing(sessions: Any, client: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    from filing.dispatcher import settle
    from filing.reconcile import reconcile

    with sessions() as s:
        first = reconcile(s, items)
    settled = settle(sessions, client, first.not_marked_sent) if first.not_marked_sent else None
    with sessions() as s:
        result = reconcile(s, items)
    unknown = set(result.unknown_to_us)
    after = [{k: i.get(k) for k in ("record_id", "kind", "subject", "subject_seq", "received_at")}
             for i in items if i["record_id"] in unknown]
    return {"ok": not (result.missing_at_platform or result.mismatched or result.not_marked_sent),
            "platform_listed": result.platform_listed, "ours_sent": result.ours_sent,
            "marked_delivered": settled.sent if settled else 0, "missing_at_platform": result.missing_at_platform,
            "mismatched": result.mismatched, "not_marked_sent": result.not_marked_sent, "after_backup": after}
