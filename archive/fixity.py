"""Fixity over time (长期保存 固定性检测): re-read stored packages, compare with the index, one report.

Every archived row is read back in batches (parallel GETs); its SM3 is compared with the index.
Problems found: ``missing`` (no object or hidden by a delete marker), ``mismatch`` (the current
object differs from the archived digest), ``overwritten`` (a newer version stands over the archived
one, which is still intact), ``unreadable``; and per run folder (runs/<batch>/<run>/):
``incomplete_run`` (no signed manifest, a file missing, or a signature that does not verify — a
run that died while being published), ``unpublished_run`` (complete, but the index never took it:
its records were published by a later run) and ``staged_run`` (unlocked staging debris of a run
that died before publishing). The aggregated report is stored under ``reports/fixity/``
(not locked, so later runs can add theirs) and returned. With the archive replica, both copies of
every locked object are compared and a bad copy is repaired from the good one first
(:mod:`archive.copies`).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from archive import index
from archive.models import ArchiveRecord, ArchiveRun, FixityRun
from archive.package import BATCH_CERT, BATCH_CHAIN, BATCH_MANIFEST, BATCH_REGISTRATION, BATCH_SIGNATURE
from archive.replica import ReplicatedStore
from archive.store import ObjectMissing, ObjectStore, StoreError
from gmpki.gm.sm3 import sm3_hex

REPORT_PREFIX = "reports/fixity/"
SHOWN_PROBLEMS = 50  # problems kept in the database per pass (alerts and the health page name them)
RUN_FILES = (BATCH_SIGNATURE, BATCH_CERT, BATCH_CHAIN, BATCH_REGISTRATION, BATCH_MANIFEST)


def run_problems(store: ObjectStore, sessions: sessionmaker[Session]) -> list[dict]:
    """Run folders that are not complete, signed and indexed, and staged debris (see the module doc)."""
    from sqlalchemy import select

    from archive.service import STAGING_PREFIX

    folders: dict[str, set[str]] = {}
    for obj in store.list("runs/"):
        folder, _, name = obj.key.rpartition("/")
        folders.setdefault(folder + "/", set()).add(name)
    with sessions() as s:
        indexed = {k.rsplit("/", 1)[0] + "/" for k in s.scalars(select(ArchiveRun.manifest_key))}
    problems = []
    for folder, names in sorted(folders.items()):
        where = {"archival_code": "", "key": folder, "licence_id": ""}
        missing = [n for n in RUN_FILES if n not in names]
        if missing:
            problems.append({**where, "problem": "incomplete_run",
                             "reason": f"no {', '.join(missing)}: the run died while being published"})
            continue
        if not _signed(store, folder):
            problems.append({**where, "problem": "incomplete_run",
                             "reason": "the archiving unit's signature does not verify over the run manifest"})
        elif folder not in indexed:
            problems.append({**where, "problem": "unpublished_run",
                             "reason": "complete and signed, but not in the index (its records were archived by a "
                                       "later run)"})
    staged = sorted({o.key.rpartition("/")[0] + "/" for o in store.list(STAGING_PREFIX)})
    problems += [{"archival_code": "", "key": f, "licence_id": "", "problem": "staged_run",
                  "reason": "unlocked staging files of a run that was never published; the batch's next "
                            "archiving run removes them"} for f in staged]
    return problems


def _signed(store: ObjectStore, folder: str) -> bool:
    from gmpki.gm.sm2 import SM2PublicKey

    try:
        key = SM2PublicKey.from_certificate(store.get(folder + BATCH_CERT))
        return bool(key.verify(store.get(folder + BATCH_SIGNATURE), store.get(folder + BATCH_MANIFEST)))
    except Exception:  # unreadable or malformed: not a verified run
        return False


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


def run_fixity(store: ObjectStore | ReplicatedStore, sessions: sessionmaker[Session], *, batch_size: int = 500,
               workers: int = 8, store_report: bool = True, repair: bool = True, audit=None,
               audit_key=None) -> dict:
    """One fixity pass. With a :class:`ReplicatedStore` both copies of every locked object are compared
    first and bad copies repaired from good ones (:mod:`archive.copies`; ``audit`` records each repair),
    then the primary is checked against the index as with one store. ``ok`` means nothing is left
    unrepaired; the repairs made are in ``copies``."""
    started = time.monotonic()
    now = datetime.now(UTC)
    copies = None
    if isinstance(store, ReplicatedStore):
        from archive.copies import check_copies

        copies = check_copies(store, sessions, repair=repair, audit=audit, audit_key=audit_key)
        store = store.primary
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
    problems += run_problems(store, sessions)
    counts: dict[str, int] = {}
    for p in problems:
        counts[p["problem"]] = counts.get(p["problem"], 0) + 1
    if copies is not None:
        for p in copies.unrepaired:
            counts[f"{p['store']}_{p['problem']}"] = counts.get(f"{p['store']}_{p['problem']}", 0) + 1
    report = {
        "report": "fixity", "stage": "CQ", "checked_at": now.isoformat(), "bucket": store.bucket,
        "records_checked": checked, "ok": not problems and not (copies and copies.unrepaired),
        "problem_counts": counts, "problems": problems,
        "copies": copies.to_json() if copies is not None else None,
        "wall_s": round(time.monotonic() - started, 3),
    }
    if store_report:
        key = f"{REPORT_PREFIX}{now:%Y%m%dT%H%M%S%fZ}.json"
        store.put_unlocked(key, json.dumps(report, ensure_ascii=False, indent=1).encode())
        report["report_key"] = key
    record_run(sessions, report)
    return report


def problems_digest(problems: list[dict]) -> str:
    """SM3 over the sorted (problem, key) pairs: the same problems found again give the same digest."""
    pairs = sorted({f"{p['problem']}\t{p['key']}" for p in problems})
    return sm3_hex("\n".join(pairs).encode()) if pairs else ""


def record_run(sessions: sessionmaker[Session], report: dict, keep: int = SHOWN_PROBLEMS) -> None:
    """The pass in ``archive_fixity_run`` (the first ``keep`` problems; the full list is in the report)."""
    from kernel.db import transaction

    with transaction(sessions) as session:
        session.add(FixityRun(checked_at=datetime.fromisoformat(report["checked_at"]),
                              records_checked=report["records_checked"], ok=report["ok"],
                              problem_counts=report["problem_counts"], problems=report["problems"][:keep],
                              problems_sm3=problems_digest(report["problems"]),
                              report_key=report.get("report_key", "")))
