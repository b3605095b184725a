"""The console's FastAPI app (mounted by Airflow's api-server at ``/sealflow``): pages and JSON API.

Every route depends on ``roles.requires``, which first runs Airflow's own ``get_user`` (401 without a
valid token or UI session cookie) and then checks the person's SealFlow roles (403). There is no
static route: the stylesheet is inlined into each page, so no endpoint escapes the check.

Decisions:
- The database and key store are reached through the composition root
  (``sealflow_airflow.root``), so the console sees exactly what the DAGs write.
- 验章 upload verifies in memory and stores nothing; uploads are capped at the verifier's own limit.
- Archive verification downloads the package into a private temporary folder and runs the same offline
  check as ``sealflow archive verify``; the folder is removed afterwards. Share links, EEP export and
  the page preview use the archive's own functions (``share_package``, ``write_eep`` signed through
  ``archive_signer`` → ``service_signer``: no PIN is ever asked) and are audited with who and which record.
- The keeper answers 用章审批 from the inbox page by the same request as Airflow's own HITL form
  (``PATCH …/hitlDetails`` from the browser, with the UI's session), so SealFlow's answer gate checks it
  exactly as any other answer: the keeper's identity, the tries left, a wrong code keeps the task parked.
  The page never holds the code: the keeper types what the SMS said.
- A dead letter retried from the health page is made due again in the outbox (``filing.dispatcher.retry``)
  and a ``file_records`` run is requested, so the dispatcher sends it — the console never talks to the
  platform itself.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from sqlalchemy import func, select
from starlette.background import BackgroundTask

from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.metrics import render_metrics
from sealflow_airflow.console.roles import (
    ARCHIVE,
    BATCHES,
    HEALTH,
    INBOX,
    METRICS,
    RETRY,
    ConsoleUser,
    requires,
)

log = logging.getLogger(__name__)

DAG_ID = "stamp_batch"
APPROVAL_TASK = "seal_use_approval"
FILING_DAG_ID = "file_records"


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
InboxUser = Annotated[ConsoleUser, Depends(requires(INBOX, _sessions))]
RetryUser = Annotated[ConsoleUser, Depends(requires(RETRY, _sessions))]
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


def _record(archival_code: str):
    from archive.models import ArchiveRecord

    with _sessions()() as session:
        row = session.scalar(select(ArchiveRecord).where(ArchiveRecord.archival_code == archival_code))
        if row is None:
            raise HTTPException(404, detail=f"没有档号 {archival_code} (no such archival code; search at "
                                            f"{pages.URL_PREFIX}/archive)")
        session.expunge(row)
    return row


def _audit(actor: str, action: str, reason: str, payload: dict[str, Any]) -> None:
    """One audit entry (who did what to which record), in its own transaction."""
    from kernel.db import transaction
    from sealflow_airflow import pipeline

    with transaction(_sessions()) as session:
        pipeline.seals().registry.audit.append(session, actor=actor, action=action, reason=reason, payload=payload)


def share_link(archival_code: str, user: str) -> dict[str, Any]:
    """A presigned, version-pinned link to the verifiable tar of one package (as ``sealflow archive url``)."""
    from archive.retrieve import share_package
    from archive.store import ObjectStore

    settings = _settings()
    row = _record(archival_code)
    share = share_package(ObjectStore(settings), row, settings.archive_url_expiry)
    _audit(user, "archive.share", f"share link for {archival_code}, valid {settings.archive_url_expiry} s",
           {"archival_code": archival_code, "key": share.key, "version_id": share.version_id,
            "expires_at": share.expires_at.isoformat(timespec="seconds")})
    return {"archival_code": archival_code, "url": share.url, "key": share.key, "version_id": share.version_id,
            "expires_at": share.expires_at.isoformat(timespec="seconds"), "expires_in": settings.archive_url_expiry,
            "verify_with": "sealflow archive verify FILE.tar --trust ROOT.pem"}


def _record_html(archival_code: str, page: int, share: dict[str, Any] | None) -> str:
    """The record page with its preview inline (one download and drawing; the page count bounds the
    page links); a document that cannot be drawn shows the reason instead."""
    row = _record(archival_code)
    try:
        shown: Any = render_preview(archival_code, page)
    except HTTPException as exc:
        shown = str(exc.detail)
    return pages.record_page(_record_dict(row), page, share, shown)


@app.get("/archive/{archival_code}", response_class=HTMLResponse, include_in_schema=False)
def record_page(archival_code: str, user: ArchiveUser, page: int = 0) -> HTMLResponse:
    return _html(f"档案 {archival_code}", "Archived record", _record_html(archival_code, page, None), user)


def _record_dict(row) -> dict[str, Any]:
    return {"archival_code": row.archival_code, "licence_id": row.licence_id, "licence_number": row.licence_number,
            "holder": row.holder_name, "batch_id": row.batch_id, "archived_at": queries._iso(row.archived_at),
            "retain_until": queries._iso(row.retain_until), "retention": row.retention,
            "document_name": row.document_name, "package_size": row.package_size, "state": row.state,
            "version": row.object_version or "", "supersedes": row.supersedes or "",
            "superseded_by": row.superseded_by or "", "reissue": row.reissue, "reissue_reason": row.reissue_reason}


@app.post("/api/archive/{archival_code}/share", summary="分享链接 A version-pinned link to the package and its expiry")
def api_share(archival_code: str, user: ArchiveUser) -> dict[str, Any]:
    return share_link(archival_code, user.name)


@app.post("/archive/{archival_code}/share", response_class=HTMLResponse, include_in_schema=False)
def share_page(archival_code: str, user: ArchiveUser) -> HTMLResponse:
    share = share_link(archival_code, user.name)
    return _html(f"档案 {archival_code}", "Archived record", _record_html(archival_code, 0, share), user)


@app.get("/archive/{archival_code}/eep", summary="EEP 导出 The package as a signed DA/T 48 EEP (XML)")
def eep_export(archival_code: str, user: ArchiveUser) -> FileResponse:
    """Signed by the archiving unit's key through ``archive_signer`` (its service PIN is the installation's,
    never asked); built in a private temporary folder that is removed once the file is sent."""
    from archive.eep import write_eep
    from archive.integration import archive_signer
    from archive.package import PackageError, package_slug
    from archive.retrieve import download_package
    from archive.store import ObjectStore

    settings = _settings()
    row = _record(archival_code)
    tmp = Path(tempfile.mkdtemp(prefix="sealflow-eep-"))  # 0700
    try:
        folder = download_package(ObjectStore(settings), row, tmp / "package")
        out = write_eep(folder, tmp / f"{package_slug(archival_code)}.eep.xml", archive_signer(settings))
    except PackageError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise HTTPException(422, detail=f"{archival_code}: 无法导出 cannot export: {exc} "
                                        f"(run `sealflow archive fixity` to check the stored package)") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _audit(user.name, "archive.eep_export", f"EEP export of {archival_code}",
           {"archival_code": archival_code, "bytes": out.stat().st_size})
    return FileResponse(out, media_type="application/xml", filename=out.name,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


def render_preview(archival_code: str, page: int):
    """One page of the archived version of the document (SM3-checked against the index), judged by the
    container reader, drawn by MuPDF (PDF) or SealFlow's OFD drawer (stamping/ofd/render.py)."""
    from archive.package import PackageError
    from archive.retrieve import package_files
    from archive.store import ObjectStore
    from stamping.preview import PreviewError, preview_page

    row = _record(archival_code)
    try:
        files = package_files(ObjectStore(_settings()), row)
    except PackageError as exc:
        raise HTTPException(422, detail=f"{archival_code}: {exc}") from None
    content = sorted(name for name in files if name.startswith("content/"))
    if not content:
        raise HTTPException(422, detail=f"{archival_code}: 档案包中没有文件 the package holds no content file")
    try:
        return preview_page(files[content[0]], content[0].rsplit("/", 1)[-1], page)
    except PreviewError as exc:
        raise HTTPException(422, detail=f"无法预览 cannot show: {exc}") from None


