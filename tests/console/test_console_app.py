"""The console app in-process (FastAPI's test client, no api-server): nobody gets a page without
Airflow's login, and the SealFlow role decides the rest. The same checks run against the real
api-server in tests/pipeline/test_console.py; these are quick and show each defence on its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.db import transaction
from tests.console.world import demo_world
from tests.pipeline.plugins_path import pipeline_module


@dataclass
class AirflowUser:
    """What Airflow's ``get_user`` hands to a route: an authenticated user with a name."""

    name: str

    def get_name(self) -> str:
        return self.name


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from stamping.registry.demo import DEMO_PERSON_ID

    world = demo_world(tmp_path_factory.mktemp("console") / "var")  # admin, applicant, keeper, reviewers, …
    demo = world.demo
    # A second keeper of the same unit: holds the keeper role, but none of the approvals below is theirs.
    world.registry.add_user(demo["credit_code"], "keeper2", "keeper", actor="admin", person_id_number=DEMO_PERSON_ID)
    pipeline_module(world.settings)
    from sealflow_airflow.console.app import app

    app.state_for_tests = SimpleNamespace(settings=world.settings, sessions=world.sessions, demo=demo)
    yield app
    app.dependency_overrides.clear()
    world.engine.dispose()


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


def _ask_keeper(console, batch_id: str) -> str:
    """A pending 用章审批 of the demo's official seal, as the pipeline asks it; returns the texted code."""
    from stamping.batch import approval
    from stamping.batch.sms import LocalSmsGateway

    env = console.state_for_tests
    outbox = LocalSmsGateway(env.settings.home / "sms-test")
    with transaction(env.sessions) as session:
        approval.request_approval(session, batch_id=batch_id, run_id=f"batch__{batch_id}",
                                  es_id=env.demo["es_ids"]["official"], keeper="keeper", keeper_phone="keeper",
                                  requester="applicant", documents=7, gateway=outbox,
                                  mac_key=approval.load_mac_key(env.settings.home / "mac.key"))
    return re.search(r"code (\d{6})", outbox.last_message("keeper")).group(1)


@pytest.fixture
def parked(console, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for Airflow's task table (no Airflow database in this process): every run's approval
    task is parked at map index -1. The real lookup runs in tests/pipeline/test_console.py."""
    import sealflow_airflow.console.inbox_routes as module

    monkeypatch.setattr(module, "_parked", lambda run_ids: dict.fromkeys(run_ids, -1))


def test_the_keeper_sees_their_pending_approval_with_seal_countdown_and_answer_box_but_never_the_code(
        console, parked) -> None:
    code = _ask_keeper(console, "inbox-1")
    client = _as(console, "keeper")
    listed = client.get("/api/inbox").json()
    item = next(i for i in listed if i["batch_id"] == "inbox-1")
    assert item["documents"] == 7 and item["requester"] == "applicant" and item["tries_left"] == 5
    assert item["seal_name"] and item["es_id"] == console.state_for_tests.demo["es_ids"]["official"]
    assert 0 < item["seconds_left"] <= int(timedelta(minutes=30).total_seconds())
    assert item["answer_path"] == ("/api/v2/dags/stamp_batch/dagRuns/batch__inbox-1/taskInstances/"
                                   "seal_use_approval/-1/hitlDetails")
    page = client.get("/inbox")
    assert page.status_code == 200
    html = page.text
    assert 'data-batch="inbox-1"' in html and "class='countdown' data-expires=" in html
    assert "data:image/png;base64," in html  # the seal's picture, inline
    assert 'name="code"' in html and 'name="reason"' in html
    assert code not in html and code not in str(listed)  # the code is typed by the keeper, never sent
    assert "http://" not in html and "https://" not in html


def test_another_keeper_sees_nothing_and_other_roles_are_refused_the_inbox(console, parked) -> None:
    _ask_keeper(console, "inbox-2")
    other = _as(console, "keeper2")
    assert other.get("/api/inbox").json() == []
    assert "inbox-2" not in other.get("/inbox").text
    for name in ("admin", "applicant", "archivist", "stranger"):
        client = _as(console, name)
        assert client.get("/api/inbox").status_code == 403, name
        assert client.get("/inbox").status_code == 403, name


@pytest.fixture
def fixity_never_ran(console, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in for Airflow's run table on the health page (no Airflow database in this process)."""
    import sealflow_airflow.console.health_routes as module

    monkeypatch.setattr(module, "_last_fixity", lambda: "never run")


def _dead_letter(console, subject: str) -> str:
    from filing.outbox import DEAD, OutboxRecord, enqueue

    with transaction(console.state_for_tests.sessions) as session:
        record_id = enqueue(session, "seal.make", subject, {"es_id": subject})
        row = session.scalar(select(OutboxRecord).where(OutboxRecord.record_id == record_id))
        row.state, row.attempts, row.last_error = DEAD, 12, "platform refused: 4xx duplicate seal code"
    return record_id


def test_an_operator_retries_a_dead_letter_it_is_due_again_and_audited(console, fixity_never_ran) -> None:
    from filing.outbox import PENDING, OutboxRecord
    from stamping.audit.models import AuditEntry

    record_id = _dead_letter(console, "DL0001")
    page = _as(console, "operator").get("/health")
    assert f"/health/dead-letters/{record_id}/retry" in page.text
    response = _as(console, "operator").post(f"/health/dead-letters/{record_id}/retry")
    assert response.status_code == 200 and "id='retried'" in response.text
    with console.state_for_tests.sessions() as session:
        row = session.scalar(select(OutboxRecord).where(OutboxRecord.record_id == record_id))
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "filing.retry")
                               .order_by(AuditEntry.seq.desc()).limit(1))
    assert (row.state, row.attempts) == (PENDING, 0)
    assert entry.actor == "operator" and entry.payload["record_id"] == record_id
    assert entry.payload["last_error"].startswith("platform refused")
    again = _as(console, "operator").post(f"/api/dead-letters/{record_id}/retry")
    assert again.status_code == 404 and "sealflow/health" in again.json()["detail"]  # not a dead letter now


def test_a_person_who_may_see_health_but_not_operate_cannot_retry(console, fixity_never_ran) -> None:
    from filing.outbox import DEAD, OutboxRecord

    record_id = _dead_letter(console, "DL0002")
    archivist = _as(console, "archivist")
    page = archivist.get("/health")
    assert page.status_code == 200 and f"/dead-letters/{record_id}/retry" not in page.text
    for path in (f"/health/dead-letters/{record_id}/retry", f"/api/dead-letters/{record_id}/retry"):
        assert archivist.post(path).status_code == 403, path
        assert _as(console, "keeper").post(path).status_code == 403, path
    with console.state_for_tests.sessions() as session:
        assert session.scalar(select(OutboxRecord.state).where(OutboxRecord.record_id == record_id)) == DEAD
