"""archive_records: stamped certificates → checked, packaged, locked, indexed electronic records.

The pipeline's ``archive_batch`` DAG calls :func:`archive_records` with :class:`ArchiveInput` refs
(path of the sealed document, its manifest fields, the SM3 and size recorded at stamping, the
verification result). Records are archived in runs (chunks); each run:

1. places each record against the licence's records in the index (see :func:`_place`): the same
   sealed document archived by the same batch is ``already_archived`` (a rerun); a pending one from
   a crashed run resumes with its reserved 档号 (its stored package is adopted if intact); a declared
   换发/补发 becomes a new record that supersedes the licence's current one; any other document of
   an archived licence is ``rejected`` with the reason — never skipped in silence;
2. runs 四性检测 phase one (content, metadata, seals — reusing the pipeline's verification result)
   in worker threads (or processes, when asked: see :meth:`Archiver._cpu`); records that fail
   are not archived and the result says why;
3. gives each passing record the next 档号 of its prefix as results arrive (continuous, no gaps;
   rows reserved ``pending`` in small batches) and has it packaged by the build workers (phase-two
   checks, metadata, SM3 manifest, tar; each digest computed once, in the worker);
4. uploads packages from a thread pool as they are built (Object Lock COMPLIANCE until the
   保管期限 ends; the store checks Content-MD5 and SHA-256), then confirms them by listing;
5. stores the run's registration form and SM3 manifest, signed by the archiving unit, locked;
6. only then publishes the index rows ``archived`` — in one transaction.

The next run's checks are queued while the current run uploads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from archive import index
from archive.checks import BatchFacts, MalwareScanner, NoScanner, RecordContext, run_checks
from archive.checks.report import CheckReport, merge
from archive.models import ARCHIVED, PENDING, ArchiveRecord, ArchiveRun
from archive.package import (
    BATCH_CERT,
    BATCH_CHAIN,
    BATCH_MANIFEST,
    BATCH_REGISTRATION,
    BATCH_SIGNATURE,
    PackageError,
    batch_manifest,
    data_files,
    finish_package,
    package_slug,
    parse_manifest,
    pem_bundle,
    untar_package,
)
from archive.retention import RetentionError, code_prefix, make_archival_code, retain_until, retention_code
from archive.store import ObjectConflict, ObjectStore, StoreError
from archive.workers import start_pool
from gmpki.gm.sm3 import sm3_hex
from kernel.db import transaction
from kernel.settings import Settings
from stamping.batch.manifest import REISSUE_KINDS

log = logging.getLogger(__name__)

# Checks that need the 档号 or the built package run in phase two.
PHASE_TWO = {"archival_code", "item_numbers", "package_structure", "package_complete", "metadata_readable",
             "no_foreign_files"}
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
# Runs at least this large use worker processes for checks and packaging, when processes are asked for.
PROCESS_THRESHOLD = 200
RESERVE_BATCH = 250  # 档号 reserved (one INSERT) per this many records that passed phase one


@dataclass
class ArchiveInput:
    """One stamped certificate to archive."""

    path: str  # the sealed document on local (or mounted) storage
    record: dict[str, str]  # manifest fields: licence_id, licence_number, holder_name, retention, ...
    format: str = ""  # "ofd" | "pdf"; default from the record or the file suffix
    sm3: str = ""  # hex SM3 of the sealed document, recorded at stamping (carried, not recomputed)
    size: int | None = None  # bytes recorded at stamping (the registration form's count)
    verification: dict | None = None  # DocumentResult.to_json() from the pipeline's 验章
    name: str = ""  # file name inside the package; default: the path's name

    @property
    def file_name(self) -> str:
        return self.name or Path(self.path).name

    @property
    def doc_format(self) -> str:
        return (self.format or self.record.get("format") or Path(self.path).suffix.lstrip(".")).lower()


@dataclass
class RecordOutcome:
    licence_id: str
    file: str
    status: str  # archived | already_archived | rejected | failed
    archival_code: str = ""
    object_key: str = ""
    reasons: list[str] = field(default_factory=list)
    supersedes: str = ""  # a 换发/补发: the 档号 of the licence's record this one supersedes


@dataclass
class ArchiveResult:
    run_id: str
    batch_id: str
    outcomes: list[RecordOutcome] = field(default_factory=list)
    manifest_key: str = ""
    registration_key: str = ""
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def archived(self) -> int:
        return self.count("archived")

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id, "batch_id": self.batch_id, "manifest_key": self.manifest_key,
            "registration_key": self.registration_key, "wall_s": round(self.wall_s, 3),
            "counts": dict(Counter(o.status for o in self.outcomes)),
            "not_archived": [asdict(o) for o in self.outcomes if o.status in ("rejected", "failed")],
            "superseding": [{"licence_id": o.licence_id, "archival_code": o.archival_code, "supersedes": o.supersedes}
                            for o in self.outcomes if o.status == "archived" and o.supersedes],
        }


@dataclass
class _Built:
    """A package built by a worker: the tar and its digests (each computed once, there)."""

    tar: bytes
    size: int
    tar_sm3: str
    manifest_sm3: str
    md5_hex: str
    sha256_b64: str


@dataclass(frozen=True)
class _Placement:
    """Where a record goes in its licence's chain: a pending row of its own to resume, or a new row
    (superseding ``supersedes`` when that is not empty)."""

    resume: ArchiveRecord | None = None
    supersedes: str = ""


@dataclass
class _Work:
    inp: ArchiveInput
    placement: _Placement = field(default_factory=_Placement)
    size: int = 0
    actual_sm3: str = ""
    stamp: tuple[int, int] = (0, 0)  # (size, mtime_ns) when phase one hashed the file
    verification: dict | None = None
    report: CheckReport | None = None
    retention: str = ""
    code: str = ""
    row_id: int = 0
    archived_at: datetime | None = None  # the reserved row's time: the package's and the index's
    package: _Built | None = None
    version: str = ""
    outcome: RecordOutcome | None = None

    @property
    def licence_id(self) -> str:
        return self.inp.record.get("licence_id", "")

    @property
    def supersedes(self) -> str:
        resumed = self.placement.resume
        return (resumed.supersedes or "") if resumed is not None else self.placement.supersedes

    def fail(self, status: str, reasons: list[str]) -> None:
        self.outcome = RecordOutcome(self.licence_id, self.inp.file_name, status, self.code, reasons=reasons)


def package_key(archival_code: str) -> str:
    return f"packages/{package_slug(archival_code)}.tar"


def run_prefix(batch_id: str, run_id: str) -> str:
    return f"runs/{batch_id}/{run_id}/" if run_id else f"runs/{batch_id}/"


STAGING_PREFIX = "staging/"  # unlocked copies of a run folder's files while it is being published


def _read(inp: ArchiveInput) -> bytes:
    p = Path(inp.path)
    size = p.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{inp.path}: document too large ({size} bytes)")
    return p.read_bytes()


def _context(inp: ArchiveInput, data: bytes, actual_sm3: str, verification: dict | None, facts: BatchFacts,
             code: str, pattern: str, files: dict[str, bytes] | None = None) -> RecordContext:
    return RecordContext(
        record=inp.record, archival_code=code, code_pattern=pattern, document_name=inp.file_name, data=data,
        declared_format=inp.doc_format, declared_size=inp.size, carried_sm3=inp.sm3, actual_sm3=actual_sm3,
        verification=verification, batch=facts, package_files=files)


def _check_job(inp: ArchiveInput, verification: dict | None, facts: BatchFacts, scan, pattern: str
               ) -> tuple[str, tuple[int, int], CheckReport]:
    """四性检测 phase one of one record (runs in a worker process): (actual SM3, (size, mtime), report)."""
    mtime = os.stat(inp.path).st_mtime_ns
    data = _read(inp)
    # The carried digest is the expected value; the actual one is computed here, once, because
    # the fixity item compares the two (a file changed since stamping must not be archived).
    actual = sm3_hex(data)
    ctx = _context(inp, data, actual, verification, facts, "", "")
    ctx.scan = scan
    report = run_checks(ctx, "GD")
    # Phase-two items run once the 档号 and the package exist; until then they are placeholders.
    report.results = [r if r["check"] not in PHASE_TWO else {**r, "status": "not_performed", "reason": "pending"}
                      for r in report.results]
    return actual, (len(data), mtime), report


def _build_job(inp: ArchiveInput, verification: dict | None, report: CheckReport, expected_sm3: str,
               stamp: tuple[int, int], code: str, retention: str, now: datetime, batch_id: str, pattern: str,
               reissue: dict[str, str] | None = None) -> _Built | list[str]:
    """Phase two and the package of one record (runs in a worker process); reasons when refused."""
    data = _read(inp)
    if (len(data), os.stat(inp.path).st_mtime_ns) != stamp:
        # Checked in phase one by SM3; a file rewritten since then is refused rather than re-hashed.
        return [f"完整性: {inp.file_name} changed while being archived"]
    files = data_files(record=inp.record, archival_code=code, retention=retention,
                       retain_until=retain_until(retention, now), archived_at=now, batch_id=batch_id,
                       document_name=inp.file_name, document_format=inp.doc_format, document=data,
                       document_sm3=expected_sm3, verification=verification, reissue=reissue)
    ctx = _context(inp, data, expected_sm3, verification, BatchFacts(), code, pattern, files)
    final = merge(report, run_checks(ctx, "GD", only=PHASE_TWO))
    if not final.passed:
        return final.reasons()
    known = {f["name"]: f["sm3"] for f in json.loads(files["metadata.json"])["files"]}
    pkg = finish_package(code, files, final.to_json(), now, known_sm3=known)
    return _Built(pkg.tar, len(pkg.tar), pkg.tar_sm3, pkg.manifest_sm3,
                  hashlib.md5(pkg.tar, usedforsecurity=False).hexdigest(),
                  base64.b64encode(hashlib.sha256(pkg.tar).digest()).decode())


def _batch_facts(inputs: Sequence[ArchiveInput], sizes: dict[int, int], taken: dict[str, str]) -> BatchFacts:
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


def declared_reissue(record: dict[str, str]) -> tuple[str, str] | None:
    """(kind, reason) when the record's batch declared it a 换发/补发 with a reason, else None."""
    kind, reason = record.get("reissue", "").strip(), record.get("reissue_reason", "").strip()
    return (kind, reason) if kind in REISSUE_KINDS and reason else None


