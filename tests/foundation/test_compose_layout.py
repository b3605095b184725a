"""docker-compose.yml and ``sealflow stack up --distributed`` describe the same layout — the one of
``sealflow.stack.layout`` — so they cannot drift: the same services, executor, broker, databases,
buckets, settings, secrets, SeaweedFS flags and worker shares. Compose itself is not run here (no
Docker engine on this machine): the file is parsed and compared with the layout, and the launcher's
own environments and commands are built (no process started) and compared with it too."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kernel.settings import Settings
from sealflow.stack import layout
from sealflow.stack.cluster import (
    OTHER_PORTS,
    SEAWEED_PORTS,
    ClusterPlan,
    cluster_env,
    cluster_settings,
    worker_env,
)
from sealflow.stack.cluster_components import seaweed_components

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = [s.compose for s in (*layout.AIRFLOW_SERVICES, *layout.WORKERS)]
SEAWEED_SUBCOMMANDS = {"weed-master": "master", "weed-volume-1": "volume", "weed-volume-2": "volume",
                       "weed-filer": "filer", "weed-s3": "s3"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture
def launcher(tmp_path: Path) -> tuple[Settings, ClusterPlan]:
    """A distributed stack's settings and plan, as ``up --distributed`` makes them (nothing started)."""
    settings = Settings(home=tmp_path / "var", kek="00" * 32)
    settings.state_dir.mkdir(mode=0o700)
    ports = {name: 21000 + i for i, name in enumerate((*SEAWEED_PORTS, *OTHER_PORTS))}
    plan = ClusterPlan(ports, "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", "redis://127.0.0.1:6379/0",
                       "0123456789ab")
    return cluster_settings(settings, plan), plan


def _default(value: str) -> str:
    """The default of a compose ``${VAR:-default}`` value (the value itself when it has none)."""
    match = re.fullmatch(r"\$\{[A-Z0-9_]+:-(.*)\}", value)
    return match.group(1) if match else value


def _flags(argv: list[str]) -> dict[str, str]:
    return dict(arg.lstrip("-").split("=", 1) for arg in argv if arg.startswith("-") and "=" in arg)


def test_compose_runs_the_layouts_services_and_only_the_declared_extras(compose):
    assert set(compose["services"]) == {s.compose for s in layout.SERVICES} | set(layout.COMPOSE_ONLY)


def test_every_airflow_service_has_the_layouts_executor_broker_databases_and_settings(compose):
    for name in AIRFLOW:
        env = compose["services"][name]["environment"]
        for key, value in layout.AIRFLOW_SETTINGS.items():
            assert env.get(key) == value, (name, key)
        missing = [key for key in layout.DEPLOYMENT_SETTINGS if key not in env]
        assert not missing, (name, missing)
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).scheme == layout.BROKER_SCHEME
        # the database is the URL's last part (compose's ${VAR:?...} holds a "?", no URL parser applies)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[1] == "airflow"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["SEALFLOW_DATABASE_URL"].rsplit("/", 1)[1] == "sealflow"
        assert set(layout.DATABASES) == {"airflow", "sealflow"}
        for key, bucket in layout.BUCKET_SETTINGS.items():
            assert _default(env[key]) == bucket, (name, key)


def test_the_launchers_airflow_environment_is_the_layouts(launcher):
    settings, plan = launcher
    env = cluster_env(settings, plan)
    for key, value in layout.AIRFLOW_SETTINGS.items():
        assert env[key] == value, key
    assert not [key for key in layout.DEPLOYMENT_SETTINGS if key not in env]
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).scheme == layout.BROKER_SCHEME
    # the same roles as compose's databases, named for this stack
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == plan.database_url("airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + plan.database_url("airflow")
    assert env["SEALFLOW_DATABASE_URL"] == plan.database_url("sealflow")
    for key, bucket in layout.BUCKET_SETTINGS.items():
        assert env[key] == bucket


def test_secrets_are_compose_secrets_and_the_launchers_files(compose, launcher):
    assert set(compose["secrets"]) == {s.compose for s in layout.SECRET_FILES} | {layout.S3_CONFIG_SECRET}
    for name in AIRFLOW:
        service = compose["services"][name]
        for secret in layout.SECRET_FILES:
            assert service["environment"][secret.setting] == f"/run/secrets/{secret.compose}", name
            assert secret.compose in service["secrets"], name
    s3 = compose["services"]["s3"]
    assert layout.S3_CONFIG_SECRET in s3["secrets"]
    assert f"-config=/run/secrets/{layout.S3_CONFIG_SECRET}" in s3["command"].split()
    settings, plan = launcher
    env = worker_env(settings, plan, layout.WORKERS[0].component)
    for secret in layout.SECRET_FILES:
        assert env[secret.setting] == str(getattr(settings, secret.resolved))


def test_seaweedfs_runs_with_the_same_servers_and_flags_in_both(compose, launcher):
    settings, plan = launcher
    argvs = {comp.name: comp.argv for comp in seaweed_components(settings, plan)}
    for service in layout.SEAWEED_SERVICES:
        command = shlex.split(compose["services"][service.compose]["command"])
        launched = argvs[service.component]
        assert command[0] == launched[1] == SEAWEED_SUBCOMMANDS[service.component]
        for flags in (_flags(command), _flags(launched)):
            assert {k: flags.get(k) for k in layout.SEAWEED_FLAGS[service.component]} == \
                layout.SEAWEED_FLAGS[service.component], service
    assert layout.SEAWEED_FLAGS["weed-master"]["defaultReplication"] == layout.REPLICATION == "001"


def test_each_worker_mounts_its_own_state_and_exactly_the_shared_folders(compose):
    services = compose["services"]
    own: dict[str, set[str]] = {}
    for name in (s.compose for s in layout.WORKERS):
        volumes = services[name]["volumes"]
        shared = {v["volume"]["subpath"]: v["read_only"] for v in volumes
                  if isinstance(v, dict) and v["source"] == "sealflow-state"}
        assert shared == {s.name: s.read_only for s in layout.WORKER_SHARES}, name
        assert all(v["target"] == f"/opt/sealflow/var/{v['volume']['subpath']}" for v in volumes if isinstance(v, dict))
        own[name] = {v.split(":")[0] for v in volumes if isinstance(v, str) and not v.startswith(".")}
        assert "sealflow-state" not in own[name] and "airflow-logs" not in own[name], name
    first, second = own.values()
    assert first and second and not first & second  # no volume of a worker's own is the other's
    for name, service in services.items():  # nor anyone else's
        if name not in own:
            used = {v.split(":")[0] for v in service.get("volumes", []) if isinstance(v, str)}
            assert not used & (first | second), name
    init = "\n".join(services["airflow-init"]["command"])
    made = next(line for line in init.splitlines() if line.strip().startswith("install -d -m 700 /opt/sealflow/var/"))
    assert {p.rsplit("/", 1)[1] for p in made.split()[4:]} == {s.name for s in layout.WORKER_SHARES}
