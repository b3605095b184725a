"""What every step of an archiving run stands on: the collaborators (settings, object store,
database, the archiving unit's signer, trust store, malware scanner) and the worker pools.

Decisions:

* **One base class for the step mixins** (``numbering``, ``storing``, ``publishing``), as the seal
  registry does: callers keep one :class:`~archive.service.Archiver` object.
* **Threads by default, worker processes only when asked** for large runs (see :meth:`ArchiverBase._cpu`
  for the measurements behind it).
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from archive.checks import MalwareScanner, NoScanner
from archive.store import ObjectStore
from archive.workers import start_pool
from kernel.settings import Settings

# Runs at least this large use worker processes for checks and packaging, when processes are asked for.
PROCESS_THRESHOLD = 200


class ArchiverBase:
    """The collaborators and worker pools of an archiving run."""

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _intermediates(trust) -> list[bytes]:
    return list(trust.intermediates) if trust is not None else []
