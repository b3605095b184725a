"""Archiving's worker processes start however the program was launched (issue 11, item 1).

Under Airflow the launcher's main script is ``airflow``, which cannot be imported inside the task
supervisor; a ``spawn`` pool re-runs it in every child. The launcher below behaves the same way:
re-running it as a child's main fails.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

LAUNCHER = textwrap.dedent("""
    import sys
    if __name__ == "__mp_main__":  # what `spawn` does with the launcher's script in every child
        raise ImportError("the launcher cannot be imported here (like airflow under the task supervisor)")

    if __name__ == "__main__":
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing
        from archive import workers
        if sys.argv[1] == "clean":
            pool = workers.start_pool(2)
        else:
            pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
        with pool:
            pids = set(pool.map(workers.ready, range(8)))
        print("workers answered:", len(pids) > 0)
""")


def _launch(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    script = tmp_path / "launcher.py"
    script.write_text(LAUNCHER)
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_a_plain_spawn_pool_breaks_when_the_launcher_cannot_be_re_imported(tmp_path: Path) -> None:
    done = _launch(tmp_path, "plain")
    assert done.returncode != 0
    assert "BrokenProcessPool" in done.stderr


def test_archiving_workers_start_whatever_launched_the_program(tmp_path: Path) -> None:
    done = _launch(tmp_path, "clean")
    assert done.returncode == 0, done.stderr
    assert "workers answered: True" in done.stdout
