"""The CPU work of an archiving run, one record at a time: 四性检测 phase one (:func:`check_job`),
then phase two and the package (:func:`build_job`).

Decisions:

* **Module-level functions of plain arguments**, because they run in worker threads or in spawned
  worker processes (:mod:`archive.workers`), which import them by name and pickle their arguments.
* **Each digest is computed once, in the worker**: the document's SM3 in phase one (the fixity item
  compares it with the one carried from stamping), the package's SM3, MD5 and SHA-256 when it is
  built (:class:`Built`), so the parent only uploads and compares.
* **A file rewritten between the phases is refused**, not re-hashed: phase two compares its size and
  mtime with what phase one hashed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from archive.checks import BatchFacts, RecordContext, run_checks
from archive.checks.report import CheckReport, merge
from archive.package import data_files, finish_package
from archive.retention import retain_until
from archive.service.records import ArchiveInput
from gmpki.gm.sm3 import sm3_hex

# Checks that need the 档号 or the built package run in phase two.
PHASE_TWO = {"archival_code", "item_numbers", "package_structure", "package_complete", "metadata_readable",
             "no_foreign_files"}
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


@dataclass
class Built:
    """A package built by a worker: the tar and its digests (each computed once, there)."""

    tar: bytes
    size: int
    tar_sm3: str
    manifest_sm3: str
    md5_hex: str
    sha256_b64: str


def read_document(inp: ArchiveInput) -> bytes:
    p = Path(inp.path)
    size = p.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{inp.path}: document too large ({size} bytes)")
    return p.read_bytes()


def record_context(inp: ArchiveInput, data: bytes, actual_sm3: str, verification: dict | None, facts: BatchFacts,
             code: str, pattern: str, files: dict[str, bytes] | None = None) -> RecordContext:
    return RecordContext(
        record=inp.record, archival_code=code, code_pattern=pattern, document_name=inp.file_name, data=data,
        declared_format=inp.doc_format, declared_size=inp.size, carried_sm3=inp.sm3, actual_sm3=actual_sm3,
        verification=verification, batch=facts, package_files=files)


def check_job(inp: ArchiveInput, verification: dict | None, facts: BatchFacts, scan, pattern: str
               ) -> tuple[str, tuple[int, int], CheckReport]:
    """四性检测 phase one of one record (runs in a worker process): (actual SM3, (size, mtime), report)."""
    mtime = os.stat(inp.path).st_mtime_ns
    data = read_document(inp)
    # The carried digest is the expected value; the actual one is computed here, once, because
    # the fixity item compares the two (a file changed since stamping must not be archived).
    actual = sm3_hex(data)
    ctx = record_context(inp, data, actual, verification, facts, "", "")
    ctx.scan = scan
    report = run_checks(ctx, "GD")
    # Phase-two items run once the 档号 and the package exist; until then they are placeholders.
    report.results = [r if r["check"] not in PHASE_TWO else {**r, "status": "not_performed", "reason": "pending"}
                      for r in report.results]
    return actual, (len(data), mtime), report


def build_job(inp: ArchiveInput, verification: dict | None, report: CheckReport, expected_sm3: str,
               stamp: tuple[int, int], code: str, retention: str, now: datetime, batch_id: str, pattern: str,
               reissue: dict[str, str] | None = None) -> Built | list[str]:
    """Phase two and the package of one record (runs in a worker process); reasons when refused."""
    data = read_document(inp)
    if (len(data), os.stat(inp.path).st_mtime_ns) != stamp:
        # Checked in phase one by SM3; a file rewritten since then is refused rather than re-hashed.
        return [f"完整性: {inp.file_name} changed while being archived"]
    files = data_files(record=inp.record, archival_code=code, retention=retention,
                       retain_until=retain_until(retention, now), archived_at=now, batch_id=batch_id,
                       document_name=inp.file_name, document_format=inp.doc_format, document=data,
                       document_sm3=expected_sm3, verification=verification, reissue=reissue)
    ctx = record_context(inp, data, expected_sm3, verification, BatchFacts(), code, pattern, files)
    final = merge(report, run_checks(ctx, "GD", only=PHASE_TWO))
    if not final.passed:
        return final.reasons()
    known = {f["name"]: f["sm3"] for f in json.loads(files["metadata.json"])["files"]}
    pkg = finish_package(code, files, final.to_json(), now, known_sm3=known)
    return Built(pkg.tar, len(pkg.tar), pkg.tar_sm3, pkg.manifest_sm3,
                  hashlib.md5(pkg.tar, usedforsecurity=False).hexdigest(),
                  base64.b64encode(hashlib.sha256(pkg.tar).digest()).decode())


def batch_facts(inputs: Sequence[ArchiveInput], sizes: dict[int, int], taken: dict[str, str]) -> BatchFacts:
    ids = Counter(i.record.get("licence_id", "") for i in inputs)
    nums = Counter(i.record.get("licence_number", "") for i in inputs)
    dup_nums = {n for n, c in nums.items() if c > 1}
    for i in inputs:  # a number archived before under another 证照标识 is a duplicate too
        n = i.record.get("licence_number", "")
        if n in taken and taken[n] != i.record.get("licence_id"):
            dup_nums.add(n)
    declared = [i.size for i in inputs]
    facts = BatchFacts(duplicate_ids={k for k, c in ids.items() if c > 1}, duplicate_numbers=dup_nums,
                       actual_count=len(sizes), actual_bytes=sum(sizes.values()))
    if all(s is not None for s in declared):
        facts.registered_count = len(inputs)
        facts.registered_bytes = sum(s for s in declared if s is not None)
    return facts


def verification_of(inp: ArchiveInput, trust) -> dict | None:
    if inp.verification is not None:
        return inp.verification
    from stamping.verify.dispatch import verify_file

    return verify_file(inp.path, trust).to_json()
