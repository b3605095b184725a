"""The keeper's inbox (待我审批) in the console: the logged-in keeper's pending seal-use approvals, each with
the seal's picture, the time left and an answer box.

Decisions:
- The keeper answers from this page by the same request as Airflow's own HITL form (``PATCH …/hitlDetails``
  from the browser, with the UI's session), so SealFlow's answer gate checks it exactly as any other
  answer: the keeper's identity, the tries left, a wrong code keeps the task parked.
- The page never holds the code: the keeper types what the SMS said.
- An approval offers an answer box only while its task is parked waiting (Airflow's task table says so).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from sealflow_airflow import root
from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.dependencies import APPROVAL_TASK, DAG_ID, InboxUser, html_page
from sealflow_airflow.console.roles import ConsoleUser

router = APIRouter()


def _parked(run_ids: set[str]) -> dict[str, int]:
    """Runs whose approval task is parked waiting for an answer (the HITL form can be answered): map index."""
    if not run_ids:
        return {}
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        rows = session.execute(select(TaskInstance.run_id, TaskInstance.map_index).where(
            TaskInstance.dag_id == DAG_ID, TaskInstance.task_id == APPROVAL_TASK, TaskInstance.run_id.in_(run_ids),
            TaskInstance.state.in_((TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED))))
        return {run_id: map_index for run_id, map_index in rows}


def hitl_path(run_id: str, map_index: int) -> str:
    """Airflow's own answer endpoint of the approval (the path the answer gate watches)."""
    return (f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{APPROVAL_TASK}/"
            f"{map_index}/hitlDetails")


def _inbox(user: ConsoleUser) -> list[dict[str, Any]]:
    with root.sessions()() as session:
        items = queries.inbox(session, user.name)
    parked = _parked({i["run_id"] for i in items})
    for item in items:
        item["waiting"] = item["run_id"] in parked
        item["answer_path"] = hitl_path(item["run_id"], parked[item["run_id"]]) if item["waiting"] else ""
    return items


def _api_base(request: Request) -> str:
    """Airflow's root as the browser sees it: the console is mounted under it at /sealflow."""
    mounted = request.scope.get("root_path", "")
    return mounted[: -len(pages.URL_PREFIX)] if mounted.endswith(pages.URL_PREFIX) else mounted


@router.get("/api/inbox", summary="待我审批 The logged-in keeper's pending seal-use approvals (never the code)")
def api_inbox(user: InboxUser) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "picture"} for item in _inbox(user)]


@router.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
def inbox_page(request: Request, user: InboxUser) -> HTMLResponse:
    return html_page("待我审批", "Keeper's inbox", pages.inbox_page(_inbox(user), _api_base(request)), user)
