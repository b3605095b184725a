"""stamp_batch — a records office's batch of certificates, from inbox to verified seals.

ingest (manifest and files checked, bad ones quarantined) → 用章审批 by the seal's keeper with a
one-time code → stamp in chunks → verify in chunks → batch report → Asset event for archiving.

To name a batch from the UI, set Run ID (advanced options) to ``batch__NAME``: the batch is then
``NAME`` and the run list finds it by that name (``sealflow batch submit`` names its runs so too).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from sealflow_airflow import pipeline
from sealflow_airflow.approval import SealUseApprovalOperator
from sealflow_airflow.trigger_form import stamp_batch_params

from sealflow.settings import get_settings

STAMPED_BATCHES = pipeline.STAMPED_BATCHES


@dag(
    dag_id="stamp_batch",
    schedule=None,
    catchup=False,
    max_active_tasks=2,
    tags=["sealflow", "stamping"],
    doc_md=__doc__,
    # Built when the file is parsed: the seal list holds the seals enrolled for batch use (trigger_form.py).
    params={name: Param(**schema) for name, schema in stamp_batch_params(get_settings()).items()},
)
def stamp_batch() -> None:
    @task
    def ingest() -> dict:
        ctx = get_current_context()
        return pipeline.ingest_batch(ctx["params"], ctx["run_id"])

    # Retries: a retried approval reads the decision of its run and never asks again (see approval.py).
    approval = SealUseApprovalOperator(task_id="seal_use_approval", ingest_task_id="ingest",
                                       response_timeout=timedelta(hours=24), retries=2,
                                       retry_delay=timedelta(seconds=2))

    @task
    def plan_chunks(batch: dict, decision: dict) -> list[int]:
        return pipeline.plan_chunks(batch["batch_id"], decision)

    @task(retries=2, retry_delay=timedelta(seconds=10))
    def stamp_chunk(batch: dict, chunk: int) -> dict:
        return pipeline.stamp_chunk(batch["batch_id"], chunk)

    @task(retries=2, retry_delay=timedelta(seconds=10))
    def verify_chunk(batch: dict, chunk: int) -> dict:
        return pipeline.verify_chunk(batch["batch_id"], chunk)

    @task(trigger_rule="none_failed", outlets=[STAMPED_BATCHES])
    def report(batch: dict) -> dict:
        return pipeline.finish_batch(batch["batch_id"], get_current_context())

    batch = ingest()
    approval.set_upstream(batch)
    chunk_ids = plan_chunks(batch, approval.output)
    stamped = stamp_chunk.partial(batch=batch).expand(chunk=chunk_ids)
    verified = verify_chunk.partial(batch=batch).expand(chunk=chunk_ids)
    stamped >> verified >> report(batch)


stamp_batch()
