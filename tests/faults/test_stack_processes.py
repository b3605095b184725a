"""`sealflow stack down` stops what a crashed component left behind, `up` reports leftovers, and
no port of the stack (or SeaweedFS's gRPC companion, port + 10000) lies in the ephemeral range.

The component here is a small Python program standing in for the scheduler: it forks workers the
way LocalExecutor and the task supervisor do (one moves to a process group of its own, one even to
a session of its own), then the test kills it with SIGKILL — the crash that leaked 32 processes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from kernel.settings import Settings
from sealflow import stack

pytestmark = pytest.mark.faults

FAKE_SCHEDULER = r"""
import json, os, sys, time
pids = []
for escape in ("group", "session"):
    pid = os.fork()
    if pid == 0:
        if escape == "group":
            os.setpgid(0, 0)          # what Airflow's task supervisor does for each task
        else:
            os.setsid()               # a worker that even leaves the session
        time.sleep(600)
        os._exit(0)
    pids.append(pid)
with open(sys.argv[1] + ".tmp", "w") as fh:
    json.dump(pids, fh)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(600)
"""


def _start_fake_scheduler(settings: Settings, tmp_path: Path) -> tuple[stack.Running, list[int]]:
    pids_file = tmp_path / "workers.json"
    comp = stack.Component("scheduler", [sys.executable, "-c", FAKE_SCHEDULER, str(pids_file)], None,
                           dict(os.environ), lambda: pids_file.exists(), 30.0, tmp_path)
    entry = stack.launch(settings, comp)
    return entry, json.loads(pids_file.read_text())


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _crash(entry: stack.Running) -> None:
    os.kill(entry.pid, signal.SIGKILL)
    stack.CHILDREN.pop(entry.pid).wait(timeout=10)  # reaped: the PID file now points at nothing


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "var", kek="00" * 32)


def test_down_stops_the_workers_of_a_scheduler_killed_with_sigkill(settings: Settings, tmp_path: Path) -> None:
    entry, workers = _start_fake_scheduler(settings, tmp_path)
    try:
        _crash(entry)
        assert all(_alive(pid) for pid in workers)  # orphans, reparented, still running
        assert stack.alive(settings, "scheduler") is None
        messages: list[str] = []
        stack.down(settings, out=messages.append)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), messages
        assert any("leftover" in m and "scheduler" in m for m in messages), messages
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_reports_and_stops_leftovers_of_a_crashed_component(settings: Settings, tmp_path: Path) -> None:
    entry, workers = _start_fake_scheduler(settings, tmp_path)
    try:
        _crash(entry)
        assert {m.pid for m in stack.leftovers(settings)} == set(workers)
        from sealflow.commands.stack import format_status

        assert "LEFTOVER processes" in format_status(stack.status(settings))  # `sealflow stack status`
        messages: list[str] = []
        assert stack.reap_leftovers(settings, messages.append) == 2  # what `up` runs first
        assert "leftover processes" in messages[0] and all(str(pid) in messages[0] for pid in workers)
        assert stack.leftovers(settings) == []
        assert stack.status(settings)["leftovers"] == []
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_processes_of_a_running_component_are_not_leftovers(settings: Settings, tmp_path: Path) -> None:
    entry, workers = _start_fake_scheduler(settings, tmp_path)
    try:
        assert stack.leftovers(settings) == []
        assert {entry.pid, *workers} <= {m.pid for m in stack.stack_processes(settings)}
    finally:
        stack.down(settings, out=lambda _m: None)
    assert not any(_alive(pid) for pid in [entry.pid, *workers])


def test_another_stacks_processes_are_never_touched(settings: Settings, tmp_path: Path) -> None:
    other = Settings(home=tmp_path / "other" / "var", kek="00" * 32)
    entry, workers = _start_fake_scheduler(other, tmp_path / "other")
    try:
        _crash(entry)
        stack.down(settings, out=lambda _m: None)
        assert all(_alive(pid) for pid in workers)
    finally:
        stack.down(other, out=lambda _m: None)
    assert not any(_alive(pid) for pid in workers)


def test_ports_whose_grpc_companion_is_ephemeral_are_refused() -> None:
    ephemeral = (32768, 60999)
    assert stack.port_problems(Settings(), ephemeral) == []  # the defaults: 18xxx, gRPC 28xxx
    crowded = Settings(s3_port=24333)
    assert stack.port_problems(crowded, ephemeral) == ["s3_port + 10000 (SeaweedFS gRPC) = 34333"]
    assert stack.port_problems(Settings(s3_port=24333, s3_endpoint="http://store:9000"), ephemeral) == []
    assert stack.port_problems(Settings(airflow_port=40000), ephemeral) == ["airflow_port = 40000"]


def test_up_refuses_ports_in_the_ephemeral_range(tmp_path: Path) -> None:
    low, _high = stack.ephemeral_range()
    settings = Settings(home=tmp_path / "var", kek="00" * 32, master_port=low - 5000)
    with pytest.raises(stack.StackError, match=r"master_port \+ 10000"):
        stack.up(settings, out=lambda _m: None)


def test_a_wall_clock_step_does_not_make_a_running_component_look_dead(settings: Settings, tmp_path: Path) -> None:
    """A resumed VM or NTP steps the clock: psutil's start times move with the boot time, so the PID
    file's start time no longer matches. The component's own stack tag still identifies it."""
    entry, workers = _start_fake_scheduler(settings, tmp_path)
    try:
        pid_file = stack.pid_file(settings, "scheduler")
        recorded = json.loads(pid_file.read_text())
        pid_file.write_text(json.dumps({**recorded, "create_time": recorded["create_time"] - 138.0}))
        assert stack.alive(settings, "scheduler") is not None
        assert stack.leftovers(settings) == []  # so `up` reaps nothing that runs
        stranger = stack.Running("scheduler", os.getpid(), 0.0, None, "", [])  # this test: no stack tag
        assert stack.process_of(stranger) is None
    finally:
        stack.down(settings, out=lambda _m: None)
    assert not any(_alive(pid) for pid in [entry.pid, *workers])
