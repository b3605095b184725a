"""Glue of the hourly housekeeping job (``seal_maintenance``): expire due seals, checkpoint the audit log
and anchor the checkpoints in the archive bucket; remove the work copies of batches archived and filed
longer ago than the retention (``archive.work_purge``) — with the composition root's registry, database,
work store and settings (the S3 connection's endpoint included), so the DAG file imports nothing but this
glue."""

from __future__ import annotations

from typing import Any

from sealflow_airflow import root


def expire_and_checkpoint() -> dict[str, Any]:
    """One maintenance pass; a summary (counts and sequence numbers) for XCom."""
    from archive.audit_anchors import bucket_anchors
    from stamping.registry.maintenance import run_maintenance

    return run_maintenance(root.registry(), root.sessions(), anchors=bucket_anchors(root.settings()))


def purge_work() -> dict[str, Any]:
    """One clean-up of the work bucket (``archive.work_purge``), audited by the registry's audit log; the
    counts, the batches removed and the held ones with their reasons (for XCom). Fails — so the run shows
    red and Airflow retries — when a batch could not be dealt with (the store or the database failing)."""
    from archive.work_purge import purge_work as run

    report = run(root.settings(), root.sessions(), root.work_store(), root.registry().audit, trigger="seal_maintenance")
    summary = report.to_json()
    if report.errors:
        first = report.errors[0]
        raise RuntimeError(f"work copies of {len(report.errors)} batch(es) not removed, first {first.batch_id}: "
                           f"{first.reasons[0]} — the next run tries again ({summary['counts']})")
    return summary