def reissue_facts(record: dict[str, str], supersedes: str) -> dict[str, str] | None:
    """What a package's metadata says of its re-issue (None for a licence's first record)."""
    declared = declared_reissue(record)
    if declared is None and not supersedes:
        return None
    kind, reason = declared or ("", "")
    return {"kind": kind, "reason": reason, "supersedes": supersedes}


def _document_sm3(inp: ArchiveInput) -> str:
    """The sealed document's SM3: the one recorded at stamping, else computed (rare: callers carry it)."""
    if inp.sm3:
        return inp.sm3.lower()
    try:
        return sm3_hex(_read(inp))
    except (OSError, ValueError):
        return ""  # phase one refuses an unreadable document with the reason


def _place(inp: ArchiveInput, rows: list[ArchiveRecord], batch_id: str) -> _Placement | RecordOutcome:
    """Where ``inp`` goes among its licence's records (``rows``, oldest first), or its outcome now.

    - the same sealed document (证照标识 and SM3) archived by this batch: ``already_archived`` (a rerun);
      archived by another batch: ``rejected`` (a document is archived once);
    - the same document pending (a crashed run reserved it): resumed under its reserved 档号;
    - a licence whose earlier record is pending or held after a restore: not archived now, with why;
    - another sealed document of an archived licence: a new record superseding the current one when
      its batch declared a 换发/补发 with a reason, else ``rejected`` naming the earlier record
      (admission quarantines such documents; reaching the archive means the database was changed).
    """
    lid = inp.record.get("licence_id", "")
    if not rows:
        return _Placement()
    digest = _document_sm3(inp)

    def outcome(status: str, reason: str = "", row: ArchiveRecord | None = None) -> RecordOutcome:
        return RecordOutcome(lid, inp.file_name, status, row.archival_code if row else "",
                             row.object_key if row else "", reasons=[reason] if reason else [])

    same = next((r for r in rows if digest and r.document_sm3 == digest), None)
    if same is not None and same.state == ARCHIVED:
        if same.batch_id == batch_id:
            return outcome("already_archived", row=same)
        return outcome("rejected", f"licence {lid}: this sealed document (SM3 {digest[:16]}…) is already "
                                   f"archived as {same.archival_code} by batch {same.batch_id}; a document is "
                                   f"archived once")
    if same is not None and same.state == PENDING:
        return _Placement(resume=same)
    pending = next((r for r in rows if r.state == PENDING), None)
    if pending is not None:  # its run crashed; the retry of that batch publishes it, then this one follows
        return outcome("failed", f"licence {lid}: record {pending.archival_code} of another document of this "
                                 f"licence is still pending (its archiving run did not finish); this document "
                                 f"is archived after it, on the next run")
    held = same or next((r for r in rows if r.state != ARCHIVED), None)
    if held is not None:
        return outcome("rejected", f"licence {lid}: the archive holds record {held.archival_code} of this "
                                   f"licence in state {held.state} (found after a restore, see `sealflow backup "
                                   f"check`); not archived until an operator has dealt with it")
    heads = [r for r in rows if not r.superseded_by]
    if len(heads) != 1:
        return outcome("rejected", f"licence {lid}: its archived records {', '.join(r.archival_code for r in rows)} "
                                   f"do not form one chain of versions (index edited?); not archived")
    head = heads[0]
    if declared_reissue(inp.record) is not None:
        return _Placement(supersedes=head.archival_code)
    return outcome("rejected", f"licence {lid} is already archived as {head.archival_code} (batch "
                               f"{head.batch_id}, sealed document SM3 {head.document_sm3[:16]}…); this is "
                               f"another sealed document of the licence and its batch declared no 换发/补发 "
                               f"with a reason: not archived (a licence is sealed again only as a declared "
                               f"re-issue: manifest columns reissue and reissue_reason)")


