"""Running ``stamp_batch`` the way an office does, through Airflow's REST API: submit a batch,
answer the keeper's 用章审批 with the one-time code, follow the run. Used by ``sealflow batch``,
``sealflow demo``, the end-to-end tests and the pipeline benchmark."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.files import write_atomic
from kernel.settings import Settings, local_url
from sealflow import root
from sealflow.airflow_api import AirflowApi, AirflowApiError
from stamping.batch.sms import LocalSmsGateway

DAG_ID = "stamp_batch"
# The DAGs a batch flows through; Airflow creates DAGs paused, so the embedded stack unpauses them.
PIPELINE_DAGS = ("stamp_batch", "archive_batch", "file_records")


@dataclass(frozen=True)
class DemoSeal:
    es_id: str
    keeper: str
    personal_es_id: str = ""  # the demo's personal seal, the one a user may stamp with by hand


def personal_pin_file(settings: Settings) -> Path:
    """Where the demo keeps its personal seal's PIN for the user (0600, made with the seal)."""
    return settings.state_dir / "demo" / "personal-seal.pin"


def airflow_api(settings: Settings, user: str | None = None) -> AirflowApi:
    """A client logged in as ``user`` (default: the stack's administrator; keepers answer as themselves)."""
    from sealflow.stack import ADMIN_USER, airflow_login

    user, password = airflow_login(settings, user or ADMIN_USER)
    # 120 s per request: on a loaded machine (2 cores shared by many stacks) the api-server answered
    # a status poll in over 30 s, and a poll that times out fails the whole run it follows.
    return AirflowApi(local_url(settings.airflow_port), user, password, timeout=120.0)


def prepare_demo_seal(settings: Settings) -> DemoSeal:
    """The demo registry (unit, keeper, seals) with its official seal enrolled for batch use.

    Its people are checked against the identity registers on applying and on enrolling, like anyone's:
    on the embedded stack its identity simulator is started first if need be (this runs before
    ``stack up``: the registry's users must exist before the Airflow API server starts)."""
    import secrets

    from sealflow.stack import ensure_identity
    from stamping.registry.demo import KEEPER, bootstrap_demo, keep_credentials

    checked = ensure_identity(settings, out=lambda _msg: None) if settings.embedded else settings
    sessions = root.sessions(checked)
    registry = root.registry(checked, sessions)
    pin = secrets.token_urlsafe(12)
    demo = bootstrap_demo(registry, official_pin=pin)
    keep_credentials(settings, demo["credentials"])  # 0600: how a person acts as each demo user
    es_id = demo["es_ids"]["official"]
    if "personal" in demo["pins"]:  # made just now: hand its PIN to the user (write_atomic files are 0600)
        write_atomic(personal_pin_file(settings), demo["pins"]["personal"].encode() + b"\n")
    seals = root.batch_seals(checked, sessions, registry)
    if not seals.is_enrolled(es_id):
        if "official" not in demo["pins"]:
            raise RuntimeError(f"demo seal {es_id} exists but is not enrolled for batch use; its keeper runs "
                               f"`sealflow batch enrol {es_id} --pin-env VAR`")
        seals.enrol(es_id, demo["pins"]["official"], KEEPER)
    serve_sample_issuer(sessions, seals, es_id)
    sessions.kw["bind"].dispose()
    return DemoSeal(es_id, KEEPER, demo["es_ids"].get("personal", ""))


def serve_sample_issuer(sessions: Any, seals: Any, es_id: str) -> None:
    """The demo's 行政审批局 seals the sample licences issued by the 市场监督管理局: registered, audited."""
    from kernel.db import transaction
    from stamping.batch import admission
    from stamping.batch.samples import ISSUER_CODE, ISSUER_NAME

    with transaction(sessions) as session:
        if ISSUER_CODE in admission.served_units(session, es_id):
            return
        admission.serve(session, es_id=es_id, credit_code=ISSUER_CODE, name=ISSUER_NAME, actor="admin")
        seals.audit(session, actor="admin", action="seal.serves_unit", es_id=es_id, reason=ISSUER_NAME,
                    payload={"credit_code": ISSUER_CODE})


def last_code(settings: Settings, keeper: str, batch_id: str) -> str | None:
    """The newest code texted to ``keeper`` for ``batch_id`` (a keeper may have several batches waiting)."""
    pattern = re.compile(r"batch " + re.escape(batch_id) + r", .*?code (\d{6})")
    for message in reversed(LocalSmsGateway(settings.resolved_sms_outbox).messages(keeper)):
        if match := pattern.search(message):
            return match.group(1)
    return None


def submit(api: AirflowApi, folder: Path, es_id: str, batch_id: str, requester: str = "applicant",
           placement: str = "anchor:（盖章）", pdf_container: str = "pkcs7") -> str:
    for dag_id in PIPELINE_DAGS:
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    conf: dict[str, Any] = {"batch_location": str(folder), "es_id": es_id, "placement": placement,
                            "requester": requester, "batch_id": batch_id, "pdf_container": pdf_container}
    return api.trigger(DAG_ID, conf, run_id=f"batch__{batch_id}")


def approve(settings: Settings, run_id: str, batch_id: str, keeper: str, *, accept: bool = True,
            code: str | None = None, timeout: float = 600) -> None:
    """Answer the run's 用章审批 as the keeper (logged in as the keeper): Approve with the code texted
    for this batch, or Reject."""
    api = airflow_api(settings, keeper)
    try:
        pending = api.wait_for_approval(DAG_ID, run_id, timeout=timeout)
        if accept and code is None:
            deadline = time.monotonic() + 30
            while (code := last_code(settings, keeper, batch_id)) is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if code is None:
                raise AirflowApiError(f"no one-time code for batch {batch_id} reached keeper {keeper}")
        api.answer(pending, "Approve" if accept else "Reject", {"code": code or ""})
    finally:
        api.close()


def approval_outcome(settings: Settings, run_id: str) -> dict[str, Any] | None:
    """The SealFlow approval of the batch owned by ``run_id``: state, attempts, reason (None if not asked)."""
    from sqlalchemy import select

    from stamping.batch import approval
    from stamping.batch.models import Batch

    with root.database(settings.resolved_database_url, migrated=False) as sessions, sessions() as session:
        batch_id = session.scalar(select(Batch.batch_id).where(Batch.run_id == run_id))
        req = approval.current(session, batch_id) if batch_id else None
        if req is None:
            return None
        return {"batch_id": batch_id, "state": req.state, "attempts": req.attempts, "reason": req.reason,
                "decided_by": req.decided_by}


def run_batch(settings: Settings, folder: Path, es_id: str, keeper: str, batch_id: str, *, accept: bool = True,
              timeout: float = 1800) -> dict[str, Any]:
    """Submit, approve as the keeper, wait; returns the run state and the batch report summary."""
    api = airflow_api(settings)
    try:
        started = time.monotonic()
        run_id = submit(api, folder, es_id, batch_id)
        approve(settings, run_id, batch_id, keeper, accept=accept, timeout=timeout)
        state = api.wait_for_run(DAG_ID, run_id, timeout=timeout)
        return {"run_id": run_id, "state": state, "seconds": round(time.monotonic() - started, 1)}
    finally:
        api.close()
