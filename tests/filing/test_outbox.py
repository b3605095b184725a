"""The outbox: enqueue in the caller's transaction, order per subject, refusal of bad records."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from filing.outbox import PENDING, OutboxError, OutboxRecord, enqueue
from kernel.db import session_factory, transaction


def test_enqueue_orders_per_subject_and_rolls_back_with_caller(db_engine) -> None:
    factory = session_factory(db_engine)
    with transaction(factory) as session:
        a1 = enqueue(session, "seal.make", "ES1", {"es_id": "ES1"})
        b1 = enqueue(session, "seal.make", "ES2", {"es_id": "ES2"})
        a2 = enqueue(session, "seal.revoke", "ES1", {"es_id": "ES1"})
    with pytest.raises(RuntimeError), transaction(factory) as session:
        enqueue(session, "seal.resume", "ES1", {"es_id": "ES1"})
        raise RuntimeError("caller fails")
    with factory() as session:
        rows = {r.record_id: r for r in session.scalars(select(OutboxRecord))}
    assert set(rows) == {a1, b1, a2}
    assert (rows[a1].subject_seq, rows[a2].subject_seq, rows[b1].subject_seq) == (1, 2, 1)
    assert all(r.state == PENDING and r.attempts == 0 for r in rows.values())
    assert len({a1, a2, b1}) == 3


@pytest.mark.parametrize(
    ("kind", "payload"),
    [("seal.teleport", {}), ("seal.make", []), ("seal.make", {"x": float("nan")}), ("seal.make", {"x": object()})],
)
def test_enqueue_refuses_bad_records(db_engine, kind, payload) -> None:
    factory = session_factory(db_engine)
    with factory() as session, pytest.raises(OutboxError):
        enqueue(session, kind, "ES1", payload)
