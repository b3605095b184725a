"""Where the embedded stack keeps things and what it is called: the state directory's run, log and
data folders, the component names, the child environment, and the two errors of the stack.

Decisions:

* **Everything under the state directory** (``run/`` PID files, ``logs/``, ``seaweedfs/``,
  ``platform/``), so that two stacks with two homes never see each other.
* **A child process gets the settings as ``SEALFLOW_*`` variables** (:func:`sealflow_env`), the
  one way settings cross a process boundary; secrets the stack writes are 0600 files written
  atomically (:func:`write_private`).
* **Production without an identity register does not start** (:func:`require_identity_source`):
  nothing could check who applies for or uses a seal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from kernel.files import write_atomic
from kernel.settings import Settings
from sealflow.stack import layout

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"
ADMIN_USER = "admin"
DEMO_KEEPER = "keeper"  # stamping.registry.demo.KEEPER: the Airflow user is the registry user name
S3_CONN_ID = "sealflow_s3"
PLATFORM_CONN_ID = "sealflow_platform"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
REPLICA = "seaweedfs-replica"  # the second SeaweedFS holding the archive replica
# The stack's own services besides Airflow, in the order `down` stops them (the stores last).
SERVICE_COMPONENTS = ("platform", "tsa", "identity", "seaweedfs", REPLICA)
# The distributed stack's own (sealflow.stack.layout): Celery workers stop with Airflow, the SeaweedFS
# cluster with the services.
WORKER_COMPONENTS = tuple(s.component for s in layout.WORKERS)
CLUSTER_STORE_COMPONENTS = tuple(s.component for s in reversed(layout.SEAWEED_SERVICES))  # the gateway first
ALL_COMPONENTS = (*AIRFLOW_COMPONENTS, *WORKER_COMPONENTS, *SERVICE_COMPONENTS, *CLUSTER_STORE_COMPONENTS)

# Processes started by this Python process, kept referenced so they are reaped, not warned about.
CHILDREN: dict[int, subprocess.Popen] = {}


class StackError(RuntimeError):
    """A stack component could not be started or stopped; the message says which and why."""


class IdentityNotConfigured(StackError):
    """Production without an identity register: nothing could check who applies for or uses a seal."""


def run_dir(settings: Settings) -> Path:
    return settings.state_dir / "run"


def logs_dir(settings: Settings) -> Path:
    return settings.state_dir / "logs"


def seaweed_dir(settings: Settings) -> Path:
    return settings.state_dir / "seaweedfs"


def platform_db(settings: Settings) -> Path:
    return settings.state_dir / "platform" / "platform.db"


def venv_bin() -> Path:
    """The bin directory of the running interpreter (the venv holding airflow and weed)."""
    return Path(sys.executable).parent


def write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically (secrets: JWT key, Fernet key, UI password)."""
    write_atomic(path, text.encode())


def sealflow_env(settings: Settings) -> dict[str, str]:
    """``SEALFLOW_*`` variables reproducing ``settings`` in a child process (home made absolute)."""
    env: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name == "home":
            value = str(settings.state_dir)
        elif isinstance(value, tuple):
            value = os.pathsep.join(value)
        if value in ("", ()):
            continue
        env[f"SEALFLOW_{f.name.upper()}"] = str(value)
    return env


def require_identity_source(settings: Settings) -> None:
    """Refuse to start a non-embedded install that has no identity register to check people against."""
    if not settings.embedded and not settings.identity_url:
        raise IdentityNotConfigured(
            "no identity register configured: this install is not the embedded stack (SEALFLOW_S3_ENDPOINT is "
            "set), so applying for or using a seal must check people and units against the data-sharing "
            "platform — set SEALFLOW_IDENTITY_URL to its identity service (docs/identities.md)")


def embedded_replica(settings: Settings) -> bool:
    """Whether this stack runs the replica itself (replication on, no external replica endpoint)."""
    return settings.replica_enabled and not settings.replica_s3_endpoint
