"""file_records under dag.test() in the embedded stack's Airflow, against the stack's simulator."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from filing.outbox import SENT, OutboxRecord, enqueue
from kernel.db import make_engine, migrate, session_factory, transaction

pytestmark = pytest.mark.stack


def test_file_records_dag_drains_the_outbox(embedded_stack, tmp_path, seal_payload) -> None:
    from filing.identity import make_client, pin_platform_certificate, setup_system_identity
    from sealflow.stack import run_dag_test

    settings = embedded_stack.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'sealflow.db'}", filing_key_id="filing-dag-test", filing_key_pin="271828"
    )
    setup_system_identity(settings)  # the state's demo CA: the only root the stack's simulator trusts
    pin_platform_certificate(settings)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        ids = [enqueue(session, "seal.make", f"DAG{n:04d}", seal_payload(f"DAG{n:04d}")) for n in range(5)]

    done = run_dag_test(settings, "file_records", timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["state"] == "success"

    with sessions() as session:
        rows = session.scalars(select(OutboxRecord).where(OutboxRecord.record_id.in_(ids))).all()
    assert {r.state for r in rows} == {SENT}
    with make_client(settings) as client:
        listed = {i["record_id"]: i for i in client.listing() if i["record_id"] in ids}
    assert set(listed) == set(ids)
    assert all(listed[r.record_id]["receipt_id"] == r.receipt["receipt"]["receipt_id"] for r in rows)
    engine.dispose()
