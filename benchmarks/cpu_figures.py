"""CPU-normalized figures for the benchmarks: what a shared, loaded machine cannot skew.

Wall-clock rates on a machine shared with other work measure the neighbours as much as SealFlow.
Every benchmark therefore also reports CPU seconds and sets them against a reference measured in
the same run (OpenSSL's SM2 rate; the same documents through the domain steps in one plain
process). Decisions:

- ``rates`` reads both clocks around one calibrated batch, as ``openssl speed`` does: CPU-time
  clocks tick coarsely, so many short readings would under-count.
- ``TreeCpu`` counts the CPU of process trees from two snapshots, start and end. Each process's
  own time plus the time of its children it has already reaped (``children_user/system``): a task
  process that lived between two samples is then still counted, in the process that waited for
  it, and nothing is counted twice. What escapes: a process re-parented to init before it ends.
- OpenSSL's SM2 rate is the best of a few short ``openssl speed`` runs spread over the benchmark,
  so a busy moment does not lower the reference.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Rates:
    """Operations per wall second and per CPU second of this process, over the same batch."""

    per_s: float
    per_cpu_s: float


def rates(fn: Callable[[object], object], items: list, min_seconds: float) -> Rates:
    """Calls of ``fn`` over ``items`` (cycled) in batches grown until one takes ``min_seconds`` of CPU."""
    fn(items[0])  # warm caches
    n = max(4, min(len(items), 16))
    while True:
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            fn(items[i % len(items)])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if cpu >= min_seconds or n >= 1_000_000:
            return Rates(per_s=n / max(wall, 1e-9), per_cpu_s=n / max(cpu, 1e-9))
        n = max(n * 2, int(n * min_seconds * 1.2 / max(cpu, 1e-3)))


def openssl_sm2(seconds: int = 1) -> tuple[float, float]:
    """OpenSSL's SM2 sign and verify operations per (user) CPU second, from ``openssl speed sm2``."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "sm2"], capture_output=True, text=True,
                         check=True).stdout
    match = re.search(r"SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"cannot read `openssl speed sm2` output (is OpenSSL ≥ 3 installed?): {out[-300:]}")
    return float(match.group(1)), float(match.group(2))


class OpensslReference:
    """The best OpenSSL SM2 sign/verify rates over the samples taken during a run."""

    def __init__(self) -> None:
        self.sign = self.verify = 0.0

    def sample(self, seconds: int = 1) -> None:
        sign, verify = openssl_sm2(seconds)
        self.sign, self.verify = max(self.sign, sign), max(self.verify, verify)


def _tree_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds so far of the given processes, their live descendants and the descendants they reaped."""
    seen: set[int] = set()
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                total += _tree_seconds(proc)
            except psutil.Error:  # ended between the listing and the reading: its parent has it now
                continue
    return total


class TreeCpu:
    """CPU seconds used by process trees between ``start()`` and ``stop()``."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self._start = 0.0
        self.seconds = 0.0

    def start(self) -> TreeCpu:
        self._start = tree_cpu_seconds(self.pids)
        return self

    def stop(self) -> float:
        self.seconds = max(0.0, tree_cpu_seconds(self.pids) - self._start)
        return self.seconds


class BackgroundLoad:
    """``n`` bounded CPU burners (busy-looping child processes) for loaded runs of a benchmark.

    Started and stopped by the benchmark itself; each burner also ends on its own after
    ``max_seconds`` or as soon as the benchmark that started it is gone (its parent changes), so a
    killed benchmark cannot leave them spinning for an hour."""

    def __init__(self, n: int, max_seconds: float = 3600.0) -> None:
        self.n, self.max_seconds = n, max_seconds
        self._procs: list[subprocess.Popen] = []

    def __enter__(self) -> BackgroundLoad:
        # The parent's pid is written in, not read at start: a burner still starting when the benchmark
        # dies would otherwise take its new parent for the benchmark and spin on.
        code = (f"import os, time\nend = time.monotonic() + {self.max_seconds}\n"
                f"while time.monotonic() < end and os.getppid() == {os.getpid()}:\n    pass\n")
        self._procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.kill()
        for proc in self._procs:
            proc.wait()
        self._procs = []
