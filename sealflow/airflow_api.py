"""A small client of Airflow's REST API v2: what records offices and seal keepers use from scripts
and the CLI — trigger a batch, list the approvals waiting for a keeper, answer one, follow a run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowApiError(RuntimeError):
    def __init__(self, message: str, *, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail or message


def _detail(response: httpx.Response) -> str:
    """The server's own reason (FastAPI's ``detail``), for one-line messages."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:300]
    return detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)[:300]


ANSWER_TRIES = 3
READ_TRIES = 3


@dataclass(frozen=True)
class PendingApproval:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    subject: str
    options: list[str]
    created_at: str = ""  # when the task asked (ISO); answers wait until it has settled


class AirflowApi:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)
        response = self._client.post("/auth/token", json={"username": username, "password": password})
        if response.status_code not in (200, 201):
            raise AirflowApiError(f"login to {self.base_url} as {username} refused ({response.status_code})")
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text[:500]}",
                                  status=response.status_code, detail=_detail(response))
        return response.json() if response.content else None

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; a read that timed out is sent again (a loaded API server may stall for a while)."""
        tries = 1
        while True:
            try:
                return self._client.request(method, url, **kwargs)
            except httpx.TimeoutException:
                if method != "GET" or tries == READ_TRIES:
                    raise
                tries += 1

    def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v2{path}`` with query ``params``: the JSON answer (raises on an error status)."""
        return self._call("GET", path, params=params)

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> str:
        """Start a run; with a ``run_id`` it is sent again after a server error (SQLite under a busy
        scheduler answers 500 "Database error" now and then), and a 409 on a later try means an earlier
        try created the run. Without one a retry could start a second run, so none is made."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if not run_id:
            return self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
        body["dag_run_id"] = run_id
        created = self._send_again_on_server_error("POST", f"/dags/{dag_id}/dagRuns", body, landed_if_conflict=True)
        return created["dag_run_id"] if created else run_id

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` (right after the stack starts; on a loaded
        machine its first pass over the DAG files takes minutes)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._request("GET", f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                return
            if time.monotonic() > deadline:
                raise AirflowApiError(f"DAG {dag_id} not known to Airflow after {timeout:.0f}s "
                                      f"({response.status_code}); check the dag-processor log")
            time.sleep(1)

    def unpause(self, dag_id: str) -> None:
        """Idempotent, so sent again when the API server's own database is busy (SQLite under a busy
        scheduler answers 500 "Database error" now and then)."""
        self._send_again_on_server_error("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def runs(self, dag_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The DAG's newest runs first."""
        data = self._call("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": limit})
        return data.get("dag_runs", [])

    def wait_for_new_run(self, dag_id: str, after: str, timeout: float = 600) -> dict[str, Any]:
        """Wait for a run of ``dag_id`` queued after the ISO time ``after`` to finish; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in self.runs(dag_id):
                if (run.get("queued_at") or run.get("run_after") or "") > after and run["state"] in TERMINAL_RUN_STATES:
                    return run
            time.sleep(1)
        raise AirflowApiError(f"no finished run of {dag_id} after {after} within {timeout:.0f}s")

    def pending_approvals(self, dag_id: str = "~", run_id: str = "~") -> list[PendingApproval]:
        data = self._call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/hitlDetails",
                          params={"response_received": False})
        out = []
        for item in data.get("hitl_details", []):
            ti = item.get("task_instance", {})
            # The request row exists a moment before the task parks; an answer sent in between would be
            # stored but not resume the task, so only parked tasks count as waiting for the keeper.
            if item.get("response_received") or ti.get("state") not in ("awaiting_input", "deferred"):
                continue
            out.append(PendingApproval(ti.get("dag_id", dag_id), ti.get("dag_run_id", run_id), ti.get("task_id", ""),
                                       ti.get("map_index", -1), item.get("subject", ""), item.get("options", []),
                                       item.get("created_at") or ""))
        return out

    def answer(self, approval: PendingApproval, option: str, params_input: dict[str, Any]) -> None:
        """Answer a HITL request. No waiting for Airflow to settle: SealFlow's answer gate decides 用章审批
        answers as they arrive and the stack's executor keeps a task resumed right after parking alive
        (``plugins/sealflow_airflow/executor.py``); a refused answer raises with its reason.

        A server error (Airflow's SQLite busy under load answers 500) is retried: the gate has recorded
        the decision, so the same answer again resumes the task with it; a 409 on a retry means the
        earlier try did land."""
        path = (f"/dags/{approval.dag_id}/dagRuns/{approval.run_id}/taskInstances/{approval.task_id}/"
                f"{approval.map_index}/hitlDetails")
        self._send_again_on_server_error("PATCH", path, {"chosen_options": [option], "params_input": params_input},
                                         landed_if_conflict=True)

    def _send_again_on_server_error(self, method: str, path: str, body: dict[str, Any],
                                    landed_if_conflict: bool = False) -> Any:
        """An idempotent request, sent again after a server error; its JSON answer (``landed_if_conflict``:
        a 409 on a later try means an earlier one landed, and None is returned)."""
        for attempt in range(1, ANSWER_TRIES + 1):
            try:
                return self._call(method, path, json=body)
            except AirflowApiError as error:
                if landed_if_conflict and attempt > 1 and error.status == 409:
                    return None
                if error.status < 500 or attempt == ANSWER_TRIES:
                    raise
            time.sleep(attempt)  # let the database's writer finish
        raise AssertionError("unreachable: the last try returns or raises")

    def wait_for_approval(self, dag_id: str, run_id: str, timeout: float = 300) -> PendingApproval:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending_approvals(dag_id, run_id)
            if pending:
                return pending[0]
            if run_id != "~" and (state := self.run_state(dag_id, run_id)) in TERMINAL_RUN_STATES:
                raise AirflowApiError(f"run {run_id} ended ({state}) without asking for approval")
            time.sleep(1)
        raise AirflowApiError(f"no approval request for run {run_id} within {timeout:.0f}s")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 1800) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_RUN_STATES:
                return state
            time.sleep(1)
        raise AirflowApiError(f"run {run_id} did not finish within {timeout:.0f}s")
