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
   in worker threads (or processes, when asked: see :meth:`ArchiverBase._cpu`); records that fail
   are not archived and the result says why;
3. gives each passing record the next 档号 of its prefix as results arrive (continuous, no gaps;
   rows reserved ``pending`` in small batches) and has it packaged by the build workers (phase-two
   checks, metadata, SM3 manifest, tar; each digest computed once, in the worker);
4. uploads packages from a thread pool as they are built (Object Lock COMPLIANCE until the
   保管期限 ends; the store checks Content-MD5 and SHA-256), then confirms them by listing;
5. stores the run's registration form and SM3 manifest, signed by the archiving unit, locked;
6. only then publishes the index rows ``archived`` — in one transaction.

The next run's checks are queued while the current run uploads.

One module per seam; this package re-exports their public names, so ``from archive.service import
archive_records, ArchiveInput, Archiver, …`` is the way in:

===============  =====================================================================
``records``      :class:`ArchiveInput`, :class:`RecordOutcome`, :class:`ArchiveResult`; object keys
``jobs``         steps 2–3: the checks and the package of one record, run in the workers
``placement``    step 1: where a record goes among its licence's records (rerun, resume, re-issue)
``work``         the per-record and per-run state the steps share
``base``         the collaborators and worker pools (:class:`ArchiverBase`)
``numbering``    step 3: 档号 in order of passing, reserved rows
``storing``      step 4: uploads, confirmation by listing, adoption of a crashed run's package
``publishing``   steps 5–6: the signed run folder, then the index rows
``run``          :class:`Archiver` (start, complete) and :func:`archive_records`
===============  =====================================================================

Decision: :class:`Archiver` is one class put together from step mixins over one base (as the seal
registry's service is), so callers and tests keep one object with the same methods as before; the
modules import downwards only, in the order of the table.
"""

from __future__ import annotations

from archive.service.base import PROCESS_THRESHOLD, ArchiverBase
from archive.service.jobs import MAX_DOCUMENT_BYTES, PHASE_TWO, Built
from archive.service.placement import declared_reissue, reissue_facts
from archive.service.records import STAGING_PREFIX, ArchiveInput, ArchiveResult, RecordOutcome, package_key, run_prefix
from archive.service.run import RESERVE_BATCH, Archiver, archive_records

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "PHASE_TWO",
    "PROCESS_THRESHOLD",
    "RESERVE_BATCH",
    "STAGING_PREFIX",
    "ArchiveInput",
    "ArchiveResult",
    "Archiver",
    "ArchiverBase",
    "Built",
    "RecordOutcome",
    "archive_records",
    "declared_reissue",
    "package_key",
    "reissue_facts",
    "run_prefix",
]
