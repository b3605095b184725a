"""The console app in-process (FastAPI's test client, no api-server): nobody gets a page without
Airflow's login, and the SealFlow role decides the rest. The same checks run against the real
api-server in tests/pipeline/test_console.py; these are quick and show each defence on its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from tests.pipeline.plugins_path import pipeline_module


@dataclass
class AirflowUser:
    """What Airflow's ``get_user`` hands to a route: an authenticated user with a name."""

    name: str

    def get_name(self) -> str:
        return self.name


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from stamping.registry.demo import bootstrap_demo
    from stamping.registry.service import SealRegistry

    settings = Settings(home=tmp_path_factory.mktemp("console") / "var", kek="00" * 32)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    bootstrap_demo(SealRegistry(session_factory(engine), settings))  # admin, applicant, keeper, reviewers
    pipeline_module(settings)
    from sealflow_airflow.console.app import app

    yield app
    app.dependency_overrides.clear()
    engine.dispose()


def _as(app, name: str | None) -> TestClient:
    from airflow.api_fastapi.core_api.security import get_user

    app.dependency_overrides.clear()
    if name is not None:
        app.dependency_overrides[get_user] = lambda: AirflowUser(name)
    return TestClient(app)


def _paths(app) -> list[tuple[str, str]]:
    return [(m, r.path.replace("{batch_id}", "b").replace("{archival_code}", "c"))
            for r in app.routes for m in sorted(getattr(r, "methods", None) or ()) if m != "HEAD"]


def test_without_airflow_login_every_route_answers_401(console) -> None:
    client = _as(console, None)
    paths = _paths(console)
    assert len(paths) >= 15
    for method, path in paths:
        assert client.request(method, path).status_code == 401, (method, path)


def test_a_registry_applicant_sees_batches_but_not_the_archive_health_or_metrics(console) -> None:
    client = _as(console, "applicant")
    assert client.get("/api/batches").json() == []
    for path in ("/archive", "/api/archive", "/health", "/api/health", "/metrics"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "administrator" in response.json()["detail"]  # says what to do next


def test_an_airflow_user_unknown_to_the_registry_only_gets_the_verify_page(console) -> None:
    client = _as(console, "stranger")
    for path in ("/batches", "/api/batches", "/archive", "/health", "/metrics", "/batches/b/bad-rows.csv"):
        assert client.get(path).status_code == 403, path
    page = client.get("/verify")
    assert page.status_code == 200 and "验章" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing loaded from outside


def test_the_administrator_scrapes_metrics_in_prometheus_format(console) -> None:
    response = _as(console, "admin").get("/metrics")
    assert response.status_code == 200
    assert "# TYPE sealflow_seals gauge" in response.text
    assert 'sealflow_seals{status="active"} 2' in response.text


def test_an_upload_that_is_not_a_sealed_file_is_reported_not_valid(console, tmp_path: Path) -> None:
    response = _as(console, "stranger").post("/api/verify", files={"file": ("x.pdf", b"hello")})
    assert response.status_code == 200
    assert response.json()["verdict"] == "not_valid" and "not an OFD or PDF" in response.json()["error"]
