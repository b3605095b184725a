"""seal_maintenance — the registry's hourly job: seals past their validity become expired (filed
with the national platform and audited, one transaction per seal), then the audit log gets a
signed checkpoint and every checkpoint is anchored in the archive bucket (docs/audit.md).
Expiry is decided here, never lazily when a seal is read."""

from __future__ import annotations

from datetime import datetime

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

    expire_and_checkpoint()


seal_maintenance()
