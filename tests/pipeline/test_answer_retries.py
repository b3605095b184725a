"""The keeper's answer (and a batch's trigger) against an API server that fails under load (Airflow's
SQLite answering 500 "database is locked"): the client sends the same answer again — safe, because the answer gate has
recorded the decision and maps a repeated answer to it — and a 409 after a failed try means that
try did land. A real HTTP server plays Airflow's API with scripted statuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kernel.settings import local_url
from sealflow.airflow_api import AirflowApi, AirflowApiError, PendingApproval

APPROVAL = PendingApproval("stamp_batch", "batch__b1", "seal_use_approval", -1, "用章审批", ["Approve", "Reject"])


class ScriptedAirflow(ThreadingHTTPServer):
    """Answers /auth/token, then each PATCH with the next scripted status; records the PATCH bodies."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = statuses
        self.patches: list[dict] = []
        self.triggers: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedAirflow

    def log_message(self, *args: object) -> None:  # quiet test output
        pass

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/auth/token":
            self._reply(201, {"access_token": "token"})
            return
        self.server.triggers.append(json.loads(body))  # POST /api/v2/dags/<id>/dagRuns
        status = self.server.statuses.pop(0)
        created = {"dag_run_id": self.server.triggers[-1].get("dag_run_id", "manual__1")}
        self._reply(status, {"detail": "database is locked"} if status >= 500 else
                    {"detail": "run exists"} if status == 409 else created)

    def do_PATCH(self) -> None:
        self.server.patches.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        status = self.server.statuses.pop(0)
        self._reply(status, {"detail": "database is locked" if status >= 500 else "answered"})


@pytest.fixture
def airflow() -> Iterator:
    servers: list[ScriptedAirflow] = []

    def start(statuses: list[int]) -> tuple[ScriptedAirflow, AirflowApi]:
        server = ScriptedAirflow(statuses)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, AirflowApi(local_url(server.server_address[1]), "keeper", "pw")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_answer_that_met_a_server_error_is_sent_again_until_it_lands(airflow) -> None:
    server, api = airflow([500, 200])
    api.answer(APPROVAL, "Approve", {"code": "123456"})
    assert len(server.patches) == 2 and server.patches[0] == server.patches[1]
    assert server.patches[1] == {"chosen_options": ["Approve"], "params_input": {"code": "123456"}}


def test_a_conflict_after_a_server_error_means_the_earlier_try_landed(airflow) -> None:
    server, api = airflow([502, 409])
    api.answer(APPROVAL, "Reject", {"code": ""})
    assert len(server.patches) == 2


def test_a_refused_answer_is_not_sent_again_and_a_first_conflict_is_an_error(airflow) -> None:
    server, api = airflow([400])
    with pytest.raises(AirflowApiError) as refused:
        api.answer(APPROVAL, "Approve", {"code": "000000"})
    assert refused.value.status == 400 and len(server.patches) == 1
    server, api = airflow([409])
    with pytest.raises(AirflowApiError) as answered_before:
        api.answer(APPROVAL, "Approve", {"code": "123456"})
    assert answered_before.value.status == 409 and len(server.patches) == 1


def test_a_server_that_keeps_failing_ends_in_an_error_after_three_tries(airflow) -> None:
    server, api = airflow([500, 500, 500])
    with pytest.raises(AirflowApiError) as failed:
        api.answer(APPROVAL, "Approve", {"code": "123456"})
    assert failed.value.status == 500 and len(server.patches) == 3


def test_a_trigger_with_a_run_id_that_met_a_server_error_is_sent_again_and_a_conflict_means_it_landed(
        airflow) -> None:
    server, api = airflow([500, 409])
    assert api.trigger("stamp_batch", {"batch_id": "b1"}, run_id="batch__b1") == "batch__b1"
    assert len(server.triggers) == 2 and server.triggers[0] == server.triggers[1]


def test_a_conflict_on_the_first_trigger_is_a_batch_submitted_before(airflow) -> None:
    server, api = airflow([409])
    with pytest.raises(AirflowApiError) as raised:
        api.trigger("stamp_batch", {"batch_id": "b1"}, run_id="batch__b1")
    assert raised.value.status == 409 and len(server.triggers) == 1


def test_a_trigger_without_a_run_id_is_never_sent_twice(airflow) -> None:
    server, api = airflow([500, 200])
    with pytest.raises(AirflowApiError):
        api.trigger("stamp_batch", {"batch_id": "b1"})
    assert len(server.triggers) == 1  # a second try could have started a second run
