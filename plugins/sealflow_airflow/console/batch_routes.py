"""The batches area of the console: the list of batches with their steps' counts (live while they run), one
batch's documents (problems first, with 验章, 档号 and filing receipts), and its bad rows as CSV.

Decisions:
- Each batch links to its Airflow run (run id ``batch__ID``, or a run whose conf names the batch), so the
  office goes from a problem to the task log in one click.
- The CSV of bad rows carries the Chinese reason and the technical one side by side, with a BOM, because
  the office opens it in a spreadsheet that guesses the encoding.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from sealflow_airflow import root
from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.dependencies import DAG_ID, BatchesUser, html_page

router = APIRouter()


def _run_links(batch_ids: list[str]) -> dict[str, str]:
    """Links to the Airflow run of each batch (run id ``batch__ID`` or a run whose conf names the batch)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    wanted, links = set(batch_ids), {}
    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc()).limit(500))
        for run in runs:
            conf = run.conf or {}
            batch_id = conf.get("batch_id") or run.run_id.removeprefix("batch__")
            if batch_id in wanted and batch_id not in links:
                links[batch_id] = f"/dags/{DAG_ID}/runs/{run.run_id}"
    return links


@router.get("/api/batches", summary="批次列表 Batches with their steps' counts")
def api_batches(user: BatchesUser) -> list[dict[str, Any]]:
    with root.sessions()() as session:
        return queries.batches(session)


@router.get("/batches", response_class=HTMLResponse, include_in_schema=False)
def batches_page(user: BatchesUser) -> HTMLResponse:
    with root.sessions()() as session:
        rows = queries.batches(session)
    body = pages.batches_page(rows, _run_links([r["batch_id"] for r in rows]))
    # Live while batches run: the page reloads itself every 15 s (no script needed).
    return HTMLResponse(pages.layout("批次", "Batches", body, user.name, refresh=15))


def _detail(batch_id: str) -> dict[str, Any]:
    with root.sessions()() as session:
        detail = queries.batch_detail(session, batch_id)
    if detail is None:
        raise HTTPException(404, detail=f"没有批次 {batch_id} (no such batch; see {pages.URL_PREFIX}/batches)")
    return detail


@router.get("/api/batches/{batch_id}", summary="批次详情 One batch: documents (problems first), 验章, 档号, receipts")
def api_batch(batch_id: str, user: BatchesUser) -> dict[str, Any]:
    return _detail(batch_id)


@router.get("/batches/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
def batch_page(batch_id: str, user: BatchesUser) -> HTMLResponse:
    detail = _detail(batch_id)
    return html_page(f"批次 {batch_id}", "Batch detail", pages.batch_detail_page(detail), user)


@router.get("/batches/{batch_id}/bad-rows.csv", summary="隔离行 CSV The batch's quarantined and failed rows")
def bad_rows_csv(batch_id: str, user: BatchesUser) -> Response:
    from stamping.reasons import chinese

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["行 row", "文件 file", "证照编号 licence_number", "持证主体 holder", "状态 state",
                     "原因 reason", "technical reason"])
    for d in _detail(batch_id)["documents"]:
        if d["state"] in queries.FAILED_STATES:
            for reason in d["reasons"] or [""]:
                writer.writerow([d["row"], d["file"], d["licence_number"], d["holder"], d["state"],
                                 chinese(reason) if reason else "", reason])
    # BOM: the office opens it in a spreadsheet that otherwise guesses the wrong encoding for Chinese.
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{batch_id}-bad-rows.csv"'})
