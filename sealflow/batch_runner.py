"""Running ``stamp_batch`` the way an office does, through Airflow's REST API: submit a batch,
answer the keeper's 用章审批 with the one-time code, follow the run. Used by ``sealflow batch``,
``sealflow demo``, the end-to-end tests and the pipeline benchmark."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealflow.airflow_api import AirflowApi, AirflowApiError
from sealflow.db import make_engine, migrate, session_factory
from sealflow.files import write_atomic
from sealflow.settings import Settings
from stamping.batch.sms import LocalSmsGateway

DAG_ID = "stamp_batch"
# The DAGs a batch flows through; Airflow creates DAGs paused, so the embedded stack unpauses them.
PIPELINE_DAGS = ("stamp_batch", "archive_batch", "file_records")
CODE_RE = re.compile(r"code (\d{6})")


@dataclass(frozen=True)
class DemoSeal:
    es_id: str
    keeper: str
    personal_es_id: str = ""  # the demo's personal seal, the one a user may stamp with by hand


def personal_pin_file(settings: Settings) -> Path:
    """Where the demo keeps its personal seal's PIN for the user (0600, made with the seal)."""
    return settings.state_dir / "demo" / "personal-seal.pin"


def airflow_api(settings: Settings) -> AirflowApi:
    from sealflow.stack import airflow_login

    user, password = airflow_login(settings)
    return AirflowApi(f"http://127.0.0.1:{settings.airflow_port}", user, password)


def prepare_demo_seal(settings: Settings) -> DemoSeal:
    """The demo registry (unit, keeper, seals) with its official seal enrolled for batch use."""
    import secrets

    from stamping.batch.seals import BatchSeals
    from stamping.registry.demo import KEEPER, bootstrap_demo, keep_credentials
    from stamping.registry.service import SealRegistry

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    registry = SealRegistry(sessions, settings)
    pin = secrets.token_urlsafe(12)
    demo = bootstrap_demo(registry, official_pin=pin)
    keep_credentials(settings, demo["credentials"])  # 0600: how a person acts as each demo user
    es_id = demo["es_ids"]["official"]
    if "personal" in demo["pins"]:  # made just now: hand its PIN to the user (write_atomic files are 0600)
        write_atomic(personal_pin_file(settings), demo["pins"]["personal"].encode() + b"\n")
    seals = BatchSeals(settings, sessions, registry)
    if not seals.is_enrolled(es_id):
        if "official" not in demo["pins"]:
            raise RuntimeError(f"demo seal {es_id} exists but is not enrolled for batch use; its keeper runs "
                               f"`sealflow batch enrol {es_id} --pin-env VAR`")
        seals.enrol(es_id, demo["pins"]["official"], KEEPER)
    engine.dispose()
    return DemoSeal(es_id, KEEPER, demo["es_ids"].get("personal", ""))


def last_code(settings: Settings, keeper: str) -> str | None:
    message = LocalSmsGateway(settings.resolved_sms_outbox).last_message(keeper) or ""
    match = CODE_RE.search(message)
    return match.group(1) if match else None


def submit(api: AirflowApi, folder: Path, es_id: str, batch_id: str, requester: str = "applicant",
           placement: str = "anchor:（盖章）", pdf_container: str = "pkcs7") -> str:
    for dag_id in PIPELINE_DAGS:
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    conf: dict[str, Any] = {"batch_location": str(folder), "es_id": es_id, "placement": placement,
                            "requester": requester, "batch_id": batch_id, "pdf_container": pdf_container}
    return api.trigger(DAG_ID, conf, run_id=f"batch__{batch_id}")


def approve(api: AirflowApi, settings: Settings, run_id: str, keeper: str, *, accept: bool = True,
            code: str | None = None, timeout: float = 600) -> None:
    """Answer the run's 用章审批 as the keeper: Approve with the texted code, or Reject."""
    pending = api.wait_for_approval(DAG_ID, run_id, timeout=timeout)
    if accept and code is None:
        deadline = time.monotonic() + 30
        while (code := last_code(settings, keeper)) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        if code is None:
            raise AirflowApiError(f"no one-time code reached keeper {keeper}")
    api.answer(pending, "Approve" if accept else "Reject", {"code": code or ""})


def run_batch(settings: Settings, folder: Path, es_id: str, keeper: str, batch_id: str, *, accept: bool = True,
              timeout: float = 1800) -> dict[str, Any]:
    """Submit, approve as the keeper, wait; returns the run state and the batch report summary."""
    api = airflow_api(settings)
    try:
        started = time.monotonic()
        run_id = submit(api, folder, es_id, batch_id)
        approve(api, settings, run_id, keeper, accept=accept, timeout=timeout)
        state = api.wait_for_run(DAG_ID, run_id, timeout=timeout)
        return {"run_id": run_id, "state": state, "seconds": round(time.monotonic() - started, 1)}
    finally:
        api.close()
