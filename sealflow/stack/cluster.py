"""The distributed stack on one machine (``sealflow stack up --distributed``): the layout of
``sealflow.stack.layout`` as separate processes on loopback — SeaweedFS as a cluster, Airflow on
the CeleryExecutor with two workers, PostgreSQL and Redis as the only shared stores besides S3.

Decisions:

* **A plan per stack, made once** (:func:`ensure_plan`, ``run/cluster.json``): one free block of
  ports (each SeaweedFS port's gRPC companion + 10000 free too, all below Linux's ephemeral range:
  ``ports.free_port_block``), the PostgreSQL database names ``sf_<stack>_airflow`` /
  ``sf_<stack>_sealflow`` and the Redis key prefix and Celery queue ``sealflow-<stack>``, where
  ``<stack>`` is the digest of the state directory that also tags its processes. Two stacks on one
  machine therefore never share a port, a database, a queue or a Redis key; ``status`` and ``down``
  read the plan, so they need no flag.
* **The machine's PostgreSQL and Redis** (``SEALFLOW_CLUSTER_PG_DSN``, ``SEALFLOW_CLUSTER_REDIS_URL``)
  are used, never started; :func:`purge` drops exactly this stack's databases and Redis keys.
* **A worker's own state** (:func:`worker_home`): ``<state>/workers/<name>/`` is its SealFlow home,
  its Airflow home and logs, its scratch (``TMPDIR``); it reaches the shared folders of
  ``layout.WORKER_SHARES`` through links (mounts on several machines) and the KEK and MAC key
  files through settings — nothing else of the stack's state.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kernel.settings import Settings
from sealflow.stack import layout
from sealflow.stack.airflow_home import airflow_env
from sealflow.stack.components import API_SERVER_STARTUP_S, http_ok, s3_ready
from sealflow.stack.paths import StackError, run_dir, venv_bin, write_private
from sealflow.stack.ports import SEAWEED_GRPC_OFFSET, ephemeral_range, free_port_block
from sealflow.stack.processes import Component, stack_tag

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


# --- PostgreSQL and Redis: only this stack's databases and keys ----------------------------------

def _pg_admin(plan: ClusterPlan) -> Any:
    from sqlalchemy import create_engine

    return create_engine(plan.pg_dsn, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def ensure_databases(plan: ClusterPlan) -> list[str]:
    """Create this stack's databases (layout.DATABASES) that do not exist yet; returns those made."""
    from sqlalchemy import text

    made: list[str] = []
    engine = _pg_admin(plan)
    try:
        with engine.connect() as conn:
            for role in layout.DATABASES:
                name = plan.database(role)
                if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                    # a name we made (sf_<hex>_<role>): CREATE DATABASE takes no bind parameter
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    made.append(name)
    except Exception as exc:
        raise StackError(f"PostgreSQL at {plan.pg_dsn} did not let us create the stack's databases ({exc}); "
                         "start it, or set SEALFLOW_CLUSTER_PG_DSN to a server where this user may CREATE "
                         "DATABASE") from exc
    finally:
        engine.dispose()
    return made


def drop_databases(plan: ClusterPlan) -> None:
    from sqlalchemy import text

    engine = _pg_admin(plan)
    try:
        with engine.connect() as conn:
            for role in layout.DATABASES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{plan.database(role)}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _redis(plan: ClusterPlan) -> Any:
    import redis

    return redis.Redis.from_url(plan.redis_url, socket_connect_timeout=3, socket_timeout=5)


def check_redis(plan: ClusterPlan) -> None:
    try:
        _redis(plan).ping()
    except Exception as exc:
        raise StackError(f"Redis at {plan.redis_url} does not answer ({exc}); start it, or set "
                         "SEALFLOW_CLUSTER_REDIS_URL") from exc


def flush_redis(plan: ClusterPlan) -> int:
    """Delete this stack's Redis keys (its prefix) and nothing else; how many there were."""
    client = _redis(plan)
    keys = list(client.scan_iter(match=f"{plan.redis_prefix}*", count=500))
    return client.delete(*keys) if keys else 0


def purge(settings: Settings) -> None:
    """Forget a stopped distributed stack's shared stores: its databases, its Redis keys, its plan."""
    plan = read_plan(settings)
    if plan is None:
        return
    drop_databases(plan)
    flush_redis(plan)
    (settings.airflow_home / ".sealflow-prepared").unlink(missing_ok=True)
    plan_file(settings).unlink(missing_ok=True)


# --- the Airflow environment of the layout --------------------------------------------------------

def cluster_env(settings: Settings, plan: ClusterPlan) -> dict[str, str]:
    """The environment of every Airflow process of the distributed stack (:func:`airflow_env` on
    Celery, PostgreSQL and Redis); workers add their own part (:func:`worker_env`)."""
    env = airflow_env(settings)
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


