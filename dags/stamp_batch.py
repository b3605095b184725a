"""stamp_batch — a records office's batch of certificates, from inbox to verified seals.

ingest (manifest and files checked, bad ones quarantined) → 用章审批 by the seal's keeper with a
one-time code → per chunk: stamp, then verify → batch report → Asset event for archiving.

Each chunk is one mapped task group (stamp_chunk → verify_chunk, same map index = chunk number), so
a chunk is verified as soon as it is stamped, and a chunk that runs out of retries holds back only
its own documents. The group does not prefix its task ids: they stay ``stamp_chunk`` and
``verify_chunk``. ``report`` runs once every chunk is done, failed or not (trigger rule
``all_done``); it writes the report and fails the run when documents wait (status ``incomplete``),
naming the chunk to clear — clearing ``stamp_chunk[N]`` with its downstream retries that chunk
alone and then reports again. Infrastructure errors (disk full, I/O, storage) fail a chunk's task
so Airflow retries it; they never mark documents failed.

To name a batch from the UI, set Run ID (advanced options) to ``batch__NAME``: the batch is then
``NAME`` and the run list finds it by that name (``sealflow batch submit`` names its runs so too).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task, task_group
from sealflow_airflow import pipeline
from sealflow_airflow.alerts import SealFlowAlertNotifier
from sealflow_airflow.approval import SealUseApprovalOperator
from sealflow_airflow.assets import STAMPED_BATCHES
from sealflow_airflow.root import parse_settings
from sealflow_airflow.trigger_form import stamp_batch_params

# Between tries of the idempotent steps (ingest, stamp, verify): settings, so a test stack can shorten it.
RETRY_DELAY = timedelta(seconds=parse_settings().task_retry_delay_s)


@dag(
    dag_id="stamp_batch",
    schedule=None,
    catchup=False,
    max_active_tasks=2,
    tags=["sealflow", "stamping"],
    doc_md=__doc__,
    # A refused, failed or incomplete batch is mailed when its run ends, not at the next watch.
    on_success_callback=SealFlowAlertNotifier(),
    on_failure_callback=SealFlowAlertNotifier(),
    # Built when the file is parsed: the seal list holds the seals enrolled for batch use (trigger_form.py).
    params={name: Param(**schema) for name, schema in stamp_batch_params(parse_settings()).items()},
)
def stamp_batch() -> None:
    @task(retries=2, retry_delay=RETRY_DELAY)  # idempotent; the object store may be briefly down
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

    @task(retries=2, retry_delay=RETRY_DELAY)
    def stamp_chunk(batch: dict, chunk: int) -> dict:
        return pipeline.stamp_chunk(batch["batch_id"], chunk)

    @task(retries=2, retry_delay=RETRY_DELAY)
    def verify_chunk(batch: dict, stamped: dict) -> dict:
        return pipeline.verify_chunk(batch["batch_id"], stamped["chunk"])

    @task_group(group_id="chunk", prefix_group_id=False)
    def chunk_group(batch: dict, chunk: int) -> None:
        verify_chunk(batch, stamp_chunk(batch, chunk))

    @task(trigger_rule="all_done", outlets=[STAMPED_BATCHES])
    def report(batch: dict) -> dict:
        return pipeline.finish_batch(batch["batch_id"], get_current_context())

    batch = ingest()
    approval.set_upstream(batch)
    chunk_ids = plan_chunks(batch, approval.output)
    chunk_group.partial(batch=batch).expand(chunk=chunk_ids) >> report(batch)


stamp_batch()
