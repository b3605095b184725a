"""The archive area of the console: search (证照编号, 证照标识, holder, 档号, day), one record's page with a
preview of its document, verifying a stored package, a share link, and the signed EEP export.

Decisions:
- Verification downloads the package into a private temporary folder and runs the same offline check as
  ``sealflow archive verify``; the folder is removed afterwards.
- Share links, EEP export and the preview use the archive's own functions (``share_package``,
  ``write_eep`` signed through ``archive_signer`` → ``service_signer``: no PIN is ever asked); a share
  link and an export are audited with who and which record.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select
from starlette.background import BackgroundTask

from sealflow_airflow import root
from sealflow_airflow.console import pages, queries
from sealflow_airflow.console.dependencies import ArchiveUser, html_page

router = APIRouter()


@router.get("/api/archive", summary="档案检索 Search archive records by 证照编号, 证照标识, holder, 档号, date")
def api_archive(user: ArchiveUser, q: str = "", day: str = "") -> list[dict[str, Any]]:
    return _search(q, day)


def _search(q: str, day: str) -> list[dict[str, Any]]:
    if day:
        try:
            datetime.fromisoformat(day)
        except ValueError:
            raise HTTPException(422, detail=f"日期 {day!r} 格式不对，请写成 YYYY-MM-DD") from None
    with root.sessions()() as session:
        return queries.search_archive(session, q.strip(), day)


@router.get("/archive", response_class=HTMLResponse, include_in_schema=False)
def archive_page(user: ArchiveUser, q: str = "", day: str = "") -> HTMLResponse:
    return html_page("档案", "Archive", pages.archive_page(q, day, _search(q, day), None), user)


def verify_archived(archival_code: str) -> dict[str, Any]:
    """Download one package and run the offline package verification on it (as ``sealflow archive verify``)."""
    from archive.models import ArchiveRecord
    from archive.offline import verify_package
    from archive.package import PackageError
    from archive.retrieve import download_package
    from archive.store import ObjectStore

    settings = root.settings()
    with root.sessions()() as session:
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


@router.post("/api/archive/{archival_code}/verify", summary="档案包校验 Verify an archived package on the server")
def api_verify_archived(archival_code: str, user: ArchiveUser) -> dict[str, Any]:
    return verify_archived(archival_code)


@router.post("/archive/{archival_code}/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_archived_page(archival_code: str, user: ArchiveUser) -> HTMLResponse:
    result = verify_archived(archival_code)
    return html_page("档案", "Archive", pages.archive_page(archival_code, "", _search(archival_code, ""), result), user)


def _record(archival_code: str):
    from archive.models import ArchiveRecord

    with root.sessions()() as session:
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

    with transaction(root.sessions()) as session:
        pipeline.seals().registry.audit.append(session, actor=actor, action=action, reason=reason, payload=payload)


def share_link(archival_code: str, user: str) -> dict[str, Any]:
    """A presigned, version-pinned link to the verifiable tar of one package (as ``sealflow archive url``)."""
    from archive.retrieve import share_package
    from archive.store import ObjectStore

    settings = root.settings()
    row = _record(archival_code)
    share = share_package(ObjectStore(settings), row, settings.archive_url_expiry)
    _audit(user, "archive.share", f"share link for {archival_code}, valid {settings.archive_url_expiry} s",
           {"archival_code": archival_code, "key": share.key, "version_id": share.version_id,
            "expires_at": share.expires_at.isoformat(timespec="seconds")})
    return {"archival_code": archival_code, "url": share.url, "key": share.key, "version_id": share.version_id,
            "expires_at": share.expires_at.isoformat(timespec="seconds"), "expires_in": settings.archive_url_expiry,
            "verify_with": "sealflow archive verify FILE.tar --trust ROOT.pem"}


def _recordhtml_page(archival_code: str, page: int, share: dict[str, Any] | None) -> str:
    """The record page with its preview inline (one download and drawing; the page count bounds the
    page links); a document that cannot be drawn shows the reason instead."""
    row = _record(archival_code)
    try:
        shown: Any = render_preview(archival_code, page)
    except HTTPException as exc:
        shown = str(exc.detail)
    return pages.record_page(queries.record_detail(row), page, share, shown)


@router.get("/archive/{archival_code}", response_class=HTMLResponse, include_in_schema=False)
def record_page(archival_code: str, user: ArchiveUser, page: int = 0) -> HTMLResponse:
    return html_page(f"档案 {archival_code}", "Archived record", _recordhtml_page(archival_code, page, None), user)


@router.post("/api/archive/{archival_code}/share",
             summary="分享链接 A version-pinned link to the package and its expiry")
def api_share(archival_code: str, user: ArchiveUser) -> dict[str, Any]:
    return share_link(archival_code, user.name)


@router.post("/archive/{archival_code}/share", response_class=HTMLResponse, include_in_schema=False)
def share_page(archival_code: str, user: ArchiveUser) -> HTMLResponse:
    share = share_link(archival_code, user.name)
    return html_page(f"档案 {archival_code}", "Archived record", _recordhtml_page(archival_code, 0, share), user)


@router.get("/archive/{archival_code}/eep", summary="EEP 导出 The package as a signed DA/T 48 EEP (XML)")
def eep_export(archival_code: str, user: ArchiveUser) -> FileResponse:
    """Signed by the archiving unit's key through ``archive_signer`` (its service PIN is the installation's,
    never asked); built in a private temporary folder that is removed once the file is sent."""
    from archive.eep import write_eep
    from archive.integration import archive_signer
    from archive.package import PackageError, package_slug
    from archive.retrieve import download_package
    from archive.store import ObjectStore

    settings = root.settings()
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
        files = package_files(ObjectStore(root.settings()), row)
    except PackageError as exc:
        raise HTTPException(422, detail=f"{archival_code}: {exc}") from None
    content = sorted(name for name in files if name.startswith("content/"))
    if not content:
        raise HTTPException(422, detail=f"{archival_code}: 档案包中没有文件 the package holds no content file")
    try:
        return preview_page(files[content[0]], content[0].rsplit("/", 1)[-1], page)
    except PreviewError as exc:
        raise HTTPException(422, detail=f"无法预览 cannot show: {exc}") from None


@router.get("/archive/{archival_code}/preview.png", summary="页面预览 One page of the sealed document as PNG")
def preview(archival_code: str, user: ArchiveUser, page: int = 0) -> Response:
    rendered = render_preview(archival_code, page)
    return Response(rendered.png, media_type="image/png",
                    headers={"Cache-Control": "private, no-store", "X-Page-Count": str(rendered.page_count),
                             "X-Preview-Skipped": str(len(rendered.skipped))})
