"""验章 (seal verification) of an uploaded OFD or PDF in the console, as a page and as the API connected
systems call.

Decisions:
- Any authenticated Airflow user may verify a file (the platform offers 验章 to every connected party).
- The upload is verified in memory and nothing is stored; it is capped at the verifier's own limit
  (``MAX_FILE_BYTES``), read one byte past it to tell "too large" without reading more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import HTMLResponse

from sealflow_airflow import root
from sealflow_airflow.console import pages
from sealflow_airflow.console.dependencies import AnyUser, html_page

router = APIRouter()


async def _verify_upload(upload: UploadFile) -> dict[str, Any]:
    from stamping.verify.dispatch import MAX_FILE_BYTES, verify_bytes

    data = await upload.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(413, detail=f"{upload.filename}: 文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    name = Path(upload.filename or "upload").name
    return verify_bytes(data, name, root.trust(), root.seals().status_lookup).to_json()


@router.post("/api/verify", summary="验章 Verify an uploaded OFD or PDF",
          description="Upload one sealed OFD or PDF as multipart field `file`. The answer is the verification "
                      "result: `verdict` is `valid` (有效), `valid_with_warnings` (有效但有警告) "
                      "or `not_valid` (无效); "
                      "`signatures[].checks` lists every check with its reason. Nothing is stored.")
async def api_verify(user: AnyUser, file: Annotated[UploadFile, File(description="OFD or PDF")]) -> dict[str, Any]:
    return await _verify_upload(file)


@router.get("/verify", response_class=HTMLResponse, include_in_schema=False)
def verify_form(user: AnyUser) -> HTMLResponse:
    return html_page("验章", "Verify a sealed file", pages.verify_page(None), user)


@router.post("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_upload_page(user: AnyUser, file: Annotated[UploadFile, File()]) -> HTMLResponse:
    return html_page("验章", "Verify a sealed file", pages.verify_page(await _verify_upload(file)), user)
