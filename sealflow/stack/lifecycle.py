"""``sealflow stack up|down|status`` and ``stack init``: start what is not running, stop what this
state directory started, say how each component is.

Decisions:

* **``up`` is idempotent**: a running component is left alone; leftovers of crashed components are
  reported and stopped first. The stores come first, then the platform simulator (and the filing
  key, so no filing task ever makes one), the TSA, the identity simulator and the Airflow home;
  Airflow's own components only with ``ui``.
* **Configured services are used, not started**: an external object store, replica, platform, TSA
  or identity register named in the settings replaces the embedded one.
* **The platform may fail alone**: the object store and Airflow still work and filing tasks report
  the platform as down.
* **``down`` stops Airflow first, then the services** (the stores last), and what each group forked.
* **``up(distributed=True)`` is the same sequence on the layout of ``sealflow.stack.layout``**
  (``cluster``): the SeaweedFS cluster instead of ``weed mini``, the databases on PostgreSQL, and
  Airflow on Celery with two workers always started. ``status`` and ``down`` find out from the
  stack's plan file, so they take no flag.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from kernel.objectstore import ensure_buckets, ensure_replica_bucket, replica_client, s3_client
from kernel.settings import Settings, check_state, local_url
from sealflow.root import with_stack_identity
from sealflow.stack import cluster, cluster_components, cluster_stores
from sealflow.stack.airflow_home import prepare_airflow
from sealflow.stack.components import (
    airflow_components,
    http_ok,
    identity_component,
    platform_component,
    replica_component,
    replica_ready,
    s3_ready,
    seaweed_component,
    tsa_component,
    write_ready_probe,
)
from sealflow.stack.orphans import describe, leftovers, prune_sessions, reap_leftovers, stack_processes, stop_processes
from sealflow.stack.paths import (
    AIRFLOW_COMPONENTS,
    CLUSTER_STORE_COMPONENTS,
    REPLICA,
    SERVICE_COMPONENTS,
    WORKER_COMPONENTS,
    StackError,
    embedded_replica,
    logs_dir,
    platform_db,
    require_identity_source,
)
from sealflow.stack.ports import check_ports
from sealflow.stack.processes import Component, Running, alive, launch, read_pid, stack_lock, stop_entries


def ensure_component(settings: Settings, comp: Component, out: Callable[[str], None]) -> Running:
    entry = alive(settings, comp.name)
    if entry is not None:
        out(f"{comp.name}: already running (pid {entry.pid})")
        return entry
    started = time.monotonic()
    entry = launch(settings, comp)
    out(f"{comp.name}: started (pid {entry.pid}{f', port {comp.port}' if comp.port else ''}) "
        f"in {time.monotonic() - started:.1f} s")
    return entry


def _pin_platform_certificate(settings: Settings, out: Callable[[str], None]) -> None:
    """Pin the simulator's receipt-signing certificate once, from the file the simulator made on this
    machine — never from its HTTP endpoint (filing.identity never replaces a pinned one)."""
    from filing.identity import pin_platform_certificate, platform_cert_path

    if platform_cert_path(settings).is_file():
        return
    try:
        pin_platform_certificate(settings, platform_db(settings).parent / "platform-cert.pem")
        out(f"platform: certificate pinned in {platform_cert_path(settings)}")
    except Exception as exc:  # filing still reports "run `sealflow filing setup`" when it needs it
        out(f"platform: certificate not pinned ({exc})")


def _ensure_filing_identity(settings: Settings, out: Callable[[str], None]) -> None:
    """The sending system's key for the stack's own simulator, made before any filing task runs: the
    tasks read the platform from the ``sealflow_platform`` connection and, like production, never make
    a key themselves (a cron run at start-up would otherwise fail and hold the DAG for a retry)."""
    from filing.identity import setup_system_identity

    setup_system_identity(settings)
    out(f"platform: filing key {settings.filing_key_id!r} ready")


def _ensure_identity(settings: Settings, out: Callable[[str], None]) -> None:
    if settings.identity_url:
        out(f"identity: not started, using the configured identity register {settings.identity_url}")
    else:
        ensure_component(settings, identity_component(settings), out)


def ensure_identity(settings: Settings, out: Callable[[str], None] = print) -> Settings:
    """Start the stack's identity simulator if it is not running (the demo needs it before the rest of
    the stack: its people are checked when their seals are applied for); returns
    :func:`with_stack_identity` of ``settings``. Refuses production without an identity register."""
    require_identity_source(settings)
    check_state(settings)
    check_ports(settings)
    with stack_lock(settings):
        _ensure_identity(settings, out)
    return with_stack_identity(settings)


def prepare_distributed(settings: Settings, out: Callable[[str], None]) -> tuple[Settings, cluster.ClusterPlan]:
    """The stack's plan (made on the first ``up``), checked; its databases made and Redis reachable.
    Returns the stack's settings (ports, SealFlow database) and the plan; a test calls it before ``up``
    to make the demo registry on the stack's database."""
    check_state(settings)  # the plan is the first file of a new home: private from the start
    plan = cluster.ensure_plan(settings)
    problems = cluster.port_problems(plan)
    if problems:
        raise StackError(f"ports of {cluster.plan_file(settings)} inside Linux's ephemeral range: "
                         f"{', '.join(problems)}; remove that file (after `sealflow stack down`) to choose others")
    cluster_stores.check_redis(plan)
    for name in cluster_stores.ensure_databases(plan):
        out(f"postgresql: database {name} created")
    cluster.write_env_file(settings, plan)
    return cluster.cluster_settings(settings, plan), plan


