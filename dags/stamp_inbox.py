"""stamp_inbox — every ten minutes, start stamp_batch for each ready folder of the inbox
(``<state>/inbox/<folder>/`` with its manifest and ``batch.json``); one run per folder, ever."""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task


@dag(dag_id="stamp_inbox", schedule="*/10 * * * *", catchup=False, max_active_runs=1,
     tags=["sealflow", "stamping"], doc_md=__doc__)
def stamp_inbox() -> None:
    @task
    def ready_batches() -> list[dict]:
        from sealflow_airflow.pipeline import inbox_batches as scan

        return scan()

    TriggerDagRunOperator.partial(task_id="start_stamp_batch", trigger_dag_id="stamp_batch",
                                  skip_when_already_exists=True).expand_kwargs(ready_batches())


stamp_inbox()
