"""Races: two reviewers at once, two renewals at once, concurrent audit appends — exactly one
winner (threads with their own sessions; PostgreSQL for real, SQLite serialises writers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from filing.outbox import OutboxRecord
from stamping.audit import verify_audit
from stamping.audit.models import AuditEntry
from stamping.registry import RegistryError
from stamping.registry.models import Review, SealVersion
from stamping.ses.codec import parse_seal
from tests.registry.conftest import PIN, UNIT, UNIT_CODE, World


def _race(*calls: Callable[[], object]) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    wins: list[object] = []
    losses: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            result = call()
        except BaseException as exc:  # collected and checked by the test
            with lock:
                losses.append(exc)
        else:
            with lock:
                wins.append(result)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return wins, losses


def test_two_reviewers_at_once_exactly_one_wins(world: World) -> None:
    reg = world.registry
    for _ in range(3):
        app = reg.apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
        wins, losses = _race(lambda app=app: reg.review("reviewer1", app, 1, True),
                             lambda app=app: reg.review("reviewer1b", app, 1, False))
        assert len(wins) == 1 and len(losses) == 1, (wins, losses)
        assert isinstance(losses[0], RegistryError), repr(losses[0])
        assert world.count(Review, Review.application_id == app) == 1
        status = {a["id"]: a for a in reg.list_applications()}[app]
        assert status["status"] == ("submitted" if wins == ["submitted"] else "rejected")


def test_two_renewals_at_once_exactly_one_wins(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    world.clock.advance(days=365 - 10)
    wins, losses = _race(lambda: reg.renew("keeper", es_id, PIN), lambda: reg.renew("admin", es_id, PIN))
    assert wins == [2] and len(losses) == 1, (wins, losses)
    assert isinstance(losses[0], RegistryError), repr(losses[0])
    assert reg.show(es_id)["version"] == 2
    assert world.count(SealVersion, SealVersion.es_id == es_id) == 2
    assert world.count(OutboxRecord, OutboxRecord.kind == "seal.renew") == 1
    # the winner's key and certificate are the ones in use
    signer, der = reg.seal_signer(es_id, PIN, "keeper")
    assert der == reg.seal_der(es_id, 2) and signer.certificate == parse_seal(der).cert_list[0]


def test_concurrent_audit_appends_keep_one_chain(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    before = world.count(AuditEntry)
    calls = [lambda i=i: [reg.record_use(es_id, "keeper", f"doc-{i}-{j}", "b") for j in range(5)] for i in range(4)]
    _wins, losses = _race(*calls)
    assert not losses, losses
    assert world.count(AuditEntry) == before + 20
    with reg.sessions() as s:
        report = verify_audit(s, reg.audit_public_key())
    assert report.ok, report
    assert report.last_seq == before + 20 and report.checkpoints >= 4


def test_expiry_racing_a_renewal_leaves_a_consistent_seal(world: World) -> None:
    reg, clock = world.registry, world.clock
    es_id = world.made()
    clock.advance(days=365 - 1)
    wins, losses = _race(lambda: reg.renew("keeper", es_id, PIN),
                         lambda: reg.expire_due(clock.now + timedelta(days=2)))
    info = reg.show(es_id)
    assert len(wins) >= 1
    # either renewed (active, version 2) or expired first (then the renewal was refused)
    assert (info["status"], info["version"]) in {("active", 2), ("expired", 1)}, (info, wins, losses)
