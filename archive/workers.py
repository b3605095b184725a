"""Worker processes for the CPU work of large archiving runs, started the same way however the
calling program was launched (a shell, ``airflow tasks run`` under the task supervisor, a Celery
worker, pytest).

Why this module exists: ``multiprocessing``'s ``spawn`` (and ``forkserver``) start method re-runs
the parent's ``__main__`` in every child so that functions defined there can be unpickled. Under
Airflow the parent's main is the ``airflow`` entry script, and the task supervisor has set
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow-db-not-allowed:///``: importing Airflow in the child
fails, every child dies and the pool is broken (issue 11, item 1). ``fork`` is no answer either:
the parent has live threads (boto3 connection pools, the supervisor's log pipes).

Decision: keep ``spawn`` (a fresh interpreter, no inherited threads or locks) but start the
children with an explicit main module — this one, which imports nothing from the launcher —
instead of whatever script launched the parent. The workers only ever run module-level
functions of :mod:`archive.service` (importable by name), so they never need the parent's main.
The main module is swapped only while a child is being spawned (a short, lock-guarded moment).
The children inherit the environment (``multiprocessing`` cannot set it per child); that is
harmless because nothing they import reads Airflow's settings.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_START_LOCK = threading.Lock()


def ready(_n: int = 0) -> int:
    """Run in the workers at start: proves a process is up (returns its pid)."""
    import os

    return os.getpid()


@contextmanager
def _main_is_this_module() -> Iterator[None]:
    """While children are being spawned, present this module as ``__main__``.

    ``multiprocessing.spawn.get_preparation_data`` reads ``sys.modules['__main__']``: with a
    ``__spec__`` named ``archive.workers`` the child imports this small module (by name) instead of
    re-running the launcher's script by path.
    """
    this = sys.modules[__name__]
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = this
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


class CleanSpawnPool(ProcessPoolExecutor):
    """A ``spawn`` process pool whose children never import the launcher's main script.

    ``ProcessPoolExecutor`` spawns its workers on demand (at submits, from the caller's thread);
    each spawn is wrapped in :func:`_main_is_this_module`, under a lock so that two pools starting
    at once restore ``__main__`` correctly.
    """

    def __init__(self, workers: int) -> None:
        super().__init__(workers, mp_context=multiprocessing.get_context("spawn"))

    def _spawn_process(self) -> None:  # the one place ProcessPoolExecutor starts a process
        with _START_LOCK, _main_is_this_module():
            super()._spawn_process()  # type: ignore[misc]


if not hasattr(ProcessPoolExecutor, "_spawn_process"):  # pragma: no cover - a future Python
    raise ImportError("archive.workers: this Python's ProcessPoolExecutor has no _spawn_process; "
                      "run archiving with SEALFLOW_ARCHIVE_PROCESSES=0 (threads) until this module is adapted")


def start_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, every one started and answering before it is returned
    (a broken start shows here, once, not as a BrokenProcessPool in the middle of a run)."""
    pool = CleanSpawnPool(workers)
    try:
        for pid in pool.map(ready, range(workers), timeout=120):
            assert pid
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool
