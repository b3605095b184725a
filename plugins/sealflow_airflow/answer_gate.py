"""The answer gate of 用章审批: SealFlow checks the keeper's answer in the API server, when it is given.

An ASGI middleware in Airflow's API server (registered by ``plugins/sealflow_plugin.py``) that sees every
``PATCH …/dags/stamp_batch/dagRuns/{run}/taskInstances/seal_use_approval/…/hitlDetails`` — the UI form,
the REST API and ``sealflow batch approve`` all go through it. Decisions behind it:

- **The decision is taken here, with the user Airflow authenticated** (the bearer token or the UI's
  cookie, resolved by Airflow's own auth manager), and recorded in SealFlow's database before Airflow
  resumes the task. The task then only reads it. So an answer is never lost, whatever Airflow does with
  the resumed task. No answer path needs to wait: the race in which Airflow 3.3.2 failed a task
  answered the moment it parked is closed by the stack's executor (``sealflow_airflow.executor``);
  if a task still failed, its retry finds the decision of its run and goes on.
- **A wrong code, or an answer by someone other than the keeper, never reaches Airflow**: the caller gets
  400/403 with the reason (and the tries left); the task stays parked, so the keeper just types again.
  Nothing depends on how fast anybody answers.
- **A refusal may carry the keeper's reason** (``params_input.reason``, as the console's inbox sends it):
  SealFlow keeps it with the decision; it is removed before Airflow sees the answer.
- **The code never reaches Airflow's database**: a final answer is passed on with the code blanked, so the
  used code is not visible in the approval panel (the check is done, the MAC already wiped).
- Requests the gate cannot attribute (no SealFlow approval for that run) pass through unchanged: the
  operator then checks the answer itself on resume (same rules, same counter).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

log = logging.getLogger(__name__)

DAG_ID = "stamp_batch"
TASK_ID = "seal_use_approval"
# Not anchored at the start: behind a base path (``[api] base_url`` with a prefix) the path carries it.
_PATH = re.compile(r"/api/v2/dags/(?P<dag>[^/]+)/dagRuns/(?P<run>[^/]+)/taskInstances/(?P<task>[^/]+)"
                   r"(?:/(?P<map>-?\d+))?/hitlDetails/?$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _desk() -> Any:
    """Settings, sessions and seal desk of the API server process: the composition root's."""
    from sealflow_airflow import root

    return root.settings(), root.sessions(), root.seals()


def judge(run_id: str, approve: bool, code: str, responder: str, refusal: str = "") -> Any | None:
    """Decide one answer for the approval of ``run_id``; None when SealFlow holds no such approval."""
    from sqlalchemy import select

    from kernel.db import transaction
    from stamping.batch import approval
    from stamping.batch.models import Batch

    settings, sessions, desk = _desk()
    with transaction(sessions) as session:
        batch = session.scalar(select(Batch).where(Batch.run_id == run_id))
        if batch is None or approval.current(session, batch.batch_id) is None:
            return None
        decision = approval.decide(session, batch_id=batch.batch_id, run_id=run_id, approve=approve, code=code,
                                   responder=responder, refusal=refusal,
                                   mac_key=approval.load_mac_key(settings.resolved_approval_mac_key_file))
        desk.audit_decision(session, decision, run_id=run_id)
        if decision.final:
            batch.status = "approved" if decision.approved else "refused"
    return decision


async def _responder(scope: Scope) -> str | None:
    from airflow.api_fastapi.core_api.security import resolve_user_from_token
    from starlette.requests import Request

    request = Request(scope)
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    if token is None:
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    if not token:
        return None
    try:
        user = await resolve_user_from_token(token)
    except Exception:  # an invalid token: Airflow answers 401/403 itself
        return None
    user_id = user.get_id()
    return str(user_id) if user_id is not None else None


class AnswerGate:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.search(scope.get("path", "")) if scope.get("type") == "http" else None
        if match is None or scope.get("method") != "PATCH" or unquote(match["dag"]) != DAG_ID \
                or unquote(match["task"]) != TASK_ID:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        try:
            answer = json.loads(body or b"{}")
            options = answer.get("chosen_options") or []
            params = answer.get("params_input") or {}
        except (ValueError, AttributeError):
            await self.app(scope, _replay(body), send)  # Airflow answers the malformed request itself
            return
        responder = await _responder(scope)
        if responder is None:
            await self.app(scope, _replay(body), send)  # unauthenticated: Airflow answers 401
            return
        from starlette.concurrency import run_in_threadpool

        decision = await run_in_threadpool(judge, unquote(match["run"]), options == ["Approve"],
                                           str(params.get("code", "")), responder, str(params.get("reason", "")))
        if decision is None:
            await self.app(scope, _replay(body), send)
            return
        if not decision.final:
            status = 400 if decision.outcome == "wrong_code" else 403
            await _reply(send, status, {"detail": decision.reason, "outcome": decision.outcome})
            return
        params["code"] = ""  # checked and burnt: Airflow never stores it
        # The refusal's reason is SealFlow's (kept with the decision); Airflow's HITL checks that the answer
        # holds exactly the form's params, so it is not passed on.
        params.pop("reason", None)
        answer["params_input"] = params
        new_body = json.dumps(answer).encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(new_body)).encode()))
        await self.app({**scope, "headers": headers}, _replay(new_body), send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _reply(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
