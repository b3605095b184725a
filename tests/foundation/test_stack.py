"""The embedded stack: starts from nothing, S3 with Object Lock, restart keeps data, `up` is
idempotent, `down` stops exactly the processes it started."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psutil
import pytest
from botocore.exceptions import ClientError

from sealflow.stack import Running, alive, pid_file, read_pid, run_dir, status

pytestmark = pytest.mark.stack


def test_stack_started_from_nothing(embedded_stack):
    state = status(embedded_stack.settings)
    weed = state["components"]["seaweedfs"]
    assert weed["state"] == "running" and weed["healthy"]
    assert weed["port"] == embedded_stack.settings.s3_port != 18333
    proc = psutil.Process(weed["pid"])
    listening = {c.laddr for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
    assert (embedded_stack.settings.state_dir / "seaweedfs").is_dir()
    assert (embedded_stack.settings.airflow_home / "airflow.db").is_file()
    buckets = {b["Name"] for b in embedded_stack.s3().list_buckets()["Buckets"]}
    assert {embedded_stack.settings.work_bucket, embedded_stack.settings.archive_bucket} <= buckets


def test_platform_simulator_runs_and_its_certificate_is_pinned(embedded_stack):
    import httpx

    settings = embedded_stack.settings
    platform = status(settings)["components"]["platform"]
    assert platform["state"] == "running" and platform["healthy"], platform
    assert platform["port"] == settings.platform_port
    health = httpx.get(f"{settings.resolved_platform_url}/v1/health", timeout=10).json()
    assert health["status"] == "ok"
    assert (settings.state_dir / "filing" / "platform-cert.pem").is_file()


def test_s3_round_trip(embedded_stack):
    s3 = embedded_stack.s3()
    bucket = embedded_stack.settings.work_bucket
    key = f"tests/{uuid.uuid4()}.bin"
    body = bytes(range(256)) * 4096  # 1 MiB
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    assert key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="tests/")["Contents"]]
    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key=key)


def test_archive_bucket_refuses_deleting_a_compliance_locked_version(embedded_stack):
    s3 = embedded_stack.s3()
    bucket = embedded_stack.settings.archive_bucket
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    key = f"aip/{uuid.uuid4()}.zip"
    until = datetime.now(UTC) + timedelta(days=1)
    put = s3.put_object(Bucket=bucket, Key=key, Body=b"archival information package",
                        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
    version = put["VersionId"]
    retention = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] in {"AccessDenied", "InvalidRequest"}
    # Shortening a COMPLIANCE retention is refused too.
    with pytest.raises(ClientError):
        s3.put_object_retention(Bucket=bucket, Key=key, VersionId=version,
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC)})
    assert s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"archival information package"


def test_second_up_is_a_no_op(embedded_stack):
    before = {name: read_pid(embedded_stack.settings, name) for name in ("seaweedfs", "platform")}
    messages: list[str] = []
    from sealflow.stack import up

    up(embedded_stack.settings, out=messages.append)
    after = {name: read_pid(embedded_stack.settings, name) for name in ("seaweedfs", "platform")}
    assert after == before
    assert f"seaweedfs: already running (pid {before['seaweedfs'].pid})" in messages
    assert not any("migrating" in m for m in messages)


def test_restart_keeps_data_and_down_stops_exactly_our_processes(embedded_stack):
    settings = embedded_stack.settings
    bucket = settings.archive_bucket
    key = f"restart/{uuid.uuid4()}.txt"
    embedded_stack.s3().put_object(Bucket=bucket, Key=key, Body=b"kept across restarts")
    ours = alive(settings, "seaweedfs")
    assert ours is not None
    family = [psutil.Process(ours.pid), *psutil.Process(ours.pid).children(recursive=True)]

    # An unrelated process, and a stale PID file naming it (PID reuse): `down` must leave it alone.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # (the triggerer only runs with --ui, so its PID file is free for this forgery)
        stale = Running("triggerer", bystander.pid, psutil.Process(bystander.pid).create_time() - 50, None, "x", [])
        pid_file(settings, "triggerer").write_text(json.dumps(stale.__dict__))
        stopped = embedded_stack.down()
        assert "seaweedfs" in stopped
        assert bystander.poll() is None, "down killed a process it did not start"
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in family)
        assert not list(run_dir(settings).glob("*.pid.json"))
        assert status(settings)["components"]["seaweedfs"]["state"] == "stopped"
    finally:
        bystander.kill()
        bystander.wait()

    embedded_stack.up()
    again = alive(settings, "seaweedfs")
    assert again is not None and again.pid != ours.pid
    body = embedded_stack.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == b"kept across restarts"


def test_status_cli_json(embedded_stack):
    from sealflow.stack import sealflow_env

    env = {"PATH": "/usr/bin:/bin", **sealflow_env(embedded_stack.settings)}
    done = subprocess.run([sys.executable, "-m", "sealflow.cli", "stack", "status", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    state = json.loads(done.stdout)
    assert state["state_dir"] == str(embedded_stack.settings.state_dir)
    assert state["components"]["seaweedfs"]["healthy"] is True
    assert state["components"]["scheduler"]["state"] == "stopped"


def test_demo_steps_and_summary(embedded_stack, capsys):
    from sealflow.commands.demo import STEPS, run_demo, summary_text

    ctx = run_demo(embedded_stack.settings, STEPS[:1])  # the stack step; the smoke run is tested on its own
    text = summary_text(ctx)
    settings = embedded_stack.settings
    assert settings.resolved_s3_endpoint in text and str(settings.state_dir) in text
    assert f"http://127.0.0.1:{settings.airflow_port}" in text and "login admin / " in text
    assert "[1/1] start the embedded stack" in capsys.readouterr().out


def test_up_cli_on_a_running_stack_reports_and_changes_nothing(embedded_stack):
    from sealflow.stack import sealflow_env

    before = read_pid(embedded_stack.settings, "seaweedfs")
    env = {"PATH": "/usr/bin:/bin", **sealflow_env(embedded_stack.settings)}
    done = subprocess.run([sys.executable, "-m", "sealflow.cli", "stack", "up"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"seaweedfs: already running (pid {before.pid})" in done.stdout
    assert embedded_stack.settings.resolved_s3_endpoint in done.stdout
    assert read_pid(embedded_stack.settings, "seaweedfs") == before


def test_a_killed_owner_leaves_no_servers_behind(tmp_path):
    """spawn_reaper: when the process owning a throw-away stack is SIGKILLed, the stack still stops."""
    import os
    import signal

    from sealflow.stack import sealflow_env
    from tests.stack_fixtures import stack_settings

    settings = stack_settings(tmp_path / "var")
    script = (
        "import time\n"
        "from kernel.settings import Settings\n"
        "from sealflow.stack import ensure_component, seaweed_component, spawn_reaper\n"
        "s = Settings.from_env()\n"
        "spawn_reaper(s)\n"
        "entry = ensure_component(s, seaweed_component(s), lambda _m: None)\n"
        "print(entry.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, **sealflow_env(settings)}
    owner = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    try:
        weed = psutil.Process(int(owner.stdout.readline()))
        assert weed.is_running()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        owner.stdout.close()
    weed.wait(timeout=30)  # raises TimeoutExpired if the reaper did not stop it
    deadline = time.monotonic() + 10
    while list(run_dir(settings).glob("*.pid.json")):  # the reaper removes the PID file right after
        assert time.monotonic() < deadline, "the reaper left the PID file"
        time.sleep(0.1)
