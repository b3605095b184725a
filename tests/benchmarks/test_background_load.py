"""The loaded benchmarks' CPU burners (``cpu_figures.BackgroundLoad``) never outlive their benchmark.

Why: a loaded benchmark killed by an operator (or a CI timeout) left its burners spinning for an
hour, slowing every later run on the machine and skewing its figures."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _burners_of(pid: int, expected: int) -> list[psutil.Process]:
    for _ in range(100):
        kids = psutil.Process(pid).children()
        if len(kids) == expected:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"expected {expected} burners under {pid}, saw {len(kids)}")


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_burners_end_when_the_benchmark_that_started_them_is_killed() -> None:
    code = (f"import sys, time; sys.path.insert(0, {str(BENCHMARKS)!r})\n"
            "from cpu_figures import BackgroundLoad\n"
            "with BackgroundLoad(2):\n    time.sleep(120)\n")
    bench = subprocess.Popen([sys.executable, "-c", code])
    burners = _burners_of(bench.pid, 2)
    assert all(b.is_running() for b in burners)
    bench.kill()
    bench.wait()
    psutil.wait_procs(burners, timeout=10)
    assert all(_gone(b) for b in burners), "a burner outlived its killed benchmark"


def test_burners_stop_when_the_benchmark_leaves_the_block() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    from cpu_figures import BackgroundLoad

    with BackgroundLoad(1) as load:
        burner = psutil.Process(load._procs[0].pid)
        assert burner.is_running()
    assert _gone(burner)
