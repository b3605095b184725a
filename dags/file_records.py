"""file_records — file seal events and archive registrations with the national platform (备案).

Runs on a cron (``SEALFLOW_FILING_SCHEDULE``, default every 15 minutes) AND whenever a batch is
stamped or archived (Assets ``sealflow://batches/stamped`` / ``sealflow://batches/archived``).
It drains the filing outbox in order per seal, with backoff; a record is done only when the
platform's signed receipt is stored. Endpoint and credentials: Airflow connection ``sealflow_platform``.

The run fails — the alert an operator sees — when nothing could be delivered for longer than
``SEALFLOW_FILING_ALERT_AFTER_S`` (default one hour) while records wait, or when it dead-lettered
records; one bad record never holds back the others of its request (the dispatcher isolates it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from sealflow_airflow.alerts import SealFlowAlertNotifier
from sealflow_airflow.assets import ARCHIVED_BATCHES, STAMPED_BATCHES
from sealflow_airflow.root import parse_settings


@dag(
    dag_id="file_records",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(parse_settings().filing_schedule, timezone="UTC"),
        assets=(STAMPED_BATCHES | ARCHIVED_BATCHES),
    ),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sealflow", "filing"],
    doc_md=__doc__,
    on_failure_callback=SealFlowAlertNotifier(),  # a dead letter or a long outage is mailed at once
)
def file_records() -> None:
    # Airflow's default retry delay is 5 minutes; with max_active_runs=1 every later run (the next
    # batch's filing) waits behind it. Draining is idempotent, so the second try comes at once.
    @task(retries=1, retry_delay=timedelta(seconds=30))
    def drain_outbox() -> dict:
        from sealflow_airflow.platform_hook import file_records as run

        return run()

    drain_outbox()


file_records()
