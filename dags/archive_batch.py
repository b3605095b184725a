"""archive_batch — every verified certificate of a stamped batch becomes an electronic archive
record (电子档案): package + metadata + 四性检测 → S3 with Object Lock → index; then the batch's
archiving registration goes to the filing outbox. Scheduled by the Asset stamp_batch emits."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task
from sealflow_airflow.alerts import SealFlowAlertNotifier
from sealflow_airflow.assets import ARCHIVED_BATCHES, STAMPED_BATCHES
from sealflow_airflow.root import parse_settings


@dag(dag_id="archive_batch", schedule=[STAMPED_BATCHES], catchup=False, max_active_runs=1,
     tags=["sealflow", "archive"], doc_md=__doc__, on_failure_callback=SealFlowAlertNotifier())
def archive_batch() -> None:
    @task
    def batches_to_archive() -> list[str]:
        from sealflow_airflow import archiving

        return archiving.batches_to_archive(get_current_context())

    # Retried with a doubling delay (base: a test stack shortens it) for up to about half an hour in
    # production: a store that cannot take writes (SeaweedFS with a volume server of a 001 pair down
    # refuses every upload until it is back, docs/distributed.md) is waited out, not failed.
    @task(execution_timeout=timedelta(hours=2), retries=6, outlets=[ARCHIVED_BATCHES],
          retry_delay=timedelta(seconds=parse_settings().archive_retry_delay_s),
          retry_exponential_backoff=2.0, max_retry_delay=timedelta(minutes=10))
    def archive(batch_ids: list[str]) -> list[dict]:
        from sealflow_airflow import archiving

        return archiving.archive_batches(batch_ids, get_current_context())

    archive(batches_to_archive())


archive_batch()
