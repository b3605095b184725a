"""The inbox: a records office drops a batch folder into ``<state>/inbox/`` and the scheduled
``stamp_inbox`` DAG starts ``stamp_batch`` for it.

A folder is ready when it holds a manifest and a ``batch.json`` naming the seal and the requester
(``{"es_id": "...", "requester": "...", "placement": "anchor:（盖章）", "pdf_container": "pkcs7"}``);
``batch.json`` is written last, so a folder still being copied is not picked up. Each folder
starts one run, keyed ``inbox__<folder>``: a rerun of the scan never starts a batch twice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from stamping.batch.process import MANIFEST_NAMES

BATCH_FILE = "batch.json"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class InboxError(ValueError):
    """A ready folder whose batch.json cannot be used; the message names the file and the reason."""


def run_id_for(folder: Path) -> str:
    return "inbox__" + _SAFE.sub("-", folder.name).strip("-")[:60]


def ready_batches(inbox: Path) -> list[dict]:
    """``{"trigger_run_id", "conf"}`` for every ready folder of the inbox, oldest first."""
    if not inbox.is_dir():
        return []
    ready = []
    folders = sorted((p for p in inbox.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for folder in folders:
        spec_path = folder / BATCH_FILE
        if not spec_path.is_file() or not any((folder / m).is_file() for m in MANIFEST_NAMES):
            continue
        try:
            spec = json.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InboxError(f"{spec_path}: not readable JSON ({exc})") from None
        if not isinstance(spec, dict) or not spec.get("es_id"):
            raise InboxError(f"{spec_path}: must be an object naming the seal (es_id)")
        batch_id = run_id_for(folder).removeprefix("inbox__")
        ready.append({"trigger_run_id": run_id_for(folder), "conf": {
            "batch_location": str(folder), "es_id": str(spec["es_id"]),
            "requester": str(spec.get("requester") or "inbox"), "batch_id": batch_id,
            "placement": str(spec.get("placement") or "anchor:（盖章）"),
            "pdf_container": str(spec.get("pdf_container") or "pkcs7")}})
    return ready
