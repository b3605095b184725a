"""backup — 备份: one consistent, encrypted, signed snapshot of what SealFlow cannot re-create, daily.

The first run takes a full backup, later runs store only what changed. Where it goes is
SEALFLOW_BACKUP_TARGET (a folder outside the home, or s3://bucket/prefix with Object Lock); without one
the run is skipped with the reason. Check a backup with `sealflow backup verify`.

(This file is not named backup.py: the dags folder is on sys.path and would hide the ``backup`` package.)
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task


@dag(dag_id="backup", schedule="@daily", catchup=False, max_active_runs=1, tags=["sealflow", "backup"],
     doc_md=__doc__)
def backup() -> None:
    @task(retries=2, retry_delay=timedelta(minutes=5), execution_timeout=timedelta(hours=2))
    def take_backup() -> dict:
        from sealflow_airflow.backups import run_backup

        return run_backup()

    take_backup()


backup()
