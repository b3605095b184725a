"""The distributed stack's processes: the SeaweedFS cluster (master, two volume servers, filer, S3
gateway) and Airflow on Celery (api-server, scheduler, dag-processor, triggerer, two workers), as
:class:`~sealflow.stack.processes.Component` data that ``lifecycle`` starts like the embedded ones.

Decisions: the flags that make the layout come from ``layout.SEAWEED_FLAGS`` (compose has the same);
ready means what it means on the embedded stack — the S3 gateway serves the ready probe
(``components.s3_ready``), HTTP servers answer their status page, and a server whose only port is a
log server (triggerer, workers) accepts connections on it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from kernel.settings import Settings, local_url
from sealflow.stack import layout
from sealflow.stack.cluster import ClusterPlan, prepare_worker_home, service_env
from sealflow.stack.components import API_SERVER_STARTUP_S, http_ok, s3_ready
from sealflow.stack.paths import venv_bin, write_private
from sealflow.stack.processes import Component


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
                               port, env, lambda p=port: http_ok(local_url(p, "/status")), 60.0,
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
    def env(component: str) -> dict[str, str]:  # the API server's alone signs people in (layout.AUTH_SERVICE)
        return service_env(settings, plan, component)

    airflow = str(venv_bin() / "airflow")
    health = local_url(settings.airflow_port, "/api/v2/monitor/health")
    home = settings.airflow_home
    comps = [
        Component("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.airflow_port)],
                  settings.airflow_port, env("api-server"), lambda: http_ok(health), API_SERVER_STARTUP_S, home),
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"], None, env("scheduler"), lambda: True,
                  60.0, home),
        Component("dag-processor", [airflow, "dag-processor"], None, env("dag-processor"), lambda: True, 60.0, home),
        Component("triggerer", [airflow, "triggerer"], plan.ports["triggerer-logs"], env("triggerer"),
                  lambda: tcp_open(plan.ports["triggerer-logs"]), 120.0, home),
    ]
    for service in layout.WORKERS:
        name, port = service.component, plan.ports[f"{service.component}-logs"]
        argv = [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", plan.queue,
                "--concurrency", layout.AIRFLOW_SETTINGS["AIRFLOW__CELERY__WORKER_CONCURRENCY"],
                "--without-mingle", "--without-gossip"]
        comps.append(Component(name, argv, port, env(name),
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