def worker_env(settings: Settings, plan: ClusterPlan, name: str) -> dict[str, str]:
    """A worker's environment: the layout's, with its own home, logs, log-server port and scratch."""
    home = worker_home(settings, name)
    env = cluster_env(settings, plan)
    env.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", None)  # the api-server's, not a worker's
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


# --- the components ---------------------------------------------------------------------------------

def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def s3_identities(settings: Settings) -> dict[str, Any]:
    """The S3 gateway's credentials (``weed s3 -config``): the stack's key pair, with every action."""
    return {"identities": [{"name": "sealflow",
                            "credentials": [{"accessKey": settings.s3_access_key, "secretKey": settings.s3_secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}


def s3_config_file(settings: Settings) -> Path:
    return settings.state_dir / "seaweedfs" / "s3.json"


def write_s3_config(settings: Settings) -> None:
    """The gateway's credentials file (0600), written by ``up`` before the gateway starts."""
    write_private(s3_config_file(settings), json.dumps(s3_identities(settings)))


def _flags(component: str) -> list[str]:
    return [f"-{name}={value}" for name, value in layout.SEAWEED_FLAGS[component].items()]


def seaweed_components(settings: Settings, plan: ClusterPlan) -> list[Component]:
    """Master, two volume servers (same data center and rack: replication 001), filer, S3 gateway."""
    weed, data, ports = str(venv_bin() / "weed"), settings.state_dir / "seaweedfs", plan.ports
    master = f"127.0.0.1:{ports['weed-master']}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    config = s3_config_file(settings)
    loopback = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    comps = [Component("weed-master", [weed, "master", *loopback, f"-port={ports['weed-master']}",
                                       f"-mdir={data / 'master'}", *_flags("weed-master")],
                       ports["weed-master"], env, lambda: http_ok(f"http://{master}/cluster/status"), 60.0,
                       data / "master")]
    for service in layout.SEAWEED_VOLUMES:
        port = ports[service.component]
        comps.append(Component(service.component,
                               [weed, "volume", *loopback, f"-port={port}", f"-dir={data / service.component}",
                                f"-mserver={master}", *_flags(service.component)],
                               port, env, lambda p=port: http_ok(f"http://127.0.0.1:{p}/status"), 60.0,
                               data / service.component))
    filer = ports["weed-filer"]
    comps.append(Component("weed-filer", [weed, "filer", *loopback, f"-port={filer}", f"-master={master}",
                                          f"-defaultStoreDir={data / 'filer'}", *_flags("weed-filer")],
                           filer, env, lambda: tcp_open(filer), 60.0, data / "filer"))
    comps.append(Component("weed-s3", [weed, "s3", f"-filer=127.0.0.1:{filer}", "-ip.bind=127.0.0.1",
                                       f"-port={ports['weed-s3']}", f"-config={config}", *_flags("weed-s3")],
                           ports["weed-s3"], env, lambda: s3_ready(settings), 90.0, data))
    return comps


def airflow_cluster_components(settings: Settings, plan: ClusterPlan) -> list[Component]:
    """Api-server, scheduler, dag-processor and triggerer (serving its logs), then the two workers."""
    env = cluster_env(settings, plan)
    airflow = str(venv_bin() / "airflow")
    health = f"http://127.0.0.1:{settings.airflow_port}/api/v2/monitor/health"
    home = settings.airflow_home
    comps = [
        Component("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.airflow_port)],
                  settings.airflow_port, env, lambda: http_ok(health), API_SERVER_STARTUP_S, home),
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"], None, env, lambda: True, 60.0, home),
        Component("dag-processor", [airflow, "dag-processor"], None, env, lambda: True, 60.0, home),
        Component("triggerer", [airflow, "triggerer"], plan.ports["triggerer-logs"], env,
                  lambda: tcp_open(plan.ports["triggerer-logs"]), 120.0, home),
    ]
    for service in layout.WORKERS:
        name, port = service.component, plan.ports[f"{service.component}-logs"]
        argv = [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", plan.queue,
                "--concurrency", layout.AIRFLOW_SETTINGS["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
                "--without-mingle", "--without-gossip"]
        comps.append(Component(name, argv, port, worker_env(settings, plan, name),
                               lambda p=port: tcp_open(p), 180.0, prepare_worker_home(settings, name)))
    return comps


def health_checks(settings: Settings, plan: ClusterPlan) -> dict[str, Any]:
    """How ``status`` tells each cluster component is ready (the same checks ``up`` waits for)."""
    checks = {c.name: c.health for c in seaweed_components(settings, plan)}
    checks["triggerer"] = lambda: tcp_open(plan.ports["triggerer-logs"])
    for service in layout.WORKERS:
        checks[service.component] = lambda p=plan.ports[f"{service.component}-logs"]: tcp_open(p)
    return checks


def migrate_sealflow_db(settings: Settings) -> None:
    from sealflow import root

    with root.database(settings.resolved_database_url):
        pass
