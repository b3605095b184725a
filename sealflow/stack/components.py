"""What the stack runs: one :class:`Component` per process — SeaweedFS and its replica, the
national-platform simulator, the time-stamp authority, the identity registers' simulator and
Airflow's four — with its command, port, environment and health check.

Decisions:

* **Everything bound to 127.0.0.1**, each component with a working directory of its own.
* **Healthy means answering** its own health endpoint (S3 ``list_buckets`` for the stores); a
  component without a port (scheduler, dag-processor, triggerer) is healthy once it survived a
  short grace period (``processes.launch``).
* **The platform simulator trusts only the state's CA** for senders (:func:`sender_trust`), the CA
  that issues the filing system's certificate.
* **The API server gets 300 s to answer**: it imports all of Airflow and its plugins first, which on
  a loaded machine took over 120 s.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from kernel.objectstore import replica_client, s3_client
from kernel.settings import Settings, local_url
from sealflow.root import stack_identity_url
from sealflow.stack.airflow_home import airflow_env
from sealflow.stack.paths import REPLICA, platform_db, sealflow_env, seaweed_dir, venv_bin
from sealflow.stack.processes import Component


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback URLs
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


READY_PROBE = ".sealflow/ready"


def s3_ready(settings: Settings) -> bool:
    """The store answers AND serves data: after a restart SeaweedFS lists buckets before its volume server
    has reported its volumes, and a read in that window fails with InternalError. So once ``up`` has
    written the probe object to the work bucket, ready means that object can be read back."""
    from botocore.exceptions import ClientError

    try:
        client = s3_client(settings, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3)
        client.list_buckets()
        client.get_object(Bucket=settings.work_bucket, Key=READY_PROBE)["Body"].read()
        return True
    except ClientError as exc:  # a fresh store: no bucket or no probe yet, nothing to wait for
        return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchBucket", "404")
    except Exception:  # any other error means "not ready yet"; the caller times out with the log tail
        return False


def write_ready_probe(settings: Settings) -> None:
    """The object :func:`s3_ready` reads back on the next start (the work bucket is never locked)."""
    s3_client(settings).put_object(Bucket=settings.work_bucket, Key=READY_PROBE, Body=b"ready\n")


def replica_ready(settings: Settings) -> bool:
    try:
        replica_client(settings, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3).list_buckets()
        return True
    except Exception:  # any error means "not ready yet"; the caller times out with the log tail
        return False


def _weed_argv(data: Path, s3: int, master: int, filer: int, volume: int, admin: int) -> list[str]:
    return [
        str(venv_bin() / "weed"), "mini",
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
        f"-admin.port={admin}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.port={s3}", f"-master.port={master}", f"-filer.port={filer}", f"-volume.port={volume}",
    ]


def _weed_env(access_key: str, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key})
    return env


def seaweed_component(settings: Settings) -> Component:
    data = seaweed_dir(settings)
    argv = _weed_argv(data, settings.s3_port, settings.master_port, settings.filer_port, settings.volume_port,
                      settings.seaweed_admin_port)
    env = _weed_env(settings.s3_access_key, settings.s3_secret_key)
    return Component("seaweedfs", argv, settings.s3_port, env, lambda: s3_ready(settings), 60.0, data)


def replica_component(settings: Settings) -> Component:
    """The archive replica: a second, independent SeaweedFS (own ports, own data folder, own process)."""
    data = settings.resolved_replica_data_dir
    argv = _weed_argv(data, settings.replica_s3_port, settings.replica_master_port, settings.replica_filer_port,
                      settings.replica_volume_port, settings.replica_admin_port)
    env = _weed_env(settings.replica_s3_access_key or settings.s3_access_key,
                    settings.replica_s3_secret_key or settings.s3_secret_key)
    return Component(REPLICA, argv, settings.replica_s3_port, env, lambda: replica_ready(settings), 60.0, data)


def sender_trust(settings: Settings) -> list[Path]:
    """What the simulator trusts for senders: the state's demo CA, root and intermediate (made if missing)."""
    from gmpki.pki.ca import DemoCA

    directory = settings.state_dir / "ca"
    DemoCA.create(directory)
    return [directory / "ca-root.pem", directory / "ca-intermediate.pem"]


def platform_component(settings: Settings) -> Component:
    db = platform_db(settings)
    # Senders must chain to the state's demo CA (the one that issues the filing system's certificate).
    argv = [sys.executable, "-m", "filing.simulator", "--host", "127.0.0.1",
            "--port", str(settings.platform_port), "--db", str(db)]
    for pem_file in sender_trust(settings):
        argv += ["--trust", str(pem_file)]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = f"{settings.resolved_platform_url}/v1/health"
    return Component("platform", argv, settings.platform_port, env, lambda: http_ok(url), 30.0, db.parent)


def tsa_component(settings: Settings) -> Component:
    """The embedded time-stamp authority (stamping.tsa.server), certified by the stack's CA."""
    directory = settings.state_dir / "tsa"
    argv = [sys.executable, "-m", "stamping.tsa.server", "--host", "127.0.0.1", "--port", str(settings.tsa_port),
            "--dir", str(directory), "--ca", str(settings.state_dir / "ca")]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = local_url(settings.tsa_port, "/health")
    return Component("tsa", argv, settings.tsa_port, env, lambda: http_ok(url), 30.0, directory)


def identity_component(settings: Settings) -> Component:
    """The identity registers' simulator (stamping.registry.identity_simulator) on the stack's register
    file, which :func:`stamping.registry.identity_register.register` fills and the simulator re-reads."""
    data = settings.identity_register_file
    argv = [sys.executable, "-m", "stamping.registry.identity_simulator", "--host", "127.0.0.1",
            "--port", str(settings.identity_port), "--data", str(data)]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = f"{stack_identity_url(settings)}/v1/health"
    return Component("identity", argv, settings.identity_port, env, lambda: http_ok(url), 30.0, data.parent)


# The API server imports all of Airflow and its plugins before it answers: on a loaded machine
# (a shared CI runner) that took over 120 s. A healthy start returns as soon as it answers.
API_SERVER_STARTUP_S = 300.0


def airflow_components(settings: Settings) -> list[Component]:
    env = airflow_env(settings)
    airflow = str(venv_bin() / "airflow")
    health = local_url(settings.airflow_port, "/api/v2/monitor/health")
    api_up = lambda: http_ok(health)  # noqa: E731
    home = settings.airflow_home
    return [
        Component("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.airflow_port)],
                  settings.airflow_port, env, api_up, API_SERVER_STARTUP_S, home),
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"], None, env, lambda: True, 60.0, home),
        Component("dag-processor", [airflow, "dag-processor"], None, env, lambda: True, 60.0, home),
        Component("triggerer", [airflow, "triggerer", "--skip-serve-logs"], None, env, lambda: True, 60.0, home),
    ]
