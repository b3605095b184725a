"""seal_maintenance — the hourly housekeeping job. The registry's part: seals past their validity
become expired (filed with the national platform and audited, one transaction per seal), then the
audit log gets a signed checkpoint and every checkpoint is anchored in the archive bucket
(docs/audit.md); expiry is decided here, never lazily when a seal is read. The work bucket's part,
beside it: the received and sealed files of batches archived and filed more than
SEALFLOW_WORK_RETENTION_DAYS ago are removed, the manifest and the report kept, each batch audited
(docs/backup.md, "The work bucket")."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task


@dag(
    dag_id="seal_maintenance",
    schedule=CronTriggerTimetable("10 * * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sealflow", "registry"],
    doc_md=__doc__,
)
def seal_maintenance() -> None:
    @task(retries=2)
    def expire_and_checkpoint() -> dict:
        from sealflow_airflow.maintenance import expire_and_checkpoint as run

        return run()

    @task(retries=2, execution_timeout=timedelta(hours=1))
    def purge_work() -> dict:
        from sealflow_airflow.maintenance import purge_work as run

        return run()

    expire_and_checkpoint()
    purge_work()  # beside it, not after it: one failing never holds back the other


seal_maintenance()
