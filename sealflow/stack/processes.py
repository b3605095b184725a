"""PID supervision: start a component as a process of its own, know whether it still runs, stop
exactly what we started.

Decisions:

* **A PID file per component** (``run/<name>.pid.json``) records its PID *and* creation time, so a
  second ``up`` sees live processes and does nothing, and a reused PID is never signalled
  (:func:`process_of`). When the wall clock was stepped (a resumed VM, NTP), start times move;
  then the component's own stack tag in its environment tells (``_started_as``).
* **Each component is a session leader** (``start_new_session``) carrying a tag
  (``SEALFLOW_STACK_TAG=<state dir digest>/<component>``) that everything it forks inherits, and its
  session is recorded in ``run/sessions.json``: what it forks can be found after it died
  (``orphans``).
* **Started means healthy**: :func:`launch` waits for the component's health check (or a short
  grace period for one without a port) and reports the tail of this start's log when it fails.
* **One ``up``/``down`` at a time** per state directory (:func:`stack_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernel.files import exclusive_lock
from kernel.settings import Settings
from sealflow.stack.paths import CHILDREN, StackError, logs_dir, run_dir, write_private

STACK_TAG_VAR = "SEALFLOW_STACK_TAG"


@dataclass
class Component:
    name: str
    argv: list[str]
    port: int | None
    env: dict[str, str]
    health: Callable[[], bool]
    startup_timeout: float = 60.0
    cwd: Path | None = None


@dataclass
class Running:
    name: str
    pid: int
    create_time: float
    port: int | None
    log: str
    argv: list[str] = field(default_factory=list)


def stack_tag(settings: Settings, component: str) -> str:
    """``<digest of the state dir>/<component>``: marks every process a component starts, forks included."""
    digest = hashlib.sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:16]
    return f"{digest}/{component}"


def sessions_file(settings: Settings) -> Path:
    return run_dir(settings) / "sessions.json"


def read_sessions(settings: Settings) -> list[dict[str, Any]]:
    try:
        return list(json.loads(sessions_file(settings).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return []


def record_session(settings: Settings, entry: Running) -> None:
    """Remember a component's session (id = its PID) for as long as any process may live in it."""
    sessions = [s for s in read_sessions(settings) if s.get("sid") != entry.pid]
    sessions.append({"name": entry.name, "sid": entry.pid, "create_time": entry.create_time})
    write_private(sessions_file(settings), json.dumps(sessions))


def pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid.json"


