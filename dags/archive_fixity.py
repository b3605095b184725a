"""archive_fixity — 长期保存 fixity check: re-read every archived object in both stores (primary and
replica), repair a missing or damaged copy from the good one (each repair audited), compare the
primary with the index, store one aggregated report under reports/fixity/ in the archive bucket.
Fails when anything is left unrepaired, so the run shows red and the report key says where to look."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from sealflow_airflow.alerts import SealFlowAlertNotifier


@dag(dag_id="archive_fixity", schedule="@weekly", catchup=False, max_active_runs=1,
     tags=["sealflow", "archive"], doc_md=__doc__, on_failure_callback=SealFlowAlertNotifier())
def archive_fixity() -> None:
    @task(execution_timeout=timedelta(hours=6))
    def check() -> dict:
        from sealflow_airflow.archiving import scheduled_fixity

        report = scheduled_fixity()
        if not report["ok"]:
            raise RuntimeError(f"fixity: {report['problem_counts']} — report {report.get('report_key')}")
        return report

    check()


archive_fixity()
