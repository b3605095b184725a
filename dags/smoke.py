"""sealflow_smoke — proves the stack end to end: a task writes an object to the work bucket through
the ``sealflow_s3`` connection, the next reads it back and checks its SHA-256."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="sealflow_smoke", schedule=None, catchup=False, tags=["sealflow", "smoke"], doc_md=__doc__)
def sealflow_smoke() -> None:
    @task
    def write_object() -> str:
        import hashlib
        import json
        from datetime import UTC, datetime

        from sealflow_airflow.hooks import s3_client, settings_from_connections

        ctx = get_current_context()
        bucket = settings_from_connections().work_bucket
        key = f"smoke/{ctx['dag_run'].run_id.replace(':', '_').replace('+', '_')}.json"
        body = json.dumps({"dag_id": ctx["dag"].dag_id, "run_id": ctx["dag_run"].run_id,
                           "written_at": datetime.now(UTC).isoformat()}, sort_keys=True).encode()
        s3_client().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                               Metadata={"sha256": hashlib.sha256(body).hexdigest()})
        return f"s3://{bucket}/{key}"

    @task
    def read_back(uri: str) -> str:
        import hashlib

        from sealflow_airflow.hooks import s3_client

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        obj = s3_client().get_object(Bucket=bucket, Key=key)
        digest = hashlib.sha256(obj["Body"].read()).hexdigest()
        if digest != obj["Metadata"].get("sha256"):
            raise ValueError(f"{uri}: content does not match its recorded SHA-256")
        return uri

    read_back(write_object())


sealflow_smoke()
