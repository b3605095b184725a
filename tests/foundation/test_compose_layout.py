"""docker-compose.yml and ``sealflow stack up --distributed`` describe the same layout — the one of
``sealflow.stack.layout`` — so they cannot drift: the same services, executor, broker, databases,
buckets, auth manager, settings, secrets, SeaweedFS flags and worker shares, and every other variable of
an Airflow service's environment either equal on both sides, a value per deployment, or declared as one
side's own with the reason. Compose itself is not run here (no Docker engine on this machine): the file
is parsed and compared with the layout, and the launcher's own environments and commands are built (no
process started) and compared with it too."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kernel.objectstore import CHECKSUM_ENV
from kernel.settings import Settings
from sealflow.stack import layout
from sealflow.stack.airflow_home import auth_users, connection_specs, passwords_file
from sealflow.stack.cluster import (
    OTHER_PORTS,
    SEAWEED_PORTS,
    ClusterPlan,
    cluster_env,
    cluster_settings,
    service_env,
    worker_env,
)
from sealflow.stack.cluster_components import seaweed_components

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = (*layout.AIRFLOW_SERVICES, *layout.WORKERS)
AIRFLOW = [s.compose for s in AIRFLOW_SERVICES]
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


def _substituted(value: str) -> str:
    """A compose value with every ``${VAR:-default}`` replaced by its default and every ``${VAR:?…}`` (a value
    the deployment must give) by ``<VAR>``."""
    value = re.sub(r"\$\{([A-Z0-9_]+):\?[^}]*\}", r"<\1>", value)
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


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


def _launched(launcher: tuple[Settings, ClusterPlan], component: str) -> dict[str, str]:
    """The environment ``up --distributed`` starts ``component`` with, nothing inherited from this process."""
    settings, plan = launcher
    return service_env(settings, plan, component, base={})


def _installed_source(dotted: str) -> str:
    """The source of the installed module ``dotted``, found in the installed distributions' file lists —
    not imported (importing Airflow here would set up an Airflow home of its own)."""
    from importlib.metadata import distributions

    wanted = dotted.replace(".", "/") + ".py"
    for dist in distributions():
        for file in dist.files or []:
            if str(file) == wanted:
                return Path(file.locate()).read_text()
    raise AssertionError(f"{dotted} is not installed: no auth manager can be run that is not installed")


def test_the_auth_manager_is_declared_once_installed_and_run_by_every_airflow_process(compose, launcher):
    module, _, name = layout.AUTH_MANAGER.rpartition(".")
    assert f"class {name}(" in _installed_source(module)
    for service in AIRFLOW_SERVICES:
        compose_env = compose["services"][service.compose]["environment"]
        assert compose_env["AIRFLOW__CORE__AUTH_MANAGER"] == layout.AUTH_MANAGER, service.compose
        assert _launched(launcher, service.component)["AIRFLOW__CORE__AUTH_MANAGER"] == layout.AUTH_MANAGER


def test_only_the_api_server_signs_people_in_and_both_take_its_users_from_the_registry(compose, launcher):
    settings, _plan = launcher
    signing_in = {layout.AUTH_USERS_SETTING, layout.AUTH_PASSWORDS_SETTING}
    for service in AIRFLOW_SERVICES:
        launched = _launched(launcher, service.component)
        compose_env = compose["services"][service.compose]["environment"]
        if service != layout.AUTH_SERVICE:
            assert not signing_in & (set(launched) | set(compose_env)), service
    launched = _launched(launcher, layout.AUTH_SERVICE.component)
    assert launched[layout.AUTH_USERS_SETTING] == auth_users(settings) == "admin:admin"  # no registry yet
    assert launched[layout.AUTH_PASSWORDS_SETTING] == str(passwords_file(settings))
    api = compose["services"][layout.AUTH_SERVICE.compose]
    home = Settings(home=Path(api["environment"]["SEALFLOW_HOME"]))
    assert api["environment"][layout.AUTH_PASSWORDS_SETTING] == str(passwords_file(home))
    # compose's API server asks the same command for its users before it starts (and fails if it fails)
    assert _started_with(api) == {layout.AUTH_USERS_SETTING: " ".join(layout.AUTH_USERS_COMMAND)}


def _started_with(service: dict) -> dict[str, str]:
    """What a service's start script exports from a command's output (``{variable: command}``), for a
    service that starts through ``/bin/bash -c`` and ends in the image's entrypoint; {} for any other."""
    if service.get("entrypoint") != "/bin/bash" or service["command"][0] != "-c":
        return {}
    script = [line.strip() for line in service["command"][1].replace("$$", "$").splitlines() if line.strip()]
    assert script[0] == "set -e" and script[-1].startswith("exec /entrypoint "), script
    outputs = {m[1]: m[2] for line in script if (m := re.fullmatch(r'(\w+)="\$\((.+)\)"', line))}
    return {m[1]: outputs[m[2]] for line in script if (m := re.fullmatch(r'export (\w+)="\$(\w+)"', line))}


