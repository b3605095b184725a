"""sealflow_alerts — 告警: every 15 minutes, e-mail each new condition once (a seal entering its 30-day
renewal window or expired, a dead-lettered filing, a fixity problem, a locked key, a failed or refused
batch, no recent backup at the configured target) through Airflow's SMTP notifier (connection
``smtp_default``). Recipients: the Airflow Variable ``sealflow_alert_recipients`` (comma-separated);
without it the run is skipped and says so."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Variable, dag, task


@dag(dag_id="sealflow_alerts", schedule=timedelta(minutes=15), catchup=False, max_active_runs=1,
     tags=["sealflow", "alerts"], doc_md=__doc__)
def sealflow_alerts() -> None:
    @task(execution_timeout=timedelta(minutes=10))
    def announce(**context) -> list[str]:
        from airflow.exceptions import AirflowSkipException
        from sealflow_airflow.alerts import SealFlowAlertNotifier

        recipients = [r.strip() for r in Variable.get("sealflow_alert_recipients", default="").split(",") if r.strip()]
        if not recipients:
            raise AirflowSkipException("no recipients: set the Airflow Variable sealflow_alert_recipients "
                                       "(airflow variables set sealflow_alert_recipients a@b.cn,c@d.cn)")
        return SealFlowAlertNotifier(to=recipients).notify(context)

    announce()


sealflow_alerts()
