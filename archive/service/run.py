"""The archiving run itself: :class:`Archiver` (start, complete) and :func:`archive_records`, which
archives any number of records in runs (chunks) and merges their results.

Decisions:

* **Split into start and complete** so that the next run's checks are queued while the current run
  uploads (:func:`archive_records` does so).
* **档号 reserved in batches** of :data:`RESERVE_BATCH` records as phase-one results arrive, and
  each numbered record goes straight to packaging.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, as_completed
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from archive import index
from archive.checks import MalwareScanner
from archive.retention import RetentionError, retention_code
from archive.service.jobs import batch_facts, build_job, check_job, verification_of
from archive.service.numbering import Numbering
from archive.service.placement import Placement, place, reissue_facts
from archive.service.publishing import Publishing
from archive.service.records import ArchiveInput, ArchiveResult, RecordOutcome
from archive.service.storing import Storing
from archive.service.work import RunState, Work
from archive.store import ObjectStore
from kernel.settings import Settings

RESERVE_BATCH = 250  # 档号 reserved (one INSERT) per this many records that passed phase one


class Archiver(Numbering, Storing, Publishing):
    """The collaborators of an archiving run; :func:`archive_records` is the one-call form."""

    # -- the run ----------------------------------------------------------------------------
    def run(self, inputs: Sequence[ArchiveInput], batch_id: str, archived_at: datetime | None = None,
            progress: Callable[[str], None] | None = None, part: int = 0) -> ArchiveResult:
        """One archiving run over ``inputs`` (see :mod:`archive.service`)."""
        return self.complete(self.start(inputs, batch_id, archived_at, progress, part))

    def start(self, inputs: Sequence[ArchiveInput], batch_id: str, archived_at: datetime | None = None,
              progress: Callable[[str], None] | None = None, part: int = 0,
              duplicates: tuple[set[str], set[str]] = (set(), set())) -> RunState:
        """Look records up and queue their phase-one checks; :meth:`complete` finishes the run.

        Split so that a caller can queue the next run's checks while this run uploads.
        """
        now = (archived_at or datetime.now(UTC)).astimezone(UTC)
        run_id = f"{batch_id}-{now:%Y%m%dT%H%M%S%f}-{part:04d}"
        st = RunState(ArchiveResult(run_id, batch_id), batch_id, now, time.monotonic(), progress or (lambda _m: None))
        with self.sessions() as s:
            st.existing = index.records_by_licence(s, (i.record.get("licence_id", "") for i in inputs))
            taken = index.numbers_taken(s, (i.record.get("licence_number", "") for i in inputs))
        todo: list[tuple[ArchiveInput, Placement]] = []
        for inp in inputs:
            placed = place(inp, st.existing.get(inp.record.get("licence_id", ""), []), batch_id)
            if isinstance(placed, RecordOutcome):
                st.result.outcomes.append(placed)
            else:
                todo.append((inp, placed))
        if todo:
            st.cpu, st.build = self._cpu(len(todo))
            self._submit_checks(st, todo, taken, duplicates)
        return st

    def complete(self, st: RunState, after_submit: Callable[[], None] | None = None) -> ArchiveResult:
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

    def _submit_checks(self, st: RunState, todo: Sequence[tuple[ArchiveInput, Placement]], taken: dict[str, str],
                       duplicates: tuple[set[str], set[str]]) -> None:
        sizes: dict[int, int] = {}
        for n, (inp, placement) in enumerate(todo):
            w = Work(inp, placement)
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
        facts = batch_facts([inp for inp, _placement in todo], sizes, taken)
        facts.duplicate_ids |= duplicates[0]
        facts.duplicate_numbers |= duplicates[1]
        live = [w for w in st.works if w.outcome is None]
        scans = self.scanner.scan([Path(w.inp.path) for w in live])
        # Only records without the pipeline's result are verified here (in threads: rare path).
        for w, v in zip(live, self._threads.map(lambda w: verification_of(w.inp, self.trust), live), strict=True):
            w.verification = v
        assert st.cpu is not None
        st.futures = {st.cpu.submit(check_job, w.inp, w.verification, facts, scans.get(Path(w.inp.path)), ""): w
                      for w in live}

    def _checks_then_builds(self, st: RunState) -> tuple[list[Work], dict[Future, Work]]:
        """As phase-one results arrive, passing records get their 档号 (reserved in small batches,
        numbered in order of passing: continuous, no gaps) and go straight to packaging."""
        passed: list[Work] = []
        pending: list[Work] = []
        builds: dict[Future, Work] = {}
        pattern = self.settings.archive_code_pattern
        assert st.build is not None

        def flush() -> None:
            self._assign_codes(pending, st.now)
            for w in pending:
                builds[st.build.submit(build_job, w.inp, w.verification, w.report, w.actual_sm3, w.stamp, w.code,
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