def _verification(inp: ArchiveInput, trust) -> dict | None:
    if inp.verification is not None:
        return inp.verification
    from stamping.verify.dispatch import verify_file

    return verify_file(inp.path, trust).to_json()


@dataclass
class _RunState:
    result: ArchiveResult
    batch_id: str
    now: datetime
    started: float
    say: Callable[[str], None]
    existing: dict[str, list[ArchiveRecord]] = field(default_factory=dict)
    works: list[_Work] = field(default_factory=list)
    futures: dict[Future, _Work] = field(default_factory=dict)
    cpu: Executor | None = None  # checks
    build: Executor | None = None


class Archiver:
    """The collaborators of an archiving run; :func:`archive_records` is the one-call form."""

    def __init__(self, settings: Settings, store: ObjectStore, sessions: sessionmaker[Session], signer,
                 trust=None, scanner: MalwareScanner | None = None, workers: int | None = None,
                 chain: list[bytes] | None = None, processes: int | None = None) -> None:
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.signer = signer
        self.trust = trust
        self.scanner = scanner or NoScanner()
        self.workers = workers or settings.archive_upload_workers
        self.processes = processes  # None or 0: threads; N > 0: N worker processes (archive.workers)
        self.process_threshold = PROCESS_THRESHOLD
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="archive-cpu")
        self._io = ThreadPoolExecutor(self.workers, thread_name_prefix="archive-io")
        self._check_procs: ProcessPoolExecutor | None = None
        self._build_procs: ProcessPoolExecutor | None = None
        # CA certificates stored with each run so that a package verifies offline with only the
        # root: by default the trust store's known intermediates.
        self.chain = list(chain) if chain is not None else _intermediates(trust)

    # -- workers ----------------------------------------------------------------------------
    def _cpu(self, records: int) -> tuple[Executor, Executor]:
        """(check pool, build pool). Threads by default: hashing (OpenSSL SM3), zlib and I/O release
        the GIL, and measured with benchmarks/bench_archive.py (2,000 records, 2 shared cores) threads
        used 5.4–6.1 ms CPU per record against 8.6–8.8 ms for worker processes (interpreter start-up,
        documents pickled across). Worker processes only when asked (``processes`` > 0) for runs
        of at least ``process_threshold`` records; two pools, so that packages are built while later
        records are still being checked."""
        if not self.processes or records < self.process_threshold or (os.cpu_count() or 1) < 2:
            return self._threads, self._threads
        if self._check_procs is None or self._build_procs is None:
            n = max(2, self.processes)
            # Spawned processes with an explicit main module (archive.workers): they start the same way
            # under a shell, the Airflow task supervisor or a Celery worker (see that module).
            self._check_procs = start_pool(n // 2)
            self._build_procs = start_pool(n - n // 2)
        return self._check_procs, self._build_procs

    def close(self) -> None:
        for pool in (self._check_procs, self._build_procs):
            if pool is not None:
                pool.shutdown()
        self._check_procs = self._build_procs = None
        self._threads.shutdown()
        self._io.shutdown()

    def __enter__(self) -> Archiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the run ----------------------------------------------------------------------------
    def run(self, inputs: Sequence[ArchiveInput], batch_id: str, archived_at: datetime | None = None,
            progress: Callable[[str], None] | None = None, part: int = 0) -> ArchiveResult:
        """One archiving run over ``inputs`` (see the module docstring)."""
        return self.complete(self.start(inputs, batch_id, archived_at, progress, part))

    def start(self, inputs: Sequence[ArchiveInput], batch_id: str, archived_at: datetime | None = None,
              progress: Callable[[str], None] | None = None, part: int = 0,
              duplicates: tuple[set[str], set[str]] = (set(), set())) -> _RunState:
        """Look records up and queue their phase-one checks; :meth:`complete` finishes the run.

        Split so that a caller can queue the next run's checks while this run uploads.
        """
        now = (archived_at or datetime.now(UTC)).astimezone(UTC)
        run_id = f"{batch_id}-{now:%Y%m%dT%H%M%S%f}-{part:04d}"
        st = _RunState(ArchiveResult(run_id, batch_id), batch_id, now, time.monotonic(), progress or (lambda _m: None))
        with self.sessions() as s:
            st.existing = index.records_by_licence(s, (i.record.get("licence_id", "") for i in inputs))
            taken = index.numbers_taken(s, (i.record.get("licence_number", "") for i in inputs))
        todo: list[tuple[ArchiveInput, _Placement]] = []
        for inp in inputs:
            placed = _place(inp, st.existing.get(inp.record.get("licence_id", ""), []), batch_id)
            if isinstance(placed, RecordOutcome):
                st.result.outcomes.append(placed)
            else:
                todo.append((inp, placed))
        if todo:
            st.cpu, st.build = self._cpu(len(todo))
            self._submit_checks(st, todo, taken, duplicates)
        return st

    def complete(self, st: _RunState, after_submit: Callable[[], None] | None = None) -> ArchiveResult:
        result = st.result
        if st.cpu is None:
            if after_submit:
                after_submit()
            result.wall_s = time.monotonic() - st.started
            return result
        works, builds = self._checks_then_builds(st)
        if after_submit:
            after_submit()  # e.g. queue the next run's checks: they run while these packages upload
        st.say(f"checked {len(st.works)} records, {len(works)} passed and are being packaged")
        self._store_built(builds, st.now)
        self._verify_uploads(works)
        stored = [w for w in works if w.package is not None and w.outcome is None]
        result.outcomes += [w.outcome for w in works if w.outcome is not None]
        st.say(f"stored {len(stored)} packages")
        if stored:
            self._finish_run(stored, st.batch_id, result.run_id, st.now, result)
        result.wall_s = time.monotonic() - st.started
        return result

    def _submit_checks(self, st: _RunState, todo: Sequence[tuple[ArchiveInput, _Placement]], taken: dict[str, str],
                       duplicates: tuple[set[str], set[str]]) -> None:
        sizes: dict[int, int] = {}
        for n, (inp, placement) in enumerate(todo):
            w = _Work(inp, placement)
            st.works.append(w)
            try:
                w.size = sizes[n] = os.stat(inp.path).st_size
            except OSError as exc:
                w.fail("rejected", [f"完整性: document cannot be read: {exc.strerror or exc}"])
                continue
            try:
                w.retention = retention_code(inp.record.get("retention", ""))
            except RetentionError as exc:
                w.fail("rejected", [f"真实性: {exc}"])
        facts = _batch_facts([inp for inp, _placement in todo], sizes, taken)
        facts.duplicate_ids |= duplicates[0]
        facts.duplicate_numbers |= duplicates[1]
        live = [w for w in st.works if w.outcome is None]
        scans = self.scanner.scan([Path(w.inp.path) for w in live])
        # Only records without the pipeline's result are verified here (in threads: rare path).
        for w, v in zip(live, self._threads.map(lambda w: _verification(w.inp, self.trust), live), strict=True):
            w.verification = v
        assert st.cpu is not None
        st.futures = {st.cpu.submit(_check_job, w.inp, w.verification, facts, scans.get(Path(w.inp.path)), ""): w
                      for w in live}

    def _checks_then_builds(self, st: _RunState) -> tuple[list[_Work], dict[Future, _Work]]:
        """As phase-one results arrive, passing records get their 档号 (reserved in small batches,
        numbered in order of passing: continuous, no gaps) and go straight to packaging."""
        passed: list[_Work] = []
        pending: list[_Work] = []
        builds: dict[Future, _Work] = {}
        pattern = self.settings.archive_code_pattern
        assert st.build is not None

        def flush() -> None:
            self._assign_codes(pending, st.now)
            for w in pending:
                builds[st.build.submit(_build_job, w.inp, w.verification, w.report, w.actual_sm3, w.stamp, w.code,
                                       w.retention, w.archived_at or st.now, st.result.batch_id, pattern,
                                       reissue_facts(w.inp.record, w.supersedes))] = w
            passed.extend(pending)
            pending.clear()

        for fut in as_completed(st.futures):
            w = st.futures[fut]
            try:
                w.actual_sm3, w.stamp, w.report = fut.result()
            except (OSError, ValueError) as exc:
                w.fail("rejected", [f"完整性: document cannot be read: {exc}"])
                continue
            if not w.report.passed:
                w.fail("rejected", w.report.reasons())
                continue
            pending.append(w)
            if len(pending) >= RESERVE_BATCH:
                flush()
        if pending:
            flush()
        st.result.outcomes += [w.outcome for w in st.works if w.outcome is not None]
        return passed, builds

    def _assign_codes(self, works: list[_Work], now: datetime) -> None:
        """Reuse reserved 档号 of pending rows; number new ones continuously per prefix; reserve rows."""
        s_ = self.settings
        fresh: list[_Work] = []
        for w in works:
            row = w.placement.resume
            if row is not None:
                # A crashed run reserved this 档号 at its time: the package (rebuilt or adopted) and the
                # published row keep that time, so the index and the package metadata agree.
                w.code, w.row_id, w.archived_at = row.archival_code, row.id, _utc(row.archived_at)
            else:
                w.archived_at = now
                fresh.append(w)
        if not fresh:
            return
        rows = []
        with transaction(self.sessions) as s:
            next_no: dict[str, int] = {}
            for w in fresh:
                prefix = code_prefix(s_.archive_fonds, s_.archive_category, now.year, w.retention)
                if prefix not in next_no:
                    next_no[prefix] = index.last_item_number(s, prefix) + 1
                w.code = make_archival_code(s_.archive_fonds, s_.archive_category, now.year, w.retention,
                                            next_no[prefix], s_.archive_item_digits)
                next_no[prefix] += 1
                rec = w.inp.record
                kind, reason = declared_reissue(rec) or ("", "")
                rows.append({
                    "archival_code": w.code, "licence_id": rec.get("licence_id", ""),
                    "licence_number": rec.get("licence_number", ""), "licence_type": rec.get("licence_type", ""),
                    "holder_name": rec.get("holder_name", ""), "holder_code": rec.get("holder_code", ""),
                    "batch_id": "", "archived_at": now, "retention": w.retention,
                    "retain_until": retain_until(w.retention, now), "object_key": package_key(w.code),
                    "object_version": "", "package_sm3": "", "package_size": 0, "document_name": w.inp.file_name,
                    "document_sm3": w.actual_sm3, "manifest_sm3": "", "batch_manifest_key": "",
                    "supersedes": w.supersedes or None, "reissue": kind, "reissue_reason": reason,
                })
            index.reserve(s, rows)
        with self.sessions() as s:
            ids = index.ids_by_code(s, (w.code for w in fresh))
        for w in fresh:
            w.row_id = ids[w.code]

    def _store_built(self, builds: dict[Future, _Work], now: datetime) -> None:
        """Each package is uploaded by the I/O threads as soon as a worker has built it."""
        uploads = []
        for fut in as_completed(builds):
            w = builds[fut]
            try:
                built = fut.result()
            except (OSError, ValueError) as exc:
                w.fail("failed", [str(exc)])
                continue
            if isinstance(built, list):
                w.fail("rejected", built)
                continue
            uploads.append(self._io.submit(self._store_one, w, built, w.archived_at or now))
        for u in uploads:
            u.result()

    def _store_one(self, w: _Work, built: _Built, now: datetime) -> None:
        key = package_key(w.code)
        try:
            try:
                put = self.store.put(key, built.tar, retain_until=retain_until(w.retention, now),
                                     content_type="application/x-tar",
                                     metadata={"sm3": built.tar_sm3, "manifest-sm3": built.manifest_sm3},
                                     verify=False, sha256=built.sha256_b64,
                                     md5=base64.b64encode(bytes.fromhex(built.md5_hex)).decode())
                w.version = put.version_id
                w.package = built
            except ObjectConflict:
                # A crashed earlier run stored this record's package but never published it: adopt it
                # if it is intact and is this record's; otherwise report the clash.
                w.package, w.version, w.archived_at = self._adopt(key, w.licence_id)
                replicate = getattr(self.store, "replicate_existing", None)
                if replicate is not None:  # a ReplicatedStore: the adopted package must be in both stores
                    replicate(key, w.version, w.package.tar)
        except (StoreError, PackageError, ValueError) as exc:
            w.fail("failed", [str(exc)])
            return
        w.package.tar = b""  # uploaded: keep the digests, free the bytes

    def _verify_uploads(self, works: list[_Work]) -> None:
        """Confirm every uploaded package is stored as sent (one LIST per 1,000) before publishing."""
        ok = [w for w in works if w.package is not None and w.outcome is None]
        problems = self.store.verify_listed({package_key(w.code): (w.package.size, w.package.md5_hex)
                                             for w in ok if w.package})
        for w in ok:
            why = problems.get(package_key(w.code))
            if why:
                w.fail("failed", [f"{package_key(w.code)}: {why}"])

    def _adopt(self, key: str, licence_id: str) -> tuple[_Built, str, datetime]:
        info = self.store.head(key)
        data = self.store.get(key, info.version_id)
        _folder, files = untar_package(data, key)
        manifest = parse_manifest(files.get("manifest-sm3.txt", b""), key)
        for name, digest in manifest.items():
            if name not in files or sm3_hex(files[name]) != digest:
                raise StoreError(key, f"existing package is damaged ({name}); not adopted")
        meta = json.loads(files["metadata.json"])
        if meta.get("licence", {}).get("licence_id") != licence_id:
            raise ObjectConflict(key, "the 档号 is taken by another record's package")
        built = _Built(data, len(data), sm3_hex(data), sm3_hex(files["manifest-sm3.txt"]),
                       hashlib.md5(data, usedforsecurity=False).hexdigest(),
                       base64.b64encode(hashlib.sha256(data).digest()).decode())
        return built, info.version_id, _utc(datetime.fromisoformat(meta["archived_at"]))

    def _finish_run(self, stored: list[_Work], batch_id: str, run_id: str, now: datetime,
                    result: ArchiveResult) -> None:
        prefix = run_prefix(batch_id, run_id)
        until = max(retain_until(w.retention, now) for w in stored)
        registration = json.dumps({
            "form": "归档登记表 (GB/T 18894-2016 表A.1)",
            "batch_id": batch_id, "run_id": run_id, "archived_at": now.isoformat(),
            "archiving_unit": _subject(self.signer.certificate),
            "records": len(stored),
            "document_bytes": sum(w.size for w in stored),
            "package_bytes": sum(w.package.size for w in stored if w.package),
            "by_retention": dict(Counter(w.retention for w in stored)),
            "first_archival_code": min(w.code for w in stored), "last_archival_code": max(w.code for w in stored),
            "not_archived": [{"licence_id": o.licence_id, "file": o.file, "reasons": o.reasons}
                             for o in result.outcomes if o.status in ("rejected", "failed")],
            "superseding": [{"archival_code": w.code, "supersedes": w.supersedes, "licence_id": w.licence_id}
                            for w in stored if w.supersedes],
        }, ensure_ascii=False, sort_keys=True, indent=1).encode()
        chain = pem_bundle(self.chain)
        manifest = batch_manifest({w.code: w.package.manifest_sm3 for w in stored if w.package}, registration, chain)
        signature = self.signer.sign(manifest)
        manifest_key = prefix + BATCH_MANIFEST
        self._publish_run(prefix, {BATCH_REGISTRATION: registration, BATCH_CHAIN: chain,
                                   BATCH_CERT: self.signer.certificate, BATCH_SIGNATURE: signature,
                                   BATCH_MANIFEST: manifest}, until)
        with transaction(self.sessions) as s:
            index.add_run(s, ArchiveRun(run_id=run_id, batch_id=batch_id, created_at=now, records=len(stored),
                                        bytes=sum(w.size for w in stored), manifest_key=manifest_key,
                                        manifest_sm3=sm3_hex(manifest), registration_key=prefix + BATCH_REGISTRATION))
            index.publish(s, [{
                "id": w.row_id, "batch_id": batch_id, "object_version": w.version,
                "archived_at": w.archived_at or now, "retain_until": retain_until(w.retention, w.archived_at or now),
                "package_sm3": w.package.tar_sm3, "package_size": w.package.size,
                "manifest_sm3": w.package.manifest_sm3, "batch_manifest_key": manifest_key,
            } for w in stored if w.package], superseded=[(w.supersedes, w.code) for w in stored if w.supersedes])
        for w in stored:
            result.outcomes.append(RecordOutcome(w.inp.record.get("licence_id", ""), w.inp.file_name, "archived",
                                                 w.code, package_key(w.code), supersedes=w.supersedes))
        result.manifest_key = manifest_key
        result.registration_key = prefix + BATCH_REGISTRATION
        self._clear_staging(batch_id)

    def _publish_run(self, prefix: str, files: dict[str, bytes], until: datetime) -> None:
        """Publish the run folder so that no unsigned run folder is ever locked (issue 11, item 7).

        1. stage every file, unlocked, under ``staging/`` (a crash here leaves only deletable debris);
        2. write the locked files with the signature FIRST and the signed manifest LAST: from the first
           locked object on, the folder holds the run's signature, and a folder is complete exactly
           when its manifest is there and verifies (fixity reports any other as incomplete);
        3. the index rows are published only after all of it (by the caller).
        """
        for name, data in files.items():
            self.store.put_unlocked(STAGING_PREFIX + prefix + name, data, content_type="application/octet-stream")
        order = [BATCH_SIGNATURE, BATCH_CERT, BATCH_CHAIN, BATCH_REGISTRATION, BATCH_MANIFEST]
        for name in order:
            self.store.put(prefix + name, files[name], retain_until=until)

    def _clear_staging(self, batch_id: str) -> None:
        """Remove the batch's staged (unlocked) run files: of this run and of runs that crashed."""
        try:
            for obj in list(self.store.list(STAGING_PREFIX + run_prefix(batch_id, ""))):
                for version in self.store.versions(obj.key):
                    self.store.delete(obj.key, version)
        except StoreError as exc:  # debris only: fixity reports it, the next run retries
            log.warning("staged run files of batch %s not removed: %s", batch_id, exc)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _intermediates(trust) -> list[bytes]:
    return list(trust.intermediates) if trust is not None else []


def _subject(cert_der: bytes) -> str:
    try:
        from asn1crypto import x509

        return x509.Certificate.load(cert_der).subject.human_friendly
    except Exception:  # a name for the form only; the signature check does not depend on it
        return ""


def archive_records(records: Sequence[ArchiveInput], *, batch_id: str, settings: Settings, store: ObjectStore,
                    sessions: sessionmaker[Session], signer, trust=None, scanner: MalwareScanner | None = None,
                    archived_at: datetime | None = None, chunk_size: int = 5000,
                    progress: Callable[[str], None] | None = None, processes: int | None = None) -> ArchiveResult:
    """Archive stamped certificates in runs of ``chunk_size``; one merged result.

    Each run (chunk) has its own signed manifest and is published as a whole; the next run's
    checks are queued while the current one uploads. ``signer`` is the archiving unit's
    :class:`gmpki.keys.signer.Signer`; ``trust`` (a TrustStore) verifies records passed without a
    verification result and supplies the CA certificates stored for offline verification.
    """
    chunks = [records[i:i + chunk_size] for i in range(0, len(records), chunk_size)] or [[]]
    ids = Counter(r.record.get("licence_id", "") for r in records)
    nums = Counter(r.record.get("licence_number", "") for r in records)
    duplicates = ({k for k, c in ids.items() if c > 1}, {k for k, c in nums.items() if c > 1})
    merged: ArchiveResult | None = None
    started = time.monotonic()
    with Archiver(settings, store, sessions, signer, trust, scanner, processes=processes) as archiver:
        def start(k: int):
            return archiver.start(chunks[k], batch_id, archived_at, progress, part=k, duplicates=duplicates)

        state = start(0)
        for k in range(len(chunks)):
            following: list = []

            def queue_next(k: int = k, following: list = following) -> None:
                if k + 1 < len(chunks):
                    following.append(start(k + 1))

            part = archiver.complete(state, queue_next)
            if merged is None:
                merged = part
            else:
                merged.outcomes += part.outcomes
                merged.manifest_key = part.manifest_key or merged.manifest_key
            if following:
                state = following[0]
    assert merged is not None
    merged.wall_s = time.monotonic() - started
    return merged
