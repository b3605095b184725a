"""用章审批 in Airflow: only the seal's keeper approves a batch's use, with the one-time code.

Decisions behind it:

- The request is assigned to the keeper's Airflow user (``assigned_users``; the keeper's Airflow user
  name is their SealFlow registry user name), so Airflow's API refuses anybody else with 403. On resume
  the operator checks the responder again (the user Airflow authenticated, never a typed name): an
  answer from anyone else is refused, audited, and the task waits for the keeper again.
- The code is checked by SealFlow (:mod:`stamping.batch.approval`): a wrong code below the limit parks
  the task again in the same approval (the keeper types it again); the counter is never reset.
- A refusal, an expired code or the limit fails the task with the reason (``AirflowFailException``, no
  retry): the run is red, the documents say "refused", the report is written.
- An approval belongs to its run. The task may be retried (e.g. a task process killed with its worker;
  Airflow 3.3.2 also failed a task answered the moment it parked, which ``sealflow_airflow.executor``
  prevents): a retry asks SealFlow first and, when the approval is already decided for this run, goes
  on (or fails) without asking again.
- Only ``{approved, reason, decided_by}`` goes to XCom — never the code.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

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
        asked = pipeline.request_approval(batch["batch_id"], context["run_id"])
        if asked["state"] != "pending":  # decided for this run already (a retried task): never ask again
            if asked["state"] != "approved":
                pipeline.refuse_batch(batch["batch_id"], f"用章审批: {asked['reason']}")
            return self._conclude(asked["state"] == "approved", asked["reason"], asked["decided_by"])
        self.assigned_users = [{"id": asked["keeper"], "name": asked["keeper"]}]
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from sealflow_airflow import pipeline

        batch = context["ti"].xcom_pull(task_ids=self.ingest_task_id)
        if "error" in event:
            reason = "nobody answered before the response timeout" if event.get("error_type") == "timeout" \
                else f"the approval could not be read ({event.get('error_type')})"
            pipeline.expire_approval(batch["batch_id"], reason)
            raise AirflowFailException(f"batch {batch['batch_id']} refused: {reason}")
        answer = super().execute_complete(context=context, event=event)
        user = answer.get("responded_by_user") or {}
        decision = pipeline.record_decision(
            batch["batch_id"], context["run_id"],
            approve=answer["chosen_options"] == [APPROVE],
            code=str((answer.get("params_input") or {}).get("code", "")),
            responder=str(user.get("id") or ""),  # Airflow's authenticated user id; absent on a timeout default
        )
        self._forget_answer()
        if not decision.final:
            self.log.warning("batch %s: %s; waiting for the keeper again", batch["batch_id"], decision.reason)
            return HITLOperator.execute(self, context)  # park again in the same approval: no new code
        return self._conclude(decision.approved, decision.reason, decision.decided_by)

    def _forget_answer(self) -> None:
        """The typed code must not come back as the form's default nor reach listeners."""
        self.params["code"] = ""
        for key in ("params_input", "chosen_options"):
            self.hitl_summary_extra.pop(key, None)

    def _conclude(self, approved: bool, reason: str, decided_by: str) -> dict[str, Any]:
        if not approved:
            raise AirflowFailException(f"seal use refused: {reason}")
        return {"approved": True, "reason": reason, "decided_by": decided_by}
