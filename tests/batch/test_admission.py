"""Before a keeper is asked: one run per batch id, the seal of the issuing unit (or a unit it is
registered to serve), and a licence sealed once unless re-issued (换发/补发) with a reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select

from kernel.db import session_factory, transaction
from stamping.batch import admission
from stamping.batch.models import Batch, BatchDocument

SEAL = "4500001"
OWN_UNIT = "11450100MB1234567"
OTHER_UNIT = "11330100MB1234567"


@pytest.fixture
def sessions(db_engine: Engine):
    return session_factory(db_engine)


def claim(sessions, batch_id: str, run_id: str) -> None:
    admission.claim(sessions, batch_id=batch_id, run_id=run_id, es_id=SEAL, requester="office",
                    source="/in", work_dir="/work")


def add_documents(sessions, batch_id: str, rows: list[dict]) -> None:
    with transaction(sessions) as session:
        if session.get(Batch, batch_id) is None:
            session.add(Batch(batch_id=batch_id, run_id=f"run-{batch_id}", source="/in", es_id=SEAL,
                              requester="office", placement={}, options={}, status="ingested", work_dir="/w",
                              created_at=datetime.now(UTC), report={}))
            session.flush()
        session.execute(insert(BatchDocument), [
            {"batch_id": batch_id, "file": f"{r['licence_id']}.pdf", "row": n, "format": "pdf", "chunk": 0,
             "record": {"licence_id": r["licence_id"], "issuer_code": r.get("issuer", OWN_UNIT),
                        "reissue": r.get("reissue", ""), "reissue_reason": r.get("reason", "")},
             "state": r.get("state", "accepted"), "reasons": [], "input_sm3": "", "output_path": "",
             "output_sm3": "", "verification": {}} for n, r in enumerate(rows, start=2)])


def states(sessions, batch_id: str) -> dict[str, tuple[str, list[str]]]:
    with sessions() as session:
        return {d.record["licence_id"]: (d.state, d.reasons) for d in session.scalars(
            select(BatchDocument).where(BatchDocument.batch_id == batch_id))}


def test_a_second_run_of_the_same_batch_is_refused_and_the_first_may_come_back(sessions) -> None:
    claim(sessions, "b1", "batch__b1")
    claim(sessions, "b1", "batch__b1")  # a retried ingest of the same run goes on
    with pytest.raises(admission.AdmissionError, match="already belongs to run batch__b1") as refused:
        claim(sessions, "b1", "manual__2026-11-28")
    assert "new batch id" in str(refused.value)
    with sessions() as session:
        assert session.get(Batch, "b1").run_id == "batch__b1"


def test_a_batch_whose_issuer_is_another_unit_is_refused_with_the_rows(sessions) -> None:
    add_documents(sessions, "b1", [{"licence_id": "L1"}, {"licence_id": "L2", "issuer": OTHER_UNIT},
                                   {"licence_id": "L3", "issuer": ""}])
    with pytest.raises(admission.AdmissionError) as refused, sessions() as session:
        admission.check_issuers(session, batch_id="b1", es_id=SEAL, seal_unit_code=OWN_UNIT,
                                seal_unit_name="南宁市示范行政审批局")
    message = str(refused.value)
    assert f"issuer {OTHER_UNIT} in rows 3" in message and "(no issuer_code) in rows 4" in message
    assert "sealflow batch serve" in message


def test_a_unit_the_seal_is_registered_to_serve_is_accepted(sessions) -> None:
    add_documents(sessions, "b1", [{"licence_id": "L1"}, {"licence_id": "L2", "issuer": OTHER_UNIT}])
    with transaction(sessions) as session:
        admission.serve(session, es_id=SEAL, credit_code=OTHER_UNIT, name="示范市市场监督管理局", actor="admin")
        admission.check_issuers(session, batch_id="b1", es_id=SEAL, seal_unit_code=OWN_UNIT, seal_unit_name="x")
    with sessions() as session, pytest.raises(admission.AdmissionError):  # served by this seal only
        admission.check_issuers(session, batch_id="b1", es_id="4500002", seal_unit_code=OWN_UNIT,
                                seal_unit_name="x")


def test_a_licence_sealed_before_is_quarantined_unless_declared_a_reissue(sessions) -> None:
    add_documents(sessions, "old", [{"licence_id": "L1", "state": "verified"},
                                    {"licence_id": "L2", "state": "verified"},
                                    {"licence_id": "L5", "state": "quarantined"}])
    add_documents(sessions, "new", [{"licence_id": "L1"},
                                    {"licence_id": "L2", "reissue": "补发", "reason": "原证遗失"},
                                    {"licence_id": "L3"}, {"licence_id": "L5"}])
    with transaction(sessions) as session:
        reissues = admission.check_licences(session, batch_id="new")
    assert [(r.licence_id, r.kind, r.reason, r.previous_batch) for r in reissues] == [("L2", "补发", "原证遗失", "old")]
    found = states(sessions, "new")
    assert found["L1"][0] == "quarantined" and "already sealed by SealFlow in batch old" in found["L1"][1][0]
    assert {found[k][0] for k in ("L2", "L3", "L5")} == {"accepted"}  # L5 was never sealed
