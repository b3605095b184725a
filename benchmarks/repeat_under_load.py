"""Run one pytest target N times in a row under background CPU load; stop at the first failure.

Why: a test that depends on timing passes on a quiet machine and fails on a records office's busy CI
(issue 14: the CLI approval raced Airflow's HITL task). Passing once proves little; passing ten times
in a row while CPU burners compete with the stack is the evidence asked for. The load is real work
(``cpu_figures.BackgroundLoad``: busy-looping processes), not a sleep injected into our code.

Usage: ``python benchmarks/repeat_under_load.py tests/pipeline/test_e2e_scheduler.py --runs 10 --load 1``
Last stdout line: one JSON object — runs asked and passed, the first failure's run number, each run's
wall seconds and the 1-minute load average seen at its start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cpu_figures import BackgroundLoad  # the benchmarks folder is not a package: found by path


def run_once(target: list[str], log: Path) -> tuple[int, float]:
    """One pytest run of ``target`` (its output kept in ``log``): its exit code and wall seconds."""
    started = time.perf_counter()
    with log.open("wb") as out:
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", *target],
                               stdout=out, stderr=subprocess.STDOUT)
    return code, round(time.perf_counter() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="+", help="pytest node ids or files")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--load", type=int, default=1, help="CPU burner processes for the whole series")
    parser.add_argument("--logs", type=Path, default=Path("var/repeat-under-load"))
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    failed_at = None
    with BackgroundLoad(args.load):
        for n in range(1, args.runs + 1):
            load_before = os.getloadavg()[0]
            code, wall = run_once(args.target, args.logs / f"run-{n:02d}.log")
            runs.append({"run": n, "exit": code, "wall_s": wall, "load_start": round(load_before, 2),
                         "load_end": round(os.getloadavg()[0], 2)})
            print(f"run {n}: exit {code} in {wall} s (load {load_before:.1f} → {os.getloadavg()[0]:.1f})",
                  flush=True)
            if code != 0:
                failed_at = n
                print(f"run {n} failed: its output is in {args.logs / f'run-{n:02d}.log'}", flush=True)
                break
    passed = sum(1 for r in runs if r["exit"] == 0)
    print(json.dumps({"target": args.target, "runs_asked": args.runs, "passed": passed, "failed_at": failed_at,
                      "background_load": args.load, "runs": runs}))
    sys.exit(0 if failed_at is None else 1)


if __name__ == "__main__":
    main()
