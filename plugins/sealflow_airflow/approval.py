"""用章审批 in Airflow: the seal's keeper approves a batch's use of the seal in the UI.

The task texts a one-time code to the keeper (SmsGateway), then waits as a human-in-the-loop task
in Airflow's "Required actions" (UI or REST API). The keeper chooses Approve and types the code,
or chooses Reject. The decision is checked and audited by SealFlow; only ``{approved, reason,
decided_by}`` goes to XCom — never the code.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

APPROVE = "Approve"
REJECT = "Reject"


class SealUseApprovalOperator(HITLOperator):
    """Ask the seal's keeper to approve this batch (用章审批) with a one-time code."""

    def __init__(self, *, ingest_task_id: str = "ingest", **kwargs: Any) -> None:
        # The DAG hands its trigger-form params down to every task; the keeper's form shows only the code.
        kwargs.pop("params", None)
        batch = "ti.xcom_pull(task_ids='" + ingest_task_id + "')"
        super().__init__(
            subject="用章审批 Seal-use approval: batch {{ " + batch + "['batch_id'] }}",
            body=(
                "Batch **{{ " + batch + "['batch_id'] }}** asks to use seal **{{ " + batch + "['es_id'] }}** on "
                "**{{ " + batch + "['accepted'] }}** documents, requested by {{ " + batch + "['requester'] }}. "
                "A one-time code was sent to the seal's keeper: choose Approve and enter it, or Reject."
            ),
            options=[APPROVE, REJECT],
            defaults=None,
            multiple=False,
            params={"code": Param("", type="string", title="One-time code (短信验证码)")},
            **kwargs,
        )
        self.ingest_task_id = ingest_task_id

    def execute(self, context: Any) -> Any:
        from sealflow_airflow import pipeline

        batch = context["ti"].xcom_pull(task_ids=self.ingest_task_id)
        pipeline.request_approval(batch["batch_id"])
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from sealflow_airflow import pipeline

        answer = super().execute_complete(context=context, event=event)
        batch = context["ti"].xcom_pull(task_ids=self.ingest_task_id)
        user = answer.get("responded_by_user") or {}
        return pipeline.record_decision(
            batch["batch_id"],
            approve=answer["chosen_options"] == [APPROVE],
            code=str((answer.get("params_input") or {}).get("code", "")),
            decided_by=str(user.get("name") or user.get("id") or "unknown"),
        )
