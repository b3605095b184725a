"""docker-compose.yml (no Docker engine here): services, dependencies, healthchecks, shared secrets,
and every file it mounts or builds exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _depends(service: dict) -> dict:
    deps = service.get("depends_on") or {}
    return deps if isinstance(deps, dict) else {name: {"condition": "service_started"} for name in deps}


def test_services_of_the_production_shape(compose):
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "s3", "platform"} | AIRFLOW <= set(services)
    for name, service in services.items():
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dep in _depends(service):
            assert dep in services, f"{name} depends on unknown service {dep}"
    for name in AIRFLOW:
        deps = _depends(services[name])
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
    assert _depends(services["airflow-worker"])["airflow-apiserver"]["condition"] == "service_healthy"
    # Workers scale with --scale: no fixed name or published port.
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == "celery worker"


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
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"
    assert any(v.startswith("s3-data:") for v in compose["services"]["s3"]["volumes"])
    assert any(v.startswith("postgres-db:") for v in compose["services"]["postgres"]["volumes"])


def test_every_mounted_and_built_file_exists(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
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
