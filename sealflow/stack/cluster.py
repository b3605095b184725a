"""The distributed stack on one machine (``sealflow stack up --distributed``): the layout of
``sealflow.stack.layout`` on loopback — this stack's plan and the environments of its Airflow
processes. Its PostgreSQL databases and Redis keys are ``cluster_stores``; its processes
``cluster_components``.

Decisions:

* **A plan per stack, made once** (:func:`ensure_plan`, ``run/cluster.json``): one free block of
  ports (each SeaweedFS port's gRPC companion + 10000 free too, all below Linux's ephemeral range:
  ``ports.free_port_block``), the PostgreSQL database names ``sf_<stack>_airflow`` /
  ``sf_<stack>_sealflow`` and the Redis key prefix and Celery queue ``sealflow-<stack>``, where
  ``<stack>`` is the digest of the state directory that also tags its processes. Two stacks on one
  machine therefore never share a port, a database, a queue or a Redis key; ``status`` and ``down``
  read the plan, so they need no flag; ``run/cluster.env`` points other ``sealflow`` commands at it.
* **A worker's own state** (:func:`worker_home`): ``<state>/workers/<name>/`` is its SealFlow home,
  its Airflow home and logs, its scratch (``TMPDIR``); it reaches the shared folders of
  ``layout.WORKER_SHARES`` through links (mounts on several machines) and the secret files of
  ``layout.SECRET_FILES`` through settings — nothing else of the stack's state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from kernel.settings import Settings
from sealflow.stack import layout
from sealflow.stack.airflow_home import airflow_env, auth_env
from sealflow.stack.paths import run_dir, write_private
from sealflow.stack.ports import SEAWEED_GRPC_OFFSET, ephemeral_range, free_port_block
from sealflow.stack.processes import stack_tag

# The ports of a distributed stack, in the order a free block hands them out. SeaweedFS's come first:
# each of them also binds port + 10000 (gRPC), which the block keeps free too.
SEAWEED_PORTS = (*(s.component for s in layout.SEAWEED_SERVICES), "replica_s3_port", "replica_master_port",
                 "replica_filer_port", "replica_volume_port", "replica_admin_port")
OTHER_PORTS = ("platform_port", "tsa_port", "identity_port", "airflow_port",
               *(f"{s.component}-logs" for s in layout.WORKERS), "triggerer-logs")
# Plan ports that are Settings fields of the same meaning (the rest are the cluster's own).
SETTINGS_PORTS = {"weed-master": "master_port", "weed-volume-1": "volume_port", "weed-filer": "filer_port",
                  "weed-s3": "s3_port"}


@dataclass(frozen=True)
class ClusterPlan:
    """What one distributed stack uses besides its state directory: ports, databases, broker keys."""

    ports: dict[str, int]
    pg_dsn: str  # the server's maintenance database (where the launcher creates its own)
    redis_url: str
    stack: str  # digest of the state directory: names the databases, queue and Redis keys

    @property
    def queue(self) -> str:
        return f"sealflow-{self.stack}"

    @property
    def redis_prefix(self) -> str:
        return f"{self.queue}:"

    def database(self, role: str) -> str:
        return f"sf_{self.stack}_{role}"

    def database_url(self, role: str) -> str:
        parts = urlsplit(self.pg_dsn)
        return urlunsplit((parts.scheme, parts.netloc, f"/{self.database(role)}", parts.query, ""))


def plan_file(settings: Settings) -> Path:
    return run_dir(settings) / "cluster.json"


def read_plan(settings: Settings) -> ClusterPlan | None:
    """The plan ``up --distributed`` made for this state directory, or None (an embedded stack)."""
    try:
        return ClusterPlan(**json.loads(plan_file(settings).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def ensure_plan(settings: Settings) -> ClusterPlan:
    """This stack's plan: read, or made now on a free block of ports and written (0600)."""
    plan = read_plan(settings)
    if plan is not None:
        return plan
    names = (*SEAWEED_PORTS, *OTHER_PORTS)
    base = free_port_block(len(names))
    plan = ClusterPlan({name: base + i for i, name in enumerate(names)}, settings.cluster_pg_dsn,
                       settings.cluster_redis_url, stack_tag(settings, "").rstrip("/")[:12])
    write_private(plan_file(settings), json.dumps(asdict(plan)))
    return plan


