"""Airflow on the embedded stack: DagBag loads dags/ cleanly; the smoke DAG writes to the store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kernel.settings import local_url
from sealflow.stack import DAGS_DIR, PLUGINS_DIR

pytestmark = pytest.mark.stack

DAGBAG_SCRIPT = f"""
import json
from airflow import plugins_manager
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(DAGS_DIR)!r})
plugins, plugin_errors = plugins_manager._get_plugins()
housekeeping = bag.dags.get("seal_maintenance")
print(json.dumps({{"dags": sorted(bag.dags), "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                  "plugins": sorted(p.name for p in plugins), "plugin_errors": plugin_errors,
                  "housekeeping": {{t.task_id: sorted(t.upstream_task_ids) for t in housekeeping.tasks}}
                  if housekeeping else None}}))
"""


def test_dagbag_loads_every_dag_without_import_errors(embedded_stack):
    done = subprocess.run([sys.executable, "-c", DAGBAG_SCRIPT], env=embedded_stack.airflow_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}, "\n\n".join(f"{k}:\n{v}" for k, v in result["errors"].items())
    assert "sealflow_smoke" in result["dags"]
    assert "sealflow" in result["plugins"] and result["plugin_errors"] == {}
    expected = {p.stem for p in DAGS_DIR.glob("*.py")}
    assert len(result["dags"]) >= len(expected)
    # the work bucket's clean-up runs beside the registry's job, neither waiting for the other
    assert result["housekeeping"] == {"expire_and_checkpoint": [], "purge_work": []}


def test_airflow_env_points_at_the_stack(embedded_stack):
    env = embedded_stack.airflow_env()
    settings = embedded_stack.settings
    assert env["AIRFLOW_HOME"] == str(settings.airflow_home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_DIR)
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PLUGINS_DIR)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "sealflow_airflow.executor.LocalExecutor"  # Airflow's, minus a race
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(f"sqlite:///{settings.airflow_home}")
    assert env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"] == "60"  # a loaded machine's API server is slow
    assert env["SEALFLOW_S3_PORT"] == str(settings.s3_port)
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
    # The secrets shared by all components are stable and private.
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == embedded_stack.airflow_env()["AIRFLOW__API_AUTH__JWT_SECRET"]
    secrets_file = settings.airflow_home / "sealflow-secrets.json"
    assert secrets_file.stat().st_mode & 0o077 == 0


def test_connections_created_idempotently(embedded_stack):
    script = (
        "import json\nfrom airflow.models import Connection\nfrom airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        "    rows = s.query(Connection).filter(Connection.conn_id.in_(['sealflow_s3','sealflow_platform'])).all()\n"
        "    print(json.dumps({c.conn_id: {'type': c.conn_type, 'host': c.host, 'port': c.port,"
        " 'login': c.login, 'extra': c.extra_dejson} for c in rows}))\n"
    )
    from sealflow.stack import prepare_airflow

    assert prepare_airflow(embedded_stack.settings, out=lambda _m: None) is False  # already prepared
    done = subprocess.run([sys.executable, "-c", script], env=embedded_stack.airflow_env(),
                          capture_output=True, text=True, timeout=120, check=True)
    conns = json.loads(done.stdout.strip().splitlines()[-1])
    settings = embedded_stack.settings
    assert conns["sealflow_s3"]["type"] == "aws"
    assert conns["sealflow_s3"]["extra"]["endpoint_url"] == settings.resolved_s3_endpoint
    assert conns["sealflow_s3"]["login"] == settings.s3_access_key
    assert conns["sealflow_platform"]["type"] == "http"
    assert conns["sealflow_platform"]["port"] == settings.platform_port


def test_smoke_dag_writes_an_object_to_the_store(embedded_stack):
    done = embedded_stack.run_dag("sealflow_smoke")
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert run["state"] == "success"
    s3 = embedded_stack.s3()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=embedded_stack.settings.work_bucket,
                                                 Prefix="smoke/").get("Contents", [])]
    expected = "smoke/" + run["run_id"].replace(":", "_").replace("+", "_") + ".json"
    assert expected in keys
    body = json.loads(s3.get_object(Bucket=embedded_stack.settings.work_bucket, Key=expected)["Body"].read())
    assert body["run_id"] == run["run_id"] and body["dag_id"] == "sealflow_smoke"


@pytest.mark.e2e
def test_ui_components_on_loopback_run_the_smoke_dag_under_the_scheduler(embedded_stack):
    """`stack up --ui`: api-server, scheduler, dag-processor, triggerer on 127.0.0.1; login works;
    a triggered run of the smoke DAG succeeds under the real scheduler (LocalExecutor)."""
    import time

    import httpx
    import psutil

    from sealflow.stack import AIRFLOW_COMPONENTS, airflow_login, down, up

    settings = embedded_stack.settings
    try:
        state = up(settings, ui=True, out=lambda _m: None)
        for name in AIRFLOW_COMPONENTS:
            assert state["components"][name]["state"] == "running", name
        api = psutil.Process(state["components"]["api-server"]["pid"])
        listening = {c.laddr for p in [api, *api.children(recursive=True)]
                     for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening

        base = local_url(settings.airflow_port)
        user, password = airflow_login(settings)
        with httpx.Client(base_url=base, timeout=30) as client:
            assert client.post("/auth/token", json={"username": user, "password": "wrong"}).status_code >= 400
            token = client.post("/auth/token", json={"username": user, "password": password}).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            deadline = time.monotonic() + 90
            while client.get("/api/v2/dags/sealflow_smoke").status_code == 404:  # dag-processor parsing
                assert time.monotonic() < deadline, "sealflow_smoke never appeared in the API"
                time.sleep(1)
            assert client.patch("/api/v2/dags/sealflow_smoke", json={"is_paused": False}).status_code == 200
            run = client.post("/api/v2/dags/sealflow_smoke/dagRuns", json={"logical_date": None, "conf": {}})
            assert run.status_code == 200, run.text
            run_id = run.json()["dag_run_id"]
            state_now = ""
            while state_now not in {"success", "failed"}:
                assert time.monotonic() < deadline + 60, f"run {run_id} still {state_now}"
                time.sleep(1)
                state_now = client.get(f"/api/v2/dags/sealflow_smoke/dagRuns/{run_id}").json()["state"]
            assert state_now == "success"
    finally:
        down(settings, out=lambda _m: None, only=AIRFLOW_COMPONENTS)
    assert all(status_of == "stopped" for status_of in
               (embedded_stack_status(settings)[n]["state"] for n in AIRFLOW_COMPONENTS))
    assert embedded_stack_status(settings)["seaweedfs"]["state"] == "running"


def embedded_stack_status(settings):
    from sealflow.stack import status

    return status(settings)["components"]


def test_hooks_build_settings_and_clients_from_the_connections(embedded_stack):
    script = (
        "import json\n"
        "from kernel.settings import Settings\n"
        "from sealflow_airflow.hooks import platform_url, s3_client, settings_from_connections\n"
        "s = settings_from_connections(Settings())\n"  # defaults everywhere: values must come from connections
        "buckets = sorted(b['Name'] for b in s3_client().list_buckets()['Buckets'])\n"
        "print(json.dumps({'s3': s.resolved_s3_endpoint, 'platform': platform_url(), 'key': s.s3_access_key,"
        " 'buckets': buckets}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=embedded_stack.airflow_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    settings = embedded_stack.settings
    assert got["s3"] == settings.resolved_s3_endpoint != "http://127.0.0.1:18333"
    assert got["platform"] == settings.resolved_platform_url
    assert settings.work_bucket in got["buckets"]
