"""docker-compose.yml (no Docker engine here, so `docker compose` itself cannot run: the file is
parsed): services, dependencies, healthchecks, shared secrets, custody of the KEK and the simulator's
trust, placeholder secrets refused, and every file it mounts or builds exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ONE_SHOT = {"airflow-init", "secrets-check"}  # run to completion; the others wait for them
AIRFLOW = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker-1", "airflow-worker-2",
           "airflow-triggerer"}
WORKERS = ("airflow-worker-1", "airflow-worker-2")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _mount(volume: str | dict) -> tuple[str, str]:
    """(source, target) of a short (``src:dst[:ro]``) or long (``{type, source, target}``) volume entry."""
    if isinstance(volume, dict):
        return volume["source"], volume["target"]
    source, target = volume.split(":")[:2]
    return source, target


def _depends(service: dict) -> dict:
    deps = service.get("depends_on") or {}
    return deps if isinstance(deps, dict) else {name: {"condition": "service_started"} for name in deps}


def test_services_of_the_production_shape(compose):
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "s3", "platform"} | AIRFLOW <= set(services)
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dep in _depends(service):
            assert dep in services, f"{name} depends on unknown service {dep}"
    for name in AIRFLOW:
        deps = _depends(services[name])
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
    for name in WORKERS:
        assert _depends(services[name])["airflow-apiserver"]["condition"] == "service_healthy"
        worker = services[name]  # no fixed name or published port
        assert "container_name" not in worker and "ports" not in worker
        assert worker["command"].startswith("celery worker")


def test_airflow_components_share_executor_and_jwt_secret(compose):
    services = compose["services"]
    secrets = {services[name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"] for name in AIRFLOW | {"airflow-init"}}
    assert len(secrets) == 1 and secrets.pop().startswith("${AIRFLOW_JWT_SECRET")
    for name in AIRFLOW:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert env["SEALFLOW_DATABASE_URL"].startswith("postgresql")
        assert "AIRFLOW_CONN_SEALFLOW_S3" in env and "AIRFLOW_CONN_SEALFLOW_PLATFORM" in env


def test_named_volumes_are_declared_and_persistent_stores_use_them(compose):
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = _mount(volume)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"
    for name in ("seaweed-master", "seaweed-volume-1", "seaweed-volume-2", "seaweed-filer"):
        assert any(_mount(v)[0] == f"{name}-data" for v in compose["services"][name]["volumes"]), name
    assert any(v.startswith("postgres-db:") for v in compose["services"]["postgres"]["volumes"])


def test_every_mounted_and_built_file_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = _mount(volume)[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), f"{name} builds from missing {dockerfile}"
            for line in dockerfile.read_text().splitlines():
                if match := re.match(r"\s*(COPY|ADD)\s+(--\S+\s+)*(.+)", line):
                    *sources, _dest = match.group(3).split()
                    for source in sources:
                        assert (context / source).exists(), f"Dockerfile copies missing {source}"


def test_env_example_defines_every_required_variable(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert required, "compose should refuse to start without its secrets"
    assert required <= example, required - example
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))  # $${X} is a literal for the container shell
    assert used <= example, used - example


def _env_example() -> dict[str, str]:
    return dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                if line and not line.startswith("#"))


def test_nothing_starts_before_the_secrets_check_passes(compose):
    services = compose["services"]
    check = services["secrets-check"]
    assert check["entrypoint"][:3] == ["python", "-m", "sealflow.deploy_check"]
    for name in set(services) - {"secrets-check"}:
        assert _depends(services[name]).get("secrets-check", {}).get("condition") == \
            "service_completed_successfully", f"{name} may start before the secrets are checked"
    from sealflow.deploy_check import SECRETS

    passed = set(check["environment"])
    assert set(SECRETS) <= passed, set(SECRETS) - passed


def test_the_placeholder_secrets_of_env_example_are_refused(tmp_path, monkeypatch, capsys):
    from sealflow.deploy_check import SECRETS, main, problems

    example = _env_example()
    for name, value in example.items():
        monkeypatch.setenv(name, value)
    assert main([str(tmp_path / "no-kek")]) == 1
    assert "refusing to start" in capsys.readouterr().err
    found = problems(example, tmp_path / "no-kek")
    for name in SECRETS:
        assert any(line.startswith(name + " ") for line in found), f"{name} from .env.example was accepted"
    assert any("key-encryption key" in line for line in found)
    assert not any(example[name] in line for name in SECRETS for line in found if example[name])  # never echoed


def test_good_secrets_pass_and_a_weak_kek_does_not(tmp_path):
    import secrets as random_secrets

    from cryptography.fernet import Fernet

    from sealflow.deploy_check import SECRETS, problems

    good = {name: random_secrets.token_urlsafe(24) for name in SECRETS}
    good["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    good["SEALFLOW_IDENTITY_URL"] = "http://identity:18620"
    kek = tmp_path / "kek.hex"
    kek.write_text(random_secrets.token_hex(32))
    assert problems(good, kek) == []
    kek.write_text("0" * 64)
    assert problems(good, kek) and "random hex" in problems(good, kek)[0]
    assert problems({**good, "AIRFLOW_FERNET_KEY": ""}, None)[0].startswith("AIRFLOW_FERNET_KEY is empty")


def test_the_kek_is_a_separate_secret_never_on_a_volume(compose):
    services = compose["services"]
    assert "SEALFLOW_KEK_SECRET_FILE" in compose["secrets"]["sealflow_kek"]["file"]
    for name in AIRFLOW | {"airflow-init"}:
        env = services[name]["environment"]
        assert env["SEALFLOW_KEK_FILE"] == "/run/secrets/sealflow_kek", name
        assert "sealflow_kek" in services[name]["secrets"], name
        for volume in services[name].get("volumes", []):
            target = _mount(volume)[1]
            assert not env["SEALFLOW_KEK_FILE"].startswith(target.rstrip("/") + "/"), f"{name}: KEK on {volume}"
    for name in WORKERS:
        assert "SEALFLOW_KEK" not in services[name]["environment"]  # never as a plain variable
    platform = services["platform"]
    assert "secrets" not in platform and "environment" not in platform  # the simulator gets no KEK, no passwords


def test_the_compose_simulator_trusts_only_the_filing_systems_ca_and_is_pinned_locally(compose):
    platform = compose["services"]["platform"]
    command = platform["command"]
    assert "--accept-any-sender" not in command
    trusted = [command[i + 1] for i, arg in enumerate(command) if arg == "--trust"]
    assert trusted == ["/opt/sealflow/platform/trust/ca-root.pem", "/opt/sealflow/platform/trust/ca-intermediate.pem"]
    init = "\n".join(compose["services"]["airflow-init"]["command"])
    assert "sealflow filing setup --platform-cert /opt/sealflow/platform/identity/platform-cert.pem" in init
    assert "/v1/platform-certificate" not in init


def test_compose_runs_the_identity_simulator_and_every_sealflow_process_is_pointed_at_it(compose):
    services = compose["services"]
    identity = services["identity"]
    assert identity["entrypoint"] == ["python", "-m", "stamping.registry.identity_simulator"]
    command = identity["command"]
    assert command[command.index("--port") + 1] == "18620"
    assert "identity-data" in compose["volumes"]
    assert "secrets" not in identity and "environment" not in identity  # no KEK, no passwords
    assert "ports" not in identity  # reachable only inside the compose network
    assert _depends(identity)["secrets-check"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW | {"airflow-init"}:
        url = services[name]["environment"]["SEALFLOW_IDENTITY_URL"]
        assert url.startswith("${SEALFLOW_IDENTITY_URL:?"), f"{name}: compose must refuse to start without it"
    assert _env_example()["SEALFLOW_IDENTITY_URL"] == "http://identity:18620"
    assert "SEALFLOW_IDENTITY_URL" in services["secrets-check"]["environment"]


def test_the_deploy_check_refuses_a_deployment_without_an_identity_register(tmp_path):
    import secrets as random_secrets

    from cryptography.fernet import Fernet

    from sealflow.deploy_check import SECRETS, problems

    kek = tmp_path / "kek.hex"
    kek.write_text(random_secrets.token_hex(32))
    good = {name: random_secrets.token_urlsafe(24) for name in SECRETS}
    good["AIRFLOW_FERNET_KEY"] = Fernet.generate_key().decode()
    (line,) = problems({**good, "SEALFLOW_IDENTITY_URL": " "}, kek)
    assert line.startswith("SEALFLOW_IDENTITY_URL is not set") and "refused" in line
    assert problems({**good, "SEALFLOW_IDENTITY_URL": "https://idp.example.gov.cn"}, kek) == []


def test_airflow_sends_its_own_metrics_to_a_statsd_exporter_prometheus_can_scrape(compose):
    """Airflow's metrics switched on (StatsD) in every Airflow component, received by the statsd-exporter
    service on the port they are sent to, served for Prometheus on a published port (compose not run here:
    no Docker engine)."""
    services = compose["services"]
    exporter = services["statsd-exporter"]
    assert exporter["image"].startswith("prom/statsd-exporter:")
    flags = dict(arg.lstrip("-").split("=", 1) for arg in exporter["command"])
    for name in AIRFLOW:
        env = services[name]["environment"]
        assert env["AIRFLOW__METRICS__STATSD_ON"] == "true", name
        assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter", name
        assert flags["statsd.listen-udp"] == f":{env['AIRFLOW__METRICS__STATSD_PORT']}", name
    assert flags["web.listen-address"] == ":9102"
    assert any(port.endswith(":9102") for port in exporter["ports"])
    assert "9102/metrics" in " ".join(exporter["healthcheck"]["test"])
    (mount,) = exporter["volumes"]
    source, target = mount.split(":")[:2]
    assert flags["statsd.mapping-config"] == target
    mappings = yaml.safe_load((ROOT / source).read_text())["mappings"]
    assert any(m["match"] == "airflow.dagrun.duration.*.*" for m in mappings)
    assert all(m["match"].startswith(services["airflow-scheduler"]["environment"]["AIRFLOW__METRICS__STATSD_PREFIX"])
               for m in mappings)
    # The StatsD client ships in the image: the Dockerfile installs Airflow with its statsd extra.
    assert "apache-airflow[statsd]==" in (ROOT / "Dockerfile").read_text()


def test_compose_sets_its_ca_up_before_anything_asks_for_one(compose):
    # Not the embedded stack: nothing makes a CA on first use, so airflow-init makes it first.
    lines = [line.strip() for line in "\n".join(compose["services"]["airflow-init"]["command"]).splitlines()]
    assert "sealflow ca init" in lines
    first_use = next(i for i, line in enumerate(lines) if line.startswith("sealflow filing setup"))
    assert lines.index("sealflow ca init") < first_use