def read_pid(settings: Settings, name: str) -> Running | None:
    path = pid_file(settings, name)
    try:
        return Running(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def process_of(entry: Running) -> Any:  # psutil.Process | None
    """The live process of a PID file entry, only if it is still the very process we started."""
    import psutil

    try:
        proc = psutil.Process(entry.pid)
        if proc.status() == psutil.STATUS_ZOMBIE or not _started_as(proc, entry):
            return None
        return proc
    except psutil.Error:
        return None


def _started_as(proc: Any, entry: Running) -> bool:
    """Whether a live process is the one ``entry`` recorded: the same start time — or, when the wall
    clock was stepped since (a resumed VM, NTP), which moves the start times psutil computes from
    the boot time, the component's own stack tag. Without the second test a clock step made every
    running component look dead: its PID file was removed and ``up`` reaped it as a leftover."""
    if abs(proc.create_time() - entry.create_time) <= 1.0:
        return True
    with contextlib.suppress(Exception):  # psutil.Error, or an unreadable environment
        return proc.environ().get(STACK_TAG_VAR, "").endswith("/" + entry.name)
    return False


def alive(settings: Settings, name: str) -> Running | None:
    entry = read_pid(settings, name)
    if entry is None:
        return None
    if process_of(entry) is None:
        pid_file(settings, name).unlink(missing_ok=True)
        return None
    return entry


def log_tail(path: Path, lines: int = 25, since: int = 0) -> str:
    """The last lines of a log, from byte offset ``since`` (this start's output only)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def launch(settings: Settings, comp: Component) -> Running:
    import psutil

    if comp.port is not None and _port_in_use(comp.port):
        raise StackError(f"{comp.name}: port {comp.port} on 127.0.0.1 is already in use by another process; "
                         f"choose other ports (SEALFLOW_*_PORT) or stop that process")
    logs_dir(settings).mkdir(parents=True, exist_ok=True)
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    if comp.cwd:
        comp.cwd.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir(settings) / f"{comp.name}.log"
    with open(log_path, "ab") as log_file:
        offset = log_file.tell()
        log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {comp.name}\n".encode())
        log_file.flush()
        # A new session: the component outlives this command and gets its own process group,
        # which `down` signals so that workers it forks stop with it.
        env = {**comp.env, STACK_TAG_VAR: stack_tag(settings, comp.name)}
        proc = subprocess.Popen(comp.argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                env=env, cwd=comp.cwd, start_new_session=True)
    CHILDREN[proc.pid] = proc
    entry = Running(comp.name, proc.pid, psutil.Process(proc.pid).create_time(), comp.port, str(log_path), comp.argv)
    record_session(settings, entry)
    write_private(pid_file(settings, comp.name), json.dumps(asdict(entry)))
    launched = time.monotonic()
    deadline = launched + comp.startup_timeout
    # A component without a port of its own counts as started once it survived a short grace period.
    grace = 0.0 if comp.port is not None else 2.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file(settings, comp.name).unlink(missing_ok=True)
            raise StackError(f"{comp.name} exited with code {proc.returncode} while starting; "
                             f"log {log_path}:\n{log_tail(log_path, since=offset)}")
        if time.monotonic() - launched >= grace and comp.health():
            return entry
        time.sleep(0.3)
    _stop_entry(settings, entry)
    raise StackError(f"{comp.name} did not become healthy within {comp.startup_timeout:.0f} s; "
                     f"log {log_path}:\n{log_tail(log_path, since=offset)}")


def stop_entries(settings: Settings, entries: list[Running], timeout: float = 20.0) -> list[Running]:
    """SIGTERM the process groups we started, wait for all at once, SIGKILL what is left.

    Returns the entries that were still running. Only processes whose PID *and* creation time match
    a PID file are signalled (with the children they forked), so a reused PID is never touched.
    """
    import psutil

    running: list[Running] = []
    family: list[Any] = []
    for entry in entries:
        proc = process_of(entry)
        if proc is None:
            pid_file(settings, entry.name).unlink(missing_ok=True)
            continue
        running.append(entry)
        try:
            children = proc.children(recursive=True)
        except psutil.Error:
            children = []
        family += [proc, *children]
        try:
            os.killpg(entry.pid, signal.SIGTERM)  # our component leads its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        for child in children:  # tasks move to process groups of their own: signal them directly
            with contextlib.suppress(psutil.Error):
                child.terminate()
    kill_survivors(family, timeout)
    for entry in running:
        child = CHILDREN.pop(entry.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)
        pid_file(settings, entry.name).unlink(missing_ok=True)
    return running


def kill_survivors(procs: list[Any], timeout: float) -> None:
    """Wait up to ``timeout`` s for the SIGTERMed ``procs`` (psutil processes) to end; SIGKILL the rest."""
    import psutil

    _, survivors = psutil.wait_procs(procs, timeout=timeout)
    for straggler in survivors:
        with contextlib.suppress(psutil.Error):
            straggler.kill()
    psutil.wait_procs(survivors, timeout=5)


def _stop_entry(settings: Settings, entry: Running, timeout: float = 20.0) -> bool:
    return bool(stop_entries(settings, [entry], timeout))


@contextlib.contextmanager
def stack_lock(settings: Settings) -> Iterator[None]:
    """One `up`/`down` at a time per state directory."""
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(run_dir(settings) / "stack.lock"):
        yield
