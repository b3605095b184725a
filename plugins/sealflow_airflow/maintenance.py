"""Glue of the registry's hourly job (``seal_maintenance``): expire due seals, checkpoint the audit log
and anchor the checkpoints in the archive bucket — with the composition root's registry, database and
settings (the S3 connection's endpoint included), so the DAG file imports nothing but this glue."""

from __future__ import annotations

from typing import Any

from sealflow_airflow import root


def expire_and_checkpoint() -> dict[str, Any]:
    """One maintenance pass; a summary (counts and sequence numbers) for XCom."""
    from archive.audit_anchors import bucket_anchors
    from stamping.registry.maintenance import run_maintenance

    return run_maintenance(root.registry(), root.sessions(), anchors=bucket_anchors(root.settings()))