def cluster_settings(settings: Settings, plan: ClusterPlan) -> Settings:
    """``settings`` with the plan's ports and the SealFlow database on PostgreSQL."""
    ports = {field: plan.ports[name] for name, field in SETTINGS_PORTS.items()}
    ports.update({name: port for name, port in plan.ports.items() if name.endswith("_port")})
    return settings.with_overrides(database_url=plan.database_url("sealflow"), **ports)


def env_file(settings: Settings) -> Path:
    return run_dir(settings) / "cluster.env"


def write_env_file(settings: Settings, plan: ClusterPlan) -> Path:
    """``SEALFLOW_*`` lines that point the CLI at this stack (its home, ports and SealFlow database):
    ``export SEALFLOW_CONFIG=<this file>`` and every ``sealflow`` command talks to it (0600)."""
    applied = cluster_settings(settings, plan)
    names = ["database_url", *SETTINGS_PORTS.values(), *(n for n in plan.ports if n.endswith("_port"))]
    lines = [f"SEALFLOW_HOME={settings.state_dir}",
             *(f"SEALFLOW_{name.upper()}={getattr(applied, name)}" for name in names)]
    path = env_file(settings)
    write_private(path, "\n".join(lines) + "\n")
    return path


def port_problems(plan: ClusterPlan) -> list[str]:
    """Plan ports (and SeaweedFS gRPC companions) inside Linux's ephemeral range; empty when all good."""
    low, high = ephemeral_range()
    wanted = [(name, port) for name, port in plan.ports.items()]
    wanted += [(f"{name} + {SEAWEED_GRPC_OFFSET}", plan.ports[name] + SEAWEED_GRPC_OFFSET) for name in SEAWEED_PORTS]
    return [f"{name} = {port}" for name, port in wanted if low <= port <= high]


def cluster_env(settings: Settings, plan: ClusterPlan, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow process of the distributed stack (:func:`airflow_env` on
    Celery, PostgreSQL and Redis); the API server adds the auth manager's users (:func:`api_server_env`),
    workers their own part (:func:`worker_env`). ``base``: as for :func:`airflow_env`."""
    env = airflow_env(settings, base, sign_in=False)  # the users: layout.AUTH_SERVICE's alone
    redis_url = urlsplit(plan.redis_url)
    env.update(layout.AIRFLOW_SETTINGS)
    env.update({
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": plan.database_url("airflow"),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + plan.database_url("airflow"),
        "AIRFLOW__CELERY__BROKER_URL": urlunsplit(redis_url),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": plan.queue,
        # Every key Celery writes starts with the stack's prefix: two stacks share no key, purge finds them.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": plan.redis_prefix,
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(plan.ports["worker-1-logs"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(plan.ports["triggerer-logs"]),
    })
    return env


def api_server_env(settings: Settings, plan: ClusterPlan, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The API server's environment: the stack's, with the users it signs in and their passwords file."""
    return {**cluster_env(settings, plan, base), **auth_env(settings)}


def service_env(settings: Settings, plan: ClusterPlan, component: str, base: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """The environment the launcher starts the Airflow ``component`` with (what the compose test compares)."""
    if component == layout.AUTH_SERVICE.component:
        return api_server_env(settings, plan, base)
    if component in {worker.component for worker in layout.WORKERS}:
        return worker_env(settings, plan, component, base)
    return cluster_env(settings, plan, base)


def worker_home(settings: Settings, name: str) -> Path:
    return settings.state_dir / "workers" / name


def prepare_worker_home(settings: Settings, name: str) -> Path:
    """The worker's own folders, and links to exactly the shared folders of ``layout.WORKER_SHARES``."""
    home = worker_home(settings, name)
    for folder in (home, home / "airflow" / "logs", home / "tmp"):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for share in layout.WORKER_SHARES:
        target, link = settings.state_dir / share.name, home / share.name
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not link.is_symlink():
            link.symlink_to(target, target_is_directory=True)
    return home


def worker_env(settings: Settings, plan: ClusterPlan, name: str, base: Mapping[str, str] | None = None
               ) -> dict[str, str]:
    """A worker's environment: the layout's, with its own home, logs, log-server port and scratch."""
    home = worker_home(settings, name)
    env = cluster_env(settings, plan, base)
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "airflow" / "logs"),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(plan.ports[f"{name}-logs"]),
        "SEALFLOW_HOME": str(home),
        "TMPDIR": str(home / "tmp"),
    })
    # The stack's secret files, by setting (their folder is not one of the shares).
    env.update({secret.setting: str(getattr(settings, secret.resolved)) for secret in layout.SECRET_FILES})
    return env
