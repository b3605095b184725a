"""Orphans and leftovers: the processes a component forked that outlived it, and the reaper that
stops a throw-away stack when its owner dies.

A component killed with SIGKILL (a crashed scheduler) leaves the processes it forked —
LocalExecutor workers, task supervisors, tasks (which move to process groups of their own) —
reparented to init, out of reach of its PID file.

Decisions:

* **Membership, never names**: a process belongs to this stack if it carries the stack tag, or
  lives in a recorded session and started after its leader (the kernel does not reuse a PID while a
  session still uses it as its id). Nothing is ever found or killed by its name.
* **Never this process or its ancestors** (:func:`stack_processes`): a task that runs ``sealflow
  stack`` must not kill its own chain.
* ``down`` stops leftovers too; ``up`` reports and stops those of components that are gone
  (:func:`reap_leftovers`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kernel.settings import Settings
from sealflow.stack.paths import ALL_COMPONENTS, CHILDREN, write_private
from sealflow.stack.processes import STACK_TAG_VAR, alive, kill_survivors, read_sessions, sessions_file, stack_tag


@dataclass(frozen=True)
class Member:
    """A live process that belongs to this stack, and the component that started it (or its ancestor)."""

    component: str
    pid: int
    rss: int
    cmdline: str


def stack_processes(settings: Settings, components: Iterable[str] | None = None) -> list[Member]:
    """Every live process of this state directory's stack (tagged, or in a recorded session).

    Never this process or its ancestors (a task that runs ``sealflow stack`` must not kill its own chain).
    """
    import psutil

    wanted = None if components is None else set(components)
    prefix = stack_tag(settings, "")
    sessions = {s["sid"]: s for s in read_sessions(settings)}
    own = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: list[Member] = []
    for proc in psutil.process_iter(["pid", "create_time", "cmdline", "memory_info"]):
        if proc.info["pid"] in own:
            continue
        name = _membership(proc, prefix, sessions)
        if name is None or (wanted is not None and name not in wanted):
            continue
        memory = proc.info.get("memory_info")
        found.append(Member(name, proc.info["pid"], memory.rss if memory else 0,
                            " ".join(proc.info.get("cmdline") or [])[:200]))
    return found


def _membership(proc: Any, prefix: str, sessions: dict[int, dict[str, Any]]) -> str | None:
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        tag = proc.environ().get(STACK_TAG_VAR, "")
        if tag.startswith(prefix):
            return tag[len(prefix):]
    with contextlib.suppress(psutil.Error, OSError):
        session = sessions.get(os.getsid(proc.info["pid"]))
        if (session is not None and proc.info["create_time"] >= session["create_time"] - 1.0
                and not _leader_replaced(session)):
            return str(session["name"])
    return None


def _leader_replaced(session: dict[str, Any]) -> bool:
    """True when a live process holds the session's id but is not the leader we started (reused PID)."""
    import psutil

    try:
        return abs(psutil.Process(session["sid"]).create_time() - session["create_time"]) > 1.0
    except psutil.Error:
        return False


def stop_processes(members: list[Member], timeout: float = 20.0) -> list[Member]:
    """SIGTERM, wait, SIGKILL what is left; returns the members that were signalled."""
    import psutil

    procs: list[Any] = []
    for member in members:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(member.pid)
            proc.terminate()
            procs.append(proc)
    kill_survivors(procs, timeout)
    signalled = {p.pid for p in procs}
    return [m for m in members if m.pid in signalled]


def leftovers(settings: Settings, components: Iterable[str] | None = None) -> list[Member]:
    """Processes of this stack whose component is no longer running (orphans of a crash)."""
    live = {name for name in ALL_COMPONENTS if alive(settings, name)}
    return [m for m in stack_processes(settings, components) if m.component not in live]


def describe(members: list[Member]) -> str:
    by: dict[str, list[Member]] = {}
    for member in members:
        by.setdefault(member.component, []).append(member)
    return "; ".join(f"{name}: {len(ms)} (pids {', '.join(str(m.pid) for m in ms[:8])}"
                     f"{' …' if len(ms) > 8 else ''}, {sum(m.rss for m in ms) / 2**20:.0f} MiB)"
                     for name, ms in sorted(by.items()))


def reap_leftovers(settings: Settings, out: Callable[[str], None], components: Iterable[str] | None = None) -> int:
    """Find, report and stop leftovers of crashed components; how many there were."""
    found = leftovers(settings, components)
    if found:
        out(f"leftover processes of crashed stack components found — {describe(found)}; stopping them")
        stop_processes(found)
    prune_sessions(settings)
    return len(found)


def prune_sessions(settings: Settings) -> None:
    """Forget sessions with neither a live leader nor a live member."""
    import psutil

    sessions = read_sessions(settings)
    if not sessions:
        return
    in_use: set[int] = set()
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            in_use.add(os.getsid(proc.info["pid"]))
    kept = [s for s in sessions if s["sid"] in in_use]
    if kept != sessions:
        write_private(sessions_file(settings), json.dumps(kept))


_REAPER_SCRIPT = """
import sys
from pathlib import Path

import psutil

from kernel.settings import Settings
from sealflow.stack import down

try:
    psutil.Process(int(sys.argv[1])).wait()
except psutil.NoSuchProcess:
    pass
down(Settings(home=Path(sys.argv[2])), out=lambda _msg: None)
"""


def spawn_reaper(settings: Settings, watch_pid: int | None = None) -> int:
    """Stop this state directory's stack when process ``watch_pid`` (default: this one) ends, however it ends.

    For throw-away stacks (tests, benchmarks): a killed test run must not leave servers behind. If
    the owner already stopped the stack, the reaper finds no PID files and just exits.
    """
    argv = [sys.executable, "-c", _REAPER_SCRIPT, str(watch_pid or os.getpid()), str(settings.state_dir)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    CHILDREN[proc.pid] = proc
    return proc.pid
