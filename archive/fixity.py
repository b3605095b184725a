"""Fixity over time (长期保存 固定性检测): re-read stored packages, compare with the index, one report.

Every archived row is read back in batches (parallel GETs); its SM3 is compared with the index.
Problems found: ``missing`` (no object or hidden by a delete marker), ``mismatch`` (the current
object differs from the archived digest), ``overwritten`` (a newer version stands over the archived
one, which is still intact), ``unreadable``. The aggregated report is stored under ``reports/fixity/``
(not locked, so later runs can add theirs) and returned.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from archive import index
from archive.models import ArchiveRecord
from archive.package import sm3_hex
from archive.store import ObjectMissing, ObjectStore, StoreError

REPORT_PREFIX = "reports/fixity/"


def _check(store: ObjectStore, row: ArchiveRecord) -> dict | None:
    where = {"archival_code": row.archival_code, "key": row.object_key, "licence_id": row.licence_id}
    try:
        data = store.get(row.object_key)
    except ObjectMissing:
        try:
            archived = store.get(row.object_key, row.object_version or None) if row.object_version else None
        except StoreError:
            archived = None
        state = "intact" if archived is not None and sm3_hex(archived) == row.package_sm3 else "missing"
        return {**where, "problem": "missing", "reason": f"no current object; archived version {state}"}
    except StoreError as exc:
        return {**where, "problem": "unreadable", "reason": exc.reason}
    if sm3_hex(data) == row.package_sm3 and len(data) == row.package_size:
        return None
    try:
        archived = store.get(row.object_key, row.object_version) if row.object_version else b""
    except StoreError:
        archived = b""
    if archived and sm3_hex(archived) == row.package_sm3:
        return {**where, "problem": "overwritten",
                "reason": "a newer version stands over the archived one (which is intact)"}
    return {**where, "problem": "mismatch", "reason": "stored package differs from the archived SM3"}


def run_fixity(store: ObjectStore, sessions: sessionmaker[Session], *, batch_size: int = 500, workers: int = 8,
               store_report: bool = True) -> dict:
    started = time.monotonic()
    now = datetime.now(UTC)
    checked = 0
    problems: list[dict] = []
    after = 0
    with ThreadPoolExecutor(workers) as pool:
        while True:
            with sessions() as s:
                rows = index.iter_archived(s, after, batch_size)
            if not rows:
                break
            after = rows[-1].id
            checked += len(rows)
            problems += [p for p in pool.map(lambda r: _check(store, r), rows) if p]
    counts: dict[str, int] = {}
    for p in problems:
        counts[p["problem"]] = counts.get(p["problem"], 0) + 1
    report = {
        "report": "fixity", "stage": "CQ", "checked_at": now.isoformat(), "bucket": store.bucket,
        "records_checked": checked, "ok": not problems, "problem_counts": counts, "problems": problems,
        "wall_s": round(time.monotonic() - started, 3),
    }
    if store_report:
        key = f"{REPORT_PREFIX}{now:%Y%m%dT%H%M%S%fZ}.json"
        store.put_unlocked(key, json.dumps(report, ensure_ascii=False, indent=1).encode())
        report["report_key"] = key
    return report