def test_the_auth_users_command_is_the_clis(capsys, tmp_path, monkeypatch):
    from kernel.settings import get_settings
    from sealflow.cli import main

    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.delenv("SEALFLOW_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert layout.AUTH_USERS_COMMAND[0] == "sealflow"
        assert main(list(layout.AUTH_USERS_COMMAND[1:])) == 0
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().out.strip() == "admin:admin"  # no registry yet: the administrator alone
    passwords = passwords_file(Settings(home=tmp_path / "var"))
    assert "admin" in json.loads(passwords.read_text()) and passwords.stat().st_mode & 0o077 == 0


def _as_env(value: object) -> str:
    """A setting's value as ``sealflow_env`` passes it to a child process."""
    import os

    return os.pathsep.join(value) if isinstance(value, tuple) else str(value)


def _differences(compose_env: dict, launched: dict[str, str]) -> list[str]:
    """Every way the two environments of one service differ that the layout does not account for."""
    per_deployment = {*layout.DEPLOYMENT_SETTINGS, *layout.WORKER_OWN_SETTINGS, layout.AUTH_USERS_SETTING,
                      layout.AUTH_PASSWORDS_SETTING}
    compose_own, launcher_own = set(layout.COMPOSE_OWN_SETTINGS), set(layout.LAUNCHER_OWN_SETTINGS)
    defaults = {f"SEALFLOW_{f.name.upper()}": _as_env(getattr(Settings(), f.name)) for f in fields(Settings)}
    found = [f"{key}: only compose sets it" for key in sorted(set(compose_env) - set(launched) - compose_own)]
    # a SealFlow setting compose leaves out is the default in its containers: the launcher's must be too
    found += [f"{key}: only the launcher sets it ({launched[key]!r})"
              for key in sorted(set(launched) - set(compose_env) - launcher_own)
              if defaults.get(key) != launched[key]]
    found += [f"{key}: compose {compose_env[key]!r}, launcher {launched[key]!r}"
              for key in sorted(set(compose_env) & set(launched) - compose_own - per_deployment)
              if _substituted(str(compose_env[key])) != launched[key]]
    return found


def test_every_variable_of_an_airflow_service_is_the_same_in_both_or_declared_as_one_sides_own(compose, launcher):
    for service in AIRFLOW_SERVICES:
        compose_env = {**compose["services"][service.compose]["environment"],
                       **_started_with(compose["services"][service.compose])}
        launched = _launched(launcher, service.component)
        assert not _differences(compose_env, launched), (service.compose, _differences(compose_env, launched))
        assert compose_env["PYTHONPATH"].endswith("/plugins") and launched["PYTHONPATH"].endswith("/plugins")


def test_a_setting_that_drifts_on_either_side_is_found(compose, launcher):
    """The comparison above can fail: an auth manager, a scheduler bound or a variable added on one side."""
    api = layout.AUTH_SERVICE
    compose_env = {**compose["services"][api.compose]["environment"], **_started_with(compose["services"][api.compose])}
    launched = _launched(launcher, api.component)
    fab = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert _differences({**compose_env, "AIRFLOW__CORE__AUTH_MANAGER": fab}, launched) == [
        f"AIRFLOW__CORE__AUTH_MANAGER: compose {fab!r}, launcher {layout.AUTH_MANAGER!r}"]
    heartbeat = "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"
    assert _differences({k: v for k, v in compose_env.items() if k != heartbeat}, launched) == [
        f"{heartbeat}: only the launcher sets it ('60')"]
    assert _differences(compose_env, {**launched, "AIRFLOW__CORE__PARALLELISM": "64"}) == [
        "AIRFLOW__CORE__PARALLELISM: only the launcher sets it ('64')"]
    assert _differences(compose_env, {**launched, "SEALFLOW_STAMP_CHUNK_SIZE": "7"}) == [
        "SEALFLOW_STAMP_CHUNK_SIZE: only the launcher sets it ('7')"]


def test_the_schedulers_fault_bounds_are_the_same_sealflow_settings_in_both(compose, launcher, tmp_path):
    settings, plan = launcher
    defaults = Settings()
    for service in AIRFLOW_SERVICES:
        compose_env = compose["services"][service.compose]["environment"]
        for key, field in layout.AIRFLOW_FROM_SETTINGS.items():
            assert compose_env[key] == f"${{SEALFLOW_{field.upper()}:-{getattr(defaults, field)}}}", (service, key)
    tuned = settings.with_overrides(airflow_heartbeat_timeout_s=40, airflow_queued_timeout_s=90)
    env = cluster_env(tuned, plan, base={})
    assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == "40"
    assert env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"] == "90"


def test_compose_connections_are_the_ones_up_stores_in_the_metadata_database(compose, launcher):
    settings, _plan = launcher
    specs = {spec["conn_id"]: spec for spec in connection_specs(settings)}
    for name in AIRFLOW:
        env = compose["services"][name]["environment"]
        conns = {k.removeprefix("AIRFLOW_CONN_").lower(): _substituted(str(v)) for k, v in env.items()
                 if k.startswith("AIRFLOW_CONN_")}
        assert set(conns) == set(specs), name
        s3, spec = json.loads(conns["sealflow_s3"]), specs["sealflow_s3"]
        assert (s3["conn_type"], s3["login"]) == (spec["conn_type"], spec["login"])
        assert set(s3["extra"]) == set(json.loads(spec["extra"])), name
        assert s3["extra"]["work_bucket"] == layout.BUCKET_SETTINGS["SEALFLOW_WORK_BUCKET"]
        assert s3["extra"]["archive_bucket"] == layout.BUCKET_SETTINGS["SEALFLOW_ARCHIVE_BUCKET"]
        assert urlsplit(conns["sealflow_platform"]).scheme == specs["sealflow_platform"]["conn_type"]


def test_the_image_sets_the_s3_checksum_settings_the_launcher_sets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for key, value in CHECKSUM_ENV.items():
        assert re.search(rf"\b{key}={re.escape(value)}\b", dockerfile), key
