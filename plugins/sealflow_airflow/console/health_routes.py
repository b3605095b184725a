"""The health area of the console: the filing backlog and dead letters, expiring seals, key locks, the last
fixity pass, the audit log's checkpoint, the last backup and the alerts holding now — and the Prometheus
metrics.

Decisions:
- A dead letter retried from the health page is made due again in the outbox (``filing.dispatcher.retry``,
  audited: who, which record) and a ``file_records`` run is requested, so the dispatcher sends it — the
  console never talks to the platform itself. When Airflow cannot start the run, the schedule sends it.
- The alerts shown are the ones ``sealflow_airflow.alerts`` mails (``console.conditions``), computed from
  the same facts, so the page and the mail never disagree.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse
from sqlalchemy import func, select

from sealflow_airflow import root
from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.conditions import FIXITY_ZH, backup_state, conditions, key_states
from sealflow_airflow.console.dependencies import FILING_DAG_ID, HealthUser, MetricsUser, RetryUser, html_page
from sealflow_airflow.console.metrics import render_metrics
from sealflow_airflow.console.roles import RETRY

log = logging.getLogger(__name__)
router = APIRouter()


def _keys() -> list[dict[str, Any]]:
    """Wrong-PIN counters and locks of the key store."""
    return key_states(root.settings().keystore_dir)


def _last_fixity() -> str:
    """The last fixity pass as recorded by the archive (time, records checked, problems by kind);
    before any pass has recorded itself, the state of the archive_fixity DAG's last run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with root.sessions()() as session:
        fixity = queries.last_fixity(session)
    if fixity is not None:
        found = "，".join(f"{FIXITY_ZH.get(k, k)} {n}" for k, n in sorted(fixity.problem_counts.items()))
        outcome = (f"发现问题 {found}（报告 {fixity.report_key}） problems found" if not fixity.ok
                   else "没有问题 no problem")
        return f"{fixity.checked_at.isoformat(timespec='seconds')}：检查 {fixity.records_checked} 件，{outcome}"
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == "archive_fixity")
                             .order_by(DagRun.id.desc()).limit(1))
        if run is None:
            return "从未运行 never run (DAG archive_fixity)"
        return f"{run.run_id}: {run.state} ({run.end_date or run.start_date or ''})"


def _audit_summary() -> str:
    from stamping.audit.models import AuditCheckpoint, AuditEntry

    with root.sessions()() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        last = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    if last is None:
        return f"{entries} 条审计记录，尚无检查点 ({entries} entries, no checkpoint yet)"
    return f"{entries} 条审计记录，最近检查点 #{last.seq} {last.at.isoformat(timespec='seconds')} (key {last.key_id})"


def health() -> dict[str, Any]:
    keys = _keys()
    backup = backup_state(root.settings())  # one listing and one manifest read at the backup target
    with root.sessions()() as session:
        holding = conditions(session, keys, backup=backup)
        data = {"outbox": queries.outbox(session), "seals_expiring": queries.seals_expiring(session),
                "archive": queries.archive_totals(session),
                "alerts": [{"key": c.key, "subject": c.subject, "body": c.body} for c in holding]}
    return {**data, "keys": keys, "fixity": _last_fixity(), "audit": _audit_summary(), "backup": backup,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


@router.get("/api/health", summary="运行状况 Filing backlog, dead letters, expiring seals, key locks, fixity, audit, "
                                "last backup")
def api_health(user: HealthUser) -> dict[str, Any]:
    return health()


@router.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(user: HealthUser) -> HTMLResponse:
    return html_page("运行状况", "Health", pages.health_page(health(), can_retry=bool(user.roles & RETRY)), user)


def retry_dead_letter(record_id: str, user: str) -> dict[str, Any]:
    """Make one dead-lettered filing record due again (audited: who, which record) and ask Airflow for a
    ``file_records`` run, whose outbox dispatcher sends it."""
    from filing.dispatcher import retry
    from kernel.db import transaction
    from sealflow_airflow import pipeline

    with transaction(root.sessions()) as session:
        row = queries.dead_letter(session, record_id)
        if row is None:
            raise HTTPException(404, detail=f"没有这条死信 {record_id} (no dead-lettered filing record with this id; "
                                            f"it may have been retried already: see {pages.URL_PREFIX}/health)")
        payload = {"record_id": record_id, "kind": row.kind, "subject": row.subject, "attempts": row.attempts,
                   "last_error": (row.last_error or "")[:500]}
        retry(session, [record_id])
        pipeline.seals().registry.audit.append(session, actor=user, action="filing.retry",
                                               reason=f"dead letter {record_id} made due again from the console",
                                               payload=payload)
    run_id, note = _request_filing_run(user)
    return {"record_id": record_id, "state": "pending", "file_records_run": run_id, "note": note}


def _request_filing_run(user: str) -> tuple[str, str]:
    """A ``file_records`` run now; when Airflow cannot start one, the schedule (every 15 min) sends it."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(FILING_DAG_ID, triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name=user)
    except Exception as exc:  # the retry is committed either way: say why no run was started
        reason = (str(exc).splitlines() or [""])[0][:200]
        log.warning("file_records run not triggered after a console retry: %s: %s", type(exc).__name__, reason)
        return "", f"file_records 未能立即启动 ({type(exc).__name__}: {reason}); 按计划发送 sent on its schedule"
    return (run.run_id if run else ""), ""


@router.post("/api/dead-letters/{record_id}/retry", summary="死信重试 Retry a dead-lettered filing record (operator)")
def api_retry(record_id: str, user: RetryUser) -> dict[str, Any]:
    return retry_dead_letter(record_id, user.name)


@router.post("/health/dead-letters/{record_id}/retry", response_class=HTMLResponse, include_in_schema=False)
def retry_page(record_id: str, user: RetryUser) -> HTMLResponse:
    done = retry_dead_letter(record_id, user.name)
    return html_page("运行状况", "Health", pages.health_page(health(), retried=done, can_retry=True), user)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
def metrics(user: MetricsUser) -> PlainTextResponse:
    with root.sessions()() as session:
        text = render_metrics(session, _keys())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
