"""The Airflow side of 用章审批 without a stack: the answer gate in the API server and the operator's
resume and retry paths (what keeps the outcome independent of Airflow's parking race)."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from stamping.batch.approval import Decision
from tests.pipeline.plugins_path import PLUGINS

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))

from sealflow_airflow import answer_gate
from sealflow_airflow.approval import SealUseApprovalOperator

HITL = "/api/v2/dags/stamp_batch/dagRuns/batch__b1/taskInstances/seal_use_approval/-1/hitlDetails"


def decision(outcome: str, *, final: bool, approved: bool = False, reason: str = "") -> Decision:
    return Decision("approval:b1", "b1", "4500001", approved, "keeper", reason or outcome, final=final,
                    outcome=outcome)


class Airflow:
    """Stands in for Airflow's API app behind the gate: records what reaches it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope, receive, send) -> None:
        body = (await receive()).get("body", b"")
        self.received.append({"path": scope["path"], "body": json.loads(body or b"{}")})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch):
    airflow = Airflow()
    judged: list[tuple] = []
    outcomes: list[Decision | None] = []

    def judge(run_id: str, approve: bool, code: str, responder: str, refusal: str = "") -> Decision | None:
        judged.append((run_id, approve, code, responder) + ((refusal,) if refusal else ()))
        return outcomes.pop(0)

    async def responder(scope) -> str:
        return "keeper"

    monkeypatch.setattr(answer_gate, "judge", judge)
    monkeypatch.setattr(answer_gate, "_responder", responder)
    return SimpleNamespace(client=TestClient(answer_gate.AnswerGate(airflow)), airflow=airflow, judged=judged,
                           outcomes=outcomes)


def test_a_wrong_code_is_answered_by_the_gate_and_never_reaches_airflow(gate) -> None:
    gate.outcomes.append(decision("wrong_code", final=False, reason="wrong one-time code (4 tries left)"))
    response = gate.client.patch(HITL, json={"chosen_options": ["Approve"], "params_input": {"code": "123456"}})
    assert response.status_code == 400 and response.json()["detail"] == "wrong one-time code (4 tries left)"
    assert gate.judged == [("batch__b1", True, "123456", "keeper")]
    assert gate.airflow.received == []  # the task stays parked: nothing to race


def test_a_stranger_is_refused_by_the_gate(gate) -> None:
    gate.outcomes.append(decision("not_keeper", final=False, reason="admin is not the keeper"))
    response = gate.client.patch(HITL, json={"chosen_options": ["Reject"], "params_input": {"code": ""}})
    assert response.status_code == 403 and gate.airflow.received == []


def test_a_final_answer_reaches_airflow_without_the_code(gate) -> None:
    gate.outcomes.append(decision("approved", final=True, approved=True))
    response = gate.client.patch(HITL, json={"chosen_options": ["Approve"], "params_input": {"code": "314159"}})
    assert response.status_code == 200
    assert gate.airflow.received == [{"path": HITL, "body": {"chosen_options": ["Approve"],
                                                             "params_input": {"code": ""}}}]


def test_a_refusal_hands_the_keepers_reason_to_sealflow(gate) -> None:
    gate.outcomes.append(decision("refused", final=True))
    response = gate.client.patch(HITL, json={"chosen_options": ["Reject"],
                                             "params_input": {"code": "", "reason": "名单未经核对"}})
    assert response.status_code == 200
    assert gate.judged == [("batch__b1", False, "", "keeper", "名单未经核对")]
    assert gate.airflow.received[0]["body"]["params_input"] == {"code": ""}  # exactly the form's params


def test_the_gate_sees_answers_behind_a_base_path(gate) -> None:
    gate.outcomes.append(decision("wrong_code", final=False))
    response = gate.client.patch("/airflow" + HITL, json={"chosen_options": ["Approve"], "params_input": {"code": "1"}})
    assert response.status_code == 400 and gate.airflow.received == []


def test_other_requests_pass_untouched(gate) -> None:
    other = HITL.replace("seal_use_approval", "some_other_task")
    gate.client.patch(other, json={"chosen_options": ["Yes"], "params_input": {"code": "1"}})
    gate.client.get(HITL)
    gate.outcomes.append(None)  # a run SealFlow knows nothing about: Airflow and the operator decide
    gate.client.patch(HITL, json={"chosen_options": ["Approve"], "params_input": {"code": "2"}})
    assert [r["body"].get("params_input") for r in gate.airflow.received] == [{"code": "1"}, None, {"code": "2"}]


