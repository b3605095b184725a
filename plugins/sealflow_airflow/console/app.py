"""The console's FastAPI app (mounted by Airflow's api-server at ``/sealflow``): pages and JSON API.

Every route depends on ``roles.requires``, which first runs Airflow's own ``get_user`` (401 without a
valid token or UI session cookie) and then checks the person's SealFlow roles (403). There is no
static route: the stylesheet is inlined into each page, so no endpoint escapes the check.

Decisions:
- The database and key store are reached through the composition root
  (``sealflow_airflow.root``), so the console sees exactly what the DAGs write.
- 验章 upload verifies in memory and stores nothing; uploads are capped at the verifier's own limit.
- Archive verification downloads the package into a private temporary folder and runs the same offline
  check as ``sealflow archive verify``; the folder is removed afterwards.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy import func, select

from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.metrics import render_metrics
from sealflow_airflow.console.roles import ARCHIVE, BATCHES, HEALTH, METRICS, ConsoleUser, requires

DAG_ID = "stamp_batch"


def _sessions():
    from sealflow_airflow import root

    return root.sessions()


def _settings():
    from sealflow_airflow import root

    return root.settings()


BatchesUser = Annotated[ConsoleUser, Depends(requires(BATCHES, _sessions))]
ArchiveUser = Annotated[ConsoleUser, Depends(requires(ARCHIVE, _sessions))]
HealthUser = Annotated[ConsoleUser, Depends(requires(HEALTH, _sessions))]
MetricsUser = Annotated[ConsoleUser, Depends(requires(METRICS, _sessions))]
AnyUser = Annotated[ConsoleUser, Depends(requires(None, _sessions))]

# No /docs or /redoc (Swagger UI loads its assets from a CDN, and they would be unprotected routes);
# the OpenAPI document itself is served below behind the login.
app = FastAPI(title="SealFlow 控制台 console", docs_url=None, redoc_url=None, openapi_url=None,
              description="批次、档案、验章与运行状况 — batches, archive, 验章 (seal verification) and health. "
                          "Authenticate as for Airflow's REST API (Bearer JWT from POST /auth/token).")


def _html(title_zh: str, title_en: str, body: str, user: ConsoleUser) -> HTMLResponse:
    return HTMLResponse(pages.layout(title_zh, title_en, body, user.name))


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


# ---- batches -----------------------------------------------------------------------------------------

@app.get("/api/batches", summary="批次列表 Batches with their steps' counts")
def api_batches(user: BatchesUser) -> list[dict[str, Any]]:
    with _sessions()() as session:
        return queries.batches(session)


@app.get("/batches", response_class=HTMLResponse, include_in_schema=False)
def batches_page(user: BatchesUser) -> HTMLResponse:
    with _sessions()() as session:
        rows = queries.batches(session)
    body = pages.batches_page(rows, _run_links([r["batch_id"] for r in rows]))
    # Live while batches run: the page reloads itself every 15 s (no script needed).
    return HTMLResponse(pages.layout("批次", "Batches", body, user.name, refresh=15))


def _detail(batch_id: str) -> dict[str, Any]:
    with _sessions()() as session:
        detail = queries.batch_detail(session, batch_id)
    if detail is None:
        raise HTTPException(404, detail=f"没有批次 {batch_id} (no such batch; see {pages.URL_PREFIX}/batches)")
    return detail


@app.get("/api/batches/{batch_id}", summary="批次详情 One batch: documents (problems first), 验章, 档号, receipts")
def api_batch(batch_id: str, user: BatchesUser) -> dict[str, Any]:
    return _detail(batch_id)


@app.get("/batches/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
def batch_page(batch_id: str, user: BatchesUser) -> HTMLResponse:
    detail = _detail(batch_id)
    return _html(f"批次 {batch_id}", "Batch detail", pages.batch_detail_page(detail), user)


@app.get("/batches/{batch_id}/bad-rows.csv", summary="隔离行 CSV The batch's quarantined and failed rows")
def bad_rows_csv(batch_id: str, user: BatchesUser) -> Response:
    from sealflow_airflow.console.reasons import chinese

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


# ---- archive -----------------------------------------------------------------------------------------

@app.get("/api/archive", summary="档案检索 Search archive records by 证照编号, 证照标识, holder, 档号, date")
def api_archive(user: ArchiveUser, q: str = "", day: str = "") -> list[dict[str, Any]]:
    return _search(q, day)


def _search(q: str, day: str) -> list[dict[str, Any]]:
    if day:
        try:
            datetime.fromisoformat(day)
        except ValueError:
            raise HTTPException(422, detail=f"日期 {day!r} 格式不对，请写成 YYYY-MM-DD") from None
    with _sessions()() as session:
        return queries.search_archive(session, q.strip(), day)


@app.get("/archive", response_class=HTMLResponse, include_in_schema=False)
def archive_page(user: ArchiveUser, q: str = "", day: str = "") -> HTMLResponse:
    return _html("档案", "Archive", pages.archive_page(q, day, _search(q, day), None), user)


def verify_archived(archival_code: str) -> dict[str, Any]:
    """Download one package and run the offline package verification on it (as ``sealflow archive verify``)."""
    from archive.models import ArchiveRecord
    from archive.offline import verify_package
    from archive.package import PackageError
    from archive.retrieve import download_package
    from archive.store import ObjectStore
    from sealflow_airflow import root

    settings = _settings()
    with _sessions()() as session:
        row = session.scalar(select(ArchiveRecord).where(ArchiveRecord.archival_code == archival_code))
        if row is None:
            raise HTTPException(404, detail=f"没有档号 {archival_code} (no such archival code)")
        session.expunge(row)
    with tempfile.TemporaryDirectory(prefix="sealflow-console-") as tmp:
        try:
            folder = download_package(ObjectStore(settings), row, Path(tmp))
        except PackageError as exc:
            return {"archival_code": archival_code, "ok": False, "problems": [{"file": exc.args[0] if exc.args else "",
                                                                                "reason": str(exc)}]}
        result = verify_package(folder, root.trust()).to_json()
    result["archival_code"] = result.get("archival_code") or archival_code
    result.pop("folder", None)
    return result


@app.post("/api/archive/{archival_code}/verify", summary="档案包校验 Verify an archived package on the server")
def api_verify_archived(archival_code: str, user: ArchiveUser) -> dict[str, Any]:
    return verify_archived(archival_code)


@app.post("/archive/{archival_code}/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_archived_page(archival_code: str, user: ArchiveUser) -> HTMLResponse:
    result = verify_archived(archival_code)
    return _html("档案", "Archive", pages.archive_page(archival_code, "", _search(archival_code, ""), result), user)


# ---- 验章 upload -------------------------------------------------------------------------------------

async def _verify_upload(upload: UploadFile) -> dict[str, Any]:
    from sealflow_airflow import root
    from stamping.verify.dispatch import MAX_FILE_BYTES, verify_bytes

    data = await upload.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(413, detail=f"{upload.filename}: 文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    name = Path(upload.filename or "upload").name
    return verify_bytes(data, name, root.trust(), root.seals().status_lookup).to_json()


@app.post("/api/verify", summary="验章 Verify an uploaded OFD or PDF",
          description="Upload one sealed OFD or PDF as multipart field `file`. The answer is the verification "
                      "result: `verdict` is `valid` (有效), `valid_with_warnings` (有效但有警告) "
                      "or `not_valid` (无效); "
                      "`signatures[].checks` lists every check with its reason. Nothing is stored.")
async def api_verify(user: AnyUser, file: Annotated[UploadFile, File(description="OFD or PDF")]) -> dict[str, Any]:
    return await _verify_upload(file)


@app.get("/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_form(user: AnyUser) -> HTMLResponse:
    return _html("验章", "Verify a sealed file", pages.verify_page(None), user)


@app.post("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_upload_page(user: AnyUser, file: Annotated[UploadFile, File()]) -> HTMLResponse:
    return _html("验章", "Verify a sealed file", pages.verify_page(await _verify_upload(file)), user)


# ---- health ------------------------------------------------------------------------------------------

def _keys() -> list[dict[str, Any]]:
    """Wrong-PIN counters and locks of the key store."""
    from sealflow_airflow.console.conditions import key_states

    return key_states(_settings().keystore_dir)


def _last_fixity() -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == "archive_fixity")
                             .order_by(DagRun.id.desc()).limit(1))
        if run is None:
            return "从未运行 never run (DAG archive_fixity)"
        return f"{run.run_id}: {run.state} ({run.end_date or run.start_date or ''})"


def _audit() -> str:
    from stamping.audit.models import AuditCheckpoint, AuditEntry

    with _sessions()() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        last = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    if last is None:
        return f"{entries} 条审计记录，尚无检查点 ({entries} entries, no checkpoint yet)"
    return f"{entries} 条审计记录，最近检查点 #{last.seq} {last.at.isoformat(timespec='seconds')} (key {last.key_id})"


def health() -> dict[str, Any]:
    from sealflow_airflow.console.conditions import conditions

    keys = _keys()
    with _sessions()() as session:
        data = {"outbox": queries.outbox(session), "seals_expiring": queries.seals_expiring(session),
                "archive": queries.archive_totals(session),
                "alerts": [{"key": c.key, "subject": c.subject, "body": c.body} for c in conditions(session, keys)]}
    return {**data, "keys": keys, "fixity": _last_fixity(), "audit": _audit(),
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


@app.get("/api/health", summary="运行状况 Filing backlog, dead letters, expiring seals, key locks, fixity, audit")
def api_health(user: HealthUser) -> dict[str, Any]:
    return health()


@app.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(user: HealthUser) -> HTMLResponse:
    return _html("运行状况", "Health", pages.health_page(health()), user)


# ---- metrics -----------------------------------------------------------------------------------------

@app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
def metrics(user: MetricsUser) -> PlainTextResponse:
    with _sessions()() as session:
        text = render_metrics(session, _keys())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@app.get("/openapi.json", include_in_schema=False)
def openapi(user: AnyUser) -> dict[str, Any]:
    """The console's OpenAPI document (the 验章 API for connected systems), for logged-in users only."""
    return app.openapi()


@app.get("/", include_in_schema=False)
def home(user: AnyUser) -> Response:
    return Response(status_code=307, headers={"Location": f"{pages.URL_PREFIX}/batches"})