def _start_store(settings: Settings, plan: cluster.ClusterPlan | None, out: Callable[[str], None]) -> None:
    if settings.s3_endpoint:  # an external object store was configured: use it, start nothing
        out(f"seaweedfs: not started, using the configured endpoint {settings.s3_endpoint}")
    elif plan is not None:
        cluster_components.write_s3_config(settings)
        for comp in cluster_components.seaweed_components(settings, plan):
            ensure_component(settings, comp, out)
    else:
        ensure_component(settings, seaweed_component(settings), out)


def up(settings: Settings, ui: bool = False, out: Callable[[str], None] = print,
       distributed: bool = False) -> dict[str, Any]:
    """Start what is not running (idempotent) and return :func:`status`. ``distributed``: the layout
    of ``sealflow.stack.layout`` (``cluster``), Airflow included."""
    require_identity_source(settings)  # production without an identity register: refuse before anything runs
    check_state(settings)  # refuse an open state dir; what the stack creates is private (umask 077)
    plan = cluster.read_plan(settings) if not distributed else None
    if plan is not None:
        raise StackError(f"{settings.state_dir} holds a distributed stack: run `sealflow stack up --distributed`")
    if distributed:
        settings, plan = prepare_distributed(settings, out)
    check_ports(settings)
    with stack_lock(settings):
        reap_leftovers(settings, out)
        _start_store(settings, plan, out)
        ensure_buckets(s3_client(settings), settings)
        if not settings.s3_endpoint:
            write_ready_probe(settings)  # the next start waits until this object reads back
        if embedded_replica(settings):
            ensure_component(settings, replica_component(settings), out)
        elif settings.replica_enabled:
            out(f"{REPLICA}: not started, using the configured replica {settings.replica_s3_endpoint}")
        if settings.replica_enabled:
            ensure_replica_bucket(replica_client(settings), settings)
        if settings.platform_url:
            out(f"platform: not started, using the configured platform {settings.platform_url}")
        else:
            try:
                ensure_component(settings, platform_component(settings), out)
                _pin_platform_certificate(settings, out)
                _ensure_filing_identity(settings, out)
            except StackError as exc:
                # The object store and Airflow still work; filing tasks will report the platform as down.
                lines = str(exc).splitlines()
                out(f"platform: NOT started — {lines[0]} … {lines[-1].strip()}")
        if settings.tsa_url:
            out(f"tsa: not started, using the configured time-stamp authority {settings.tsa_url}")
        else:
            ensure_component(settings, tsa_component(settings), out)
        _ensure_identity(settings, out)
        if plan is not None:
            cluster_components.migrate_sealflow_db(settings)
            prepare_airflow(settings, out, env=cluster.cluster_env(settings, plan))
            for comp in cluster_components.airflow_cluster_components(settings, plan):
                ensure_component(settings, comp, out)
        else:
            prepare_airflow(settings, out)
            if ui:
                for comp in airflow_components(settings):
                    ensure_component(settings, comp, out)
    return status(settings)


def down(settings: Settings, out: Callable[[str], None] = print, only: Iterable[str] | None = None,
         grace: float = 20.0) -> list[str]:
    """Stop every component this state directory started: Airflow first, then the simulator and the store.

    ``only`` limits it to the named components (e.g. ``AIRFLOW_COMPONENTS`` to stop just the UI side).
    ``grace``: seconds between SIGTERM and SIGKILL (Airflow's components can take the whole 20 s; a
    test stack that is thrown away needs no graceful end).
    """
    stopped: list[str] = []
    wanted = None if only is None else set(only)
    with stack_lock(settings):
        for group in ((*AIRFLOW_COMPONENTS, *WORKER_COMPONENTS), (*SERVICE_COMPONENTS, *CLUSTER_STORE_COMPONENTS)):
            names = [name for name in group if wanted is None or name in wanted]
            entries = [e for e in (read_pid(settings, name) for name in names) if e is not None]
            running = stop_entries(settings, entries, timeout=grace)
            for entry in entries:
                if entry in running:
                    stopped.append(entry.name)
                    out(f"{entry.name}: stopped (pid {entry.pid})")
                else:
                    out(f"{entry.name}: was not running (stale pid file removed)")
            # What the group's components forked and left behind (a crashed scheduler's workers and tasks).
            orphans = stop_processes(stack_processes(settings, names), timeout=grace)
            if orphans:
                stopped.extend(sorted({m.component for m in orphans} - set(stopped)))
                out(f"stopped {len(orphans)} leftover processes — {describe(orphans)}")
        prune_sessions(settings)
    if not stopped:
        out("nothing was running")
    return stopped


