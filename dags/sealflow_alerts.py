"""sealflow_alerts — 告警: every 15 minutes, e-mail each new condition once (a seal entering its 30-day
renewal window or expired, a dead-lettered filing, a fixity problem, a locked key, a failed or refused
batch, no recent backup at the configured target) through Airflow's SMTP notifier (connection
``smtp_default``). Recipients: the Airflow Variable ``sealflow_alert_recipients`` (comma-separated);
without it the run is skipped and says so. The pipeline's DAGs call the same notifier when a run ends,
so a refused or failed run is mailed at once; this watch catches what no run reports."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task


@dag(dag_id="sealflow_alerts", schedule=timedelta(minutes=15), catchup=False, max_active_runs=1,
     tags=["sealflow", "alerts"], doc_md=__doc__)
def sealflow_alerts() -> None:
    @task(execution_timeout=timedelta(minutes=10))
    def announce(**context) -> list[str]:
        from airflow.exceptions import AirflowSkipException
        from sealflow_airflow.alerts import RECIPIENTS_VARIABLE, SealFlowAlertNotifier, configured_recipients

        if not configured_recipients():
            raise AirflowSkipException(f"no recipients: set the Airflow Variable {RECIPIENTS_VARIABLE} "
                                       f"(airflow variables set {RECIPIENTS_VARIABLE} a@b.cn,c@d.cn)")
        return SealFlowAlertNotifier().notify(context)

    announce()


sealflow_alerts()
