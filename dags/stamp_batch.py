"""stamp_batch — a records office's batch of certificates, from inbox to verified seals.

ingest (manifest and files checked, bad ones quarantined) → 用章审批 by the seal's keeper with a
one-time code → stamp in chunks → verify in chunks → batch report → Asset event for archiving.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from sealflow_airflow import pipeline
from sealflow_airflow.approval import SealUseApprovalOperator

STAMPED_BATCHES = pipeline.STAMPED_BATCHES


@dag(
    dag_id="stamp_batch",
    schedule=None,
    catchup=False,
    max_active_tasks=2,
    tags=["sealflow", "stamping"],
    doc_md=__doc__,
    params={
        "batch_location": Param("", type="string", title="Batch folder or s3://bucket/prefix",
                                description="Folder (or S3 prefix) holding the PDF/OFD files and manifest.csv/json"),
        "es_id": Param("", type="string", title="Seal (印章编码 es_id)"),
        "placement": Param("anchor:（盖章）", type="string", title="Placement rule",
                           description="anchor:TEXT[,dx=MM,dy=MM] | page=N,x=MM,y=MM | cross-page"),
        "pdf_container": Param("pkcs7", enum=["pkcs7", "gbt35275"], title="PDF signature container"),
        "requester": Param("", type="string", title="Requested by (用章申请人)"),
        "batch_id": Param("", type="string", title="Batch id (optional; default: the run id)"),
    },
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