class FakePipeline:
    def __init__(self, asked: dict[str, Any] | None = None, decided: Decision | None = None) -> None:
        self.asked, self.decided, self.calls = asked, decided, []

    def request_approval(self, batch_id: str, run_id: str) -> dict[str, Any]:
        self.calls.append(("request", batch_id, run_id))
        return self.asked

    def record_decision(self, batch_id: str, run_id: str, **answer: Any) -> Decision:
        self.calls.append(("decide", answer["responder"], answer["code"]))
        return self.decided

    def refuse_batch(self, batch_id: str, reason: str) -> None:
        self.calls.append(("refuse", reason))

    def expire_approval(self, batch_id: str, reason: str) -> None:
        self.calls.append(("expire", reason))


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch):
    import sealflow_airflow
    from airflow.providers.standard.operators.hitl import HITLOperator

    parked: list[Any] = []
    monkeypatch.setattr(HITLOperator, "execute", lambda self, context: parked.append(self.assigned_users))
    op = SealUseApprovalOperator(task_id="seal_use_approval")
    context = {"run_id": "batch__b1", "ti": SimpleNamespace(xcom_pull=lambda task_ids: {"batch_id": "b1"})}

    def use(fake: FakePipeline) -> FakePipeline:
        monkeypatch.setattr(sealflow_airflow, "pipeline", fake, raising=False)
        return fake

    return SimpleNamespace(op=op, context=context, parked=parked, use=use)


def test_a_retried_approval_task_reads_the_decision_of_its_run_and_does_not_ask_again(operator) -> None:
    fake = operator.use(FakePipeline(asked={"state": "approved", "keeper": "keeper", "reason": "ok",
                                            "decided_by": "keeper"}))
    assert operator.op.execute(operator.context) == {"approved": True, "reason": "ok", "decided_by": "keeper"}
    assert operator.parked == [] and fake.calls == [("request", "b1", "batch__b1")]


def test_a_retried_approval_task_of_a_refused_batch_fails_and_refuses_the_documents(operator) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    fake = operator.use(FakePipeline(asked={"state": "refused", "keeper": "keeper", "reason": "5 wrong one-time codes",
                                            "decided_by": "keeper"}))
    with pytest.raises(AirflowFailException, match="5 wrong one-time codes"):
        operator.op.execute(operator.context)
    assert ("refuse", "用章审批: 5 wrong one-time codes") in fake.calls and operator.parked == []


def test_the_request_is_assigned_to_the_keeper(operator) -> None:
    operator.use(FakePipeline(asked={"state": "pending", "keeper": "keeper", "reason": "", "decided_by": ""}))
    operator.op.execute(operator.context)
    assert operator.parked == [[{"id": "keeper", "name": "keeper"}]]


def _event(user_id: str, code: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {"chosen_options": ["Approve"], "params_input": {"code": code}, "responded_at": datetime.now(UTC),
            "responded_by_user": {"id": user_id, "name": user_id}}


def test_without_the_gate_a_wrong_answer_parks_the_task_again_with_the_form_blank(operator) -> None:
    fake = operator.use(FakePipeline(decided=decision("not_keeper", final=False)))
    operator.op.execute_complete(operator.context, _event("admin", "314159"))
    assert fake.calls == [("decide", "admin", "314159")]  # the responder Airflow authenticated
    assert len(operator.parked) == 1 and operator.op.params["code"] == ""
    assert "params_input" not in operator.op.hitl_summary_extra


def test_a_timeout_refuses_the_batch(operator) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    fake = operator.use(FakePipeline())
    with pytest.raises(AirflowFailException, match="nobody answered"):
        operator.op.execute_complete(operator.context, {"error": "timeout", "error_type": "timeout"})
    assert fake.calls == [("expire", "nobody answered before the response timeout")]


def test_the_batch_runner_answers_with_the_code_of_the_batch_it_names(settings) -> None:
    """Two batches wait for one keeper: each answer uses the code texted for its own batch."""
    from datetime import UTC, datetime

    from sealflow.batch_runner import last_code
    from stamping.batch.approval import approval_message
    from stamping.batch.sms import LocalSmsGateway

    outbox = LocalSmsGateway(settings.resolved_sms_outbox)
    for batch_id, code in (("b1", "111111"), ("b10", "101010"), ("b2", "222222")):
        outbox.send("keeper", approval_message(batch_id=batch_id, es_id="4500001", documents=1, requester="office",
                                               code=code, expires=datetime.now(UTC)))
    assert last_code(settings, "keeper", "b1") == "111111"
    assert last_code(settings, "keeper", "b10") == "101010"
    assert last_code(settings, "keeper", "b2") == "222222"
    assert last_code(settings, "keeper", "b3") is None
