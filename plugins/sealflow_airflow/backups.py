"""Glue of the ``backup`` DAG: take one backup of this SealFlow home with the configured target.

With no target configured the task is skipped with the reason (a deployment that has not chosen where
its backups live is told so on every run, in yellow, instead of failing red or pretending to back up).
"""

from __future__ import annotations

from typing import Any

from sealflow_airflow import root


def run_backup() -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    from backup.service import take_backup

    settings = root.settings()
    if not settings.backup_target:
        raise AirflowSkipException("no backup target configured: set SEALFLOW_BACKUP_TARGET to a folder outside "
                                   "the home or s3://bucket/prefix (a bucket with Object Lock)")
    result = take_backup(settings)
    # Only figures go to XCom: ids, counts and sizes, never keys or paths of secrets.
    return {"backup_id": result.backup_id, "base": result.base, "objects_written": result.objects_written,
            "bytes_written": result.bytes_written,
            "rows": sum(t["rows"] for t in result.manifest["tables"].values())}
