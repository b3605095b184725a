"""Filing under faults, over real HTTP against the platform simulator: one bad record no longer
blocks the others of its request, an outage stays cheap, and a platform that accepts nothing
for longer than the threshold fails the ``file_records`` run instead of leaving it green."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from filing.dispatcher import Backoff, delivery_stall, drain
from filing.outbox import DEAD, FAILED, SENT, OutboxRecord, enqueue, utcnow
from kernel.db import transaction

pytestmark = pytest.mark.faults

FAST = Backoff(base_s=0.001, cap_s=0.01, max_attempts=50, park_s=0.01, jitter=0.5)


def _queue(sessions, seal_payload, n: int, prefix: str, poison_at: int | None = None) -> tuple[list[str], str | None]:
    """``n`` seal events on ``n`` seals; the one at ``poison_at`` carries a float, which the
    protocol's canonical JSON cannot encode (it happens: a size in MB computed by a division)."""
    ids, poison = [], None
    with transaction(sessions) as session:
        for i in range(n):
            es_id = f"{prefix}{i:04d}"
            payload = seal_payload(es_id)
            if i == poison_at:
                payload["picture_mb"] = 0.25
            record_id = enqueue(session, "seal.make", es_id, payload)
            if i == poison_at:
                poison = record_id
            else:
                ids.append(record_id)
    return ids, poison


def _states(sessions) -> dict[str, OutboxRecord]:
    with sessions() as session:
        return {r.record_id: r for r in session.scalars(select(OutboxRecord))}


def test_one_unsendable_record_is_dead_lettered_and_its_request_delivered(sessions, sim, client,
                                                                          seal_payload) -> None:
    good, poison = _queue(sessions, seal_payload, 40, "POISON", poison_at=17)
    result = drain(sessions, client, backoff=FAST, batch_size=200, workers=1)
    assert (result.sent, result.dead, result.failed) == (39, 1, 0)
    rows = _states(sessions)
    assert {rows[i].state for i in good} == {SENT}
    assert rows[poison].state == DEAD and "cannot be sent" in rows[poison].last_error
    assert set(sim.stored(set(good))) == set(good)  # each delivered, once
    assert sim.stored({poison}) == {}


def test_flaky_platform_and_a_bad_record_still_deliver_every_good_record_exactly_once(
        sessions, sim, client, seal_payload) -> None:
    good, poison = _queue(sessions, seal_payload, 60, "FLAKY", poison_at=3)
    sim.faults(error_rate=0.2, drop_after_commit_rate=0.2, malformed_rate=0.1, seed=7)
    now = utcnow()
    for _ in range(15):
        drain(sessions, client, now=now, backoff=FAST, batch_size=200, workers=1)
        now += timedelta(days=1)
        if all(r.state == SENT for i, r in _states(sessions).items() if i in good):
            break
    rows = _states(sessions)
    assert {rows[i].state for i in good} == {SENT}
    assert rows[poison].state == DEAD
    stored = sim.stored(set(good))
    assert set(stored) == set(good)
    assert len({(v["subject"], v["subject_seq"]) for v in stored.values()}) == len(good)  # none twice


def test_an_outage_costs_three_requests_not_a_bisection(sessions, sim, client, seal_payload) -> None:
    _queue(sessions, seal_payload, 64, "DOWN")
    sim.faults(outage=True)
    requests: list[str] = []
    client._http.event_hooks["request"].append(lambda request: requests.append(request.url.path))
    result = drain(sessions, client, backoff=FAST, batch_size=200, workers=1)
    assert result.failed == 64 and result.sent == result.dead == 0
    assert requests == ["/v1/filings:batch"] * 3  # the request and its two halves
    assert {r.attempts for r in _states(sessions).values()} == {1}  # one try each in this drain


def test_a_failing_platform_is_a_stall_since_its_first_failed_try(sessions, sim, client, seal_payload) -> None:
    _queue(sessions, seal_payload, 5, "STALL")
    sim.faults(outage=True)
    first = utcnow()
    drain(sessions, client, backoff=FAST, workers=1)
    drain(sessions, client, now=first + timedelta(days=1), backoff=FAST, workers=1)
    with sessions() as session:
        stall = delivery_stall(session)
    assert stall is not None and stall.waiting == 5 and "outage" in stall.last_error
    assert abs((stall.since - first).total_seconds()) < 5
    sim.faults(outage=False)
    drain(sessions, client, now=first + timedelta(days=2), backoff=FAST, workers=1)
    with sessions() as session:
        assert delivery_stall(session) is None  # delivered: no stall


def test_a_dead_letter_alone_is_not_a_stall(sessions, sim, client, seal_payload) -> None:
    _queue(sessions, seal_payload, 1, "ALONE", poison_at=0)
    drain(sessions, client, backoff=FAST, workers=1)
    with sessions() as session:
        assert delivery_stall(session) is None


@pytest.mark.stack
def test_file_records_run_fails_when_nothing_was_delivered_for_longer_than_the_threshold(
        embedded_stack, tmp_path, seal_payload) -> None:
    from filing.identity import pin_platform_certificate, setup_system_identity
    from kernel.db import make_engine, migrate, session_factory
    from sealflow.stack import run_dag_test

    settings = embedded_stack.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'sealflow.db'}", filing_key_id="filing-stall-test",
        filing_key_pin="314159", filing_alert_after_s=0)
    setup_system_identity(settings, tmp_path / "ca")
    pin_platform_certificate(settings)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        ids = [enqueue(session, "seal.make", f"STL{n:04d}", seal_payload(f"STL{n:04d}")) for n in range(3)]
    admin = httpx.Client(base_url=settings.resolved_platform_url, timeout=10)
    try:
        admin.post("/admin/faults", content=json.dumps({"outage": True})).raise_for_status()
        done = run_dag_test(settings, "file_records", timeout=300)
    finally:
        admin.post("/admin/faults", content=json.dumps({"outage": False})).raise_for_status()
        admin.close()
    assert done.returncode != 0
    assert json.loads(done.stdout.strip().splitlines()[-1])["state"] == "failed"
    assert "nothing delivered to the platform" in done.stdout + done.stderr
    assert {r.state for r in _states(sessions).values() if r.record_id in ids} == {FAILED}  # kept, retried later
    engine.dispose()