@app.get("/archive/{archival_code}/preview.png", summary="页面预览 One page of the sealed document as PNG")
def preview(archival_code: str, user: ArchiveUser, page: int = 0) -> Response:
    rendered = render_preview(archival_code, page)
    return Response(rendered.png, media_type="image/png",
                    headers={"Cache-Control": "private, no-store", "X-Page-Count": str(rendered.page_count),
                             "X-Preview-Skipped": str(len(rendered.skipped))})


# ---- keeper's inbox ----------------------------------------------------------------------------------

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
    from urllib.parse import quote

    return (f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{APPROVAL_TASK}/"
            f"{map_index}/hitlDetails")


def _inbox(user: ConsoleUser) -> list[dict[str, Any]]:
    with _sessions()() as session:
        items = queries.inbox(session, user.name)
    parked = _parked({i["run_id"] for i in items})
    for item in items:
        item["waiting"] = item["run_id"] in parked
        item["answer_path"] = hitl_path(item["run_id"], parked[item["run_id"]]) if item["waiting"] else ""
    return items


def _api_base(request: Request) -> str:
    """Airflow's root as the browser sees it: the console is mounted under it at /sealflow."""
    root = request.scope.get("root_path", "")
    return root[: -len(pages.URL_PREFIX)] if root.endswith(pages.URL_PREFIX) else root