def _monitor(settings: Settings) -> dict[str, Any]:
    """Airflow's own view of its components (heartbeats), via the api-server; {} when it is down."""
    url = local_url(settings.airflow_port, "/api/v2/monitor/health")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — local_url: http on loopback
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def status(settings: Settings) -> dict[str, Any]:
    """Each component with pid, port, health and log path; plus where things are."""
    components: dict[str, Any] = {}
    plan = cluster.read_plan(settings)
    if plan is not None:
        settings = cluster.cluster_settings(settings, plan)
    checks: dict[str, Callable[[], bool]] = {
        "seaweedfs": lambda: s3_ready(settings),
        REPLICA: lambda: replica_ready(settings),
        "platform": lambda: http_ok(f"{settings.resolved_platform_url}/v1/health"),
        "tsa": lambda: http_ok(local_url(settings.tsa_port, "/health")),
        "identity": lambda: http_ok(f"{with_stack_identity(settings).identity_url}/v1/health"),
        "api-server": lambda: http_ok(local_url(settings.airflow_port, "/api/v2/monitor/health")),
    }
    names: tuple[str, ...] = ("seaweedfs", REPLICA, "platform", "tsa", "identity", *AIRFLOW_COMPONENTS)
    if plan is not None:
        checks.update(cluster_components.health_checks(settings, plan))
        names = (*(s.component for s in cluster.layout.SEAWEED_SERVICES), *names[1:], *WORKER_COMPONENTS)
    for name in names:
        entry = alive(settings, name)
        if entry is None:
            components[name] = {"state": "stopped", "pid": None, "port": None, "healthy": False}
            continue
        if name in checks:
            healthy = checks[name]()
        else:
            healthy = _monitor(settings).get(name.replace("-", "_"), {}).get("status") == "healthy"
        components[name] = {"state": "running", "pid": entry.pid, "port": entry.port, "healthy": healthy,
                            "log": entry.log}
    return {
        "state_dir": str(settings.state_dir),
        "s3_endpoint": settings.resolved_s3_endpoint,
        "buckets": {"work": settings.work_bucket, "archive": settings.archive_bucket},
        "archive_replica": ({"endpoint": settings.resolved_replica_endpoint, "bucket": settings.resolved_replica_bucket}
                            if settings.replica_enabled else None),
        "platform_url": settings.resolved_platform_url,
        "tsa_url": settings.resolved_tsa_url,
        "identity_url": with_stack_identity(settings).identity_url or "(none configured: seals are refused)",
        "airflow_home": str(settings.airflow_home),
        "airflow_url": local_url(settings.airflow_port),
        "logs": str(logs_dir(settings)),
        "components": components,
        "leftovers": [asdict(m) for m in leftovers(settings)],
        "distributed": None if plan is None else {
            "queue": plan.queue, "redis": plan.redis_url, "redis_key_prefix": plan.redis_prefix,
            "databases": {role: plan.database(role) for role in cluster.layout.DATABASES}},
    }


def init_services(settings: Settings, timeout: float = 120.0, out: Callable[[str], None] = print) -> None:
    """Prepare external services (production, compose's airflow-init): migrate the SealFlow database
    and create the buckets once the object store answers. Idempotent."""
    from sealflow import root

    require_identity_source(settings)
    with root.database(settings.resolved_database_url) as sessions:
        url = sessions.kw["bind"].url
    out(f"database migrated: {url.render_as_string(hide_password=True)}")
    deadline = time.monotonic() + timeout
    while not s3_ready(settings):
        if time.monotonic() > deadline:
            raise StackError(f"object store {settings.resolved_s3_endpoint} did not answer within {timeout:.0f} s")
        time.sleep(1)
    ensure_buckets(s3_client(settings), settings)
    out(f"buckets ready at {settings.resolved_s3_endpoint}: {settings.work_bucket}, {settings.archive_bucket}")
    if settings.replica_enabled:
        while not replica_ready(settings):
            if time.monotonic() > deadline:
                raise StackError(f"archive replica {settings.resolved_replica_endpoint} did not answer within "
                                 f"{timeout:.0f} s (or set SEALFLOW_REPLICA_ENABLED=false to archive to one store)")
            time.sleep(1)
        ensure_replica_bucket(replica_client(settings), settings)
        out(f"archive replica ready at {settings.resolved_replica_endpoint}: {settings.resolved_replica_bucket}")


def start_components(settings: Settings, names: Iterable[str], out: Callable[[str], None] = print) -> None:
    """Start only the named Airflow components (e.g. the api-server for keepers' answers in tests)."""
    wanted = set(names)
    check_ports(settings)
    with stack_lock(settings):
        reap_leftovers(settings, out, wanted)
        prepare_airflow(settings, out)
        for comp in airflow_components(settings):
            if comp.name in wanted:
                ensure_component(settings, comp, out)