@app.get("/api/inbox", summary="待我审批 The logged-in keeper's pending seal-use approvals (never the code)")
def api_inbox(user: InboxUser) -> list[dict[str, Any]]:
    return [{k: v for k, v in item.items() if k != "picture"} for item in _inbox(user)]


@app.get("/inbox", response_class=HTMLResponse, include_in_schema=False)
def inbox_page(request: Request, user: InboxUser) -> HTMLResponse:
    return _html("待我审批", "Keeper's inbox", pages.inbox_page(_inbox(user), _api_base(request)), user)



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
    """The last fixity pass as recorded by the archive (time, records checked, problems by kind);
    before any pass has recorded itself, the state of the archive_fixity DAG's last run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from sealflow_airflow.console.conditions import FIXITY_ZH

    with _sessions()() as session:
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

    with _sessions()() as session:
        entries = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        last = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    if last is None:
        return f"{entries} 条审计记录，尚无检查点 ({entries} entries, no checkpoint yet)"
    return f"{entries} 条审计记录，最近检查点 #{last.seq} {last.at.isoformat(timespec='seconds')} (key {last.key_id})"


def health() -> dict[str, Any]:
    from sealflow_airflow.console.conditions import backup_state, conditions

    keys = _keys()
    backup = backup_state(_settings())  # one listing and one manifest read at the backup target
    with _sessions()() as session:
        holding = conditions(session, keys, backup=backup)
        data = {"outbox": queries.outbox(session), "seals_expiring": queries.seals_expiring(session),
                "archive": queries.archive_totals(session),
                "alerts": [{"key": c.key, "subject": c.subject, "body": c.body} for c in holding]}
    return {**data, "keys": keys, "fixity": _last_fixity(), "audit": _audit_summary(), "backup": backup,
            "at": datetime.now(UTC).isoformat(timespec="seconds")}


@app.get("/api/health", summary="运行状况 Filing backlog, dead letters, expiring seals, key locks, fixity, audit, "
                                "last backup")
def api_health(user: HealthUser) -> dict[str, Any]:
    return health()


@app.get("/health", response_class=HTMLResponse, include_in_schema=False)
def health_page(user: HealthUser) -> HTMLResponse:
    return _html("运行状况", "Health", pages.health_page(health(), can_retry=bool(user.roles & RETRY)), user)


def retry_dead_letter(record_id: str, user: str) -> dict[str, Any]:
    """Make one dead-lettered filing record due again (audited: who, which record) and ask Airflow for a
    ``file_records`` run, whose outbox dispatcher sends it."""
    from filing.dispatcher import retry
    from kernel.db import transaction
    from sealflow_airflow import pipeline

    with transaction(_sessions()) as session:
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


@app.post("/api/dead-letters/{record_id}/retry", summary="死信重试 Retry a dead-lettered filing record (operator)")
def api_retry(record_id: str, user: RetryUser) -> dict[str, Any]:
    return retry_dead_letter(record_id, user.name)


@app.post("/health/dead-letters/{record_id}/retry", response_class=HTMLResponse, include_in_schema=False)
def retry_page(record_id: str, user: RetryUser) -> HTMLResponse:
    done = retry_dead_letter(record_id, user.name)
    return _html("运行状况", "Health", pages.health_page(health(), retried=done, can_retry=True), user)


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
