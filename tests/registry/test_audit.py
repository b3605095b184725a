"""The audit log detects every kind of tampering and names the first bad entry (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from gmpki.gm.sm2 import SM2PrivateKey
from stamping.audit import AuditLog, verify_audit
from stamping.audit.log import GENESIS, chain_next, entry_digest
from stamping.audit.models import AuditCheckpoint, AuditEntry
from tests.registry.conftest import World


@pytest.fixture
def logged(world: World) -> World:
    """A log of 17 entries (the world's setup and a few uses), checkpoints every 5 entries."""
    reg = world.registry
    with reg.sessions() as s:
        n = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()
    for i in range(17 - n):
        with reg.sessions() as s, s.begin():
            reg.audit.append(s, actor="keeper", action="seal.use", es_id="450000202600000001", reason="",
                             payload={"document": f"doc-{i}", "batch_id": "b1"})
    return world


def _verify(world: World, key=None):
    with world.registry.sessions() as s:
        return verify_audit(s, key or world.registry.audit_public_key())


def _sql(world: World, stmt) -> None:
    with world.registry.sessions() as s, s.begin():
        s.execute(stmt)


def test_intact_log_verifies(logged: World) -> None:
    report = _verify(logged)
    assert report.ok and report.last_seq == 17 and report.checkpoints == 3 and report.covered_to == 15
    assert any("16..17" in note for note in report.notes)
    with logged.registry.sessions() as s, s.begin():
        assert logged.registry.audit.checkpoint(s) is not None
        assert logged.registry.audit.checkpoint(s) is None  # already covered
    report = _verify(logged)
    assert report.ok and report.covered_to == 17 and not any("not yet covered" in note for note in report.notes)


def test_edited_entry(logged: World) -> None:
    _sql(logged, update(AuditEntry).where(AuditEntry.seq == 12).values(actor="mallory"))
    report = _verify(logged)
    assert not report.ok and report.first_bad_seq == 12 and "edited" in report.reason


def test_edited_payload(logged: World) -> None:
    with logged.registry.sessions() as s:
        payload = dict(s.get(AuditEntry, 14).payload)
    payload["document"] = "other.pdf"
    _sql(logged, update(AuditEntry).where(AuditEntry.seq == 14).values(payload=payload))
    assert _verify(logged).first_bad_seq == 14


def test_deleted_entry(logged: World) -> None:
    _sql(logged, delete(AuditEntry).where(AuditEntry.seq == 7))
    report = _verify(logged)
    assert not report.ok and report.first_bad_seq == 7 and "missing" in report.reason


def test_deleted_tail_covered_by_a_checkpoint(logged: World) -> None:
    _sql(logged, delete(AuditEntry).where(AuditEntry.seq >= 14))
    report = _verify(logged)
    assert not report.ok and report.first_bad_seq == 14 and "deleted" in report.reason


def test_inserted_entry(logged: World) -> None:
    # make room at seq 9 and insert a well-formed entry (its own digest and chain are right)
    with logged.registry.sessions() as s, s.begin():
        rows = s.scalars(select(AuditEntry).where(AuditEntry.seq >= 9).order_by(AuditEntry.seq.desc())).all()
        for row in rows:
            s.execute(update(AuditEntry).where(AuditEntry.seq == row.seq).values(seq=row.seq + 1))
        prev = s.get(AuditEntry, 8)
        fake = dict(actor="mallory", action="seal.use", es_id=None, reason="", at=prev.at, payload={"x": "1"})
        digest = entry_digest(9, **fake)
        s.execute(insert(AuditEntry).values(seq=9, **fake, digest=digest, chain=chain_next(prev.chain, digest)))
    report = _verify(logged)
    # the inserted entry itself fits; the shifted entry after it cannot (its seq is in its digest)
    assert not report.ok and report.first_bad_seq == 10, report


def test_reordered_entries(logged: World) -> None:
    with logged.registry.sessions() as s, s.begin():
        a, b = s.get(AuditEntry, 5), s.get(AuditEntry, 6)
        s.execute(update(AuditEntry).where(AuditEntry.seq == 5).values(seq=-5))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 6).values(seq=5))
        s.execute(update(AuditEntry).where(AuditEntry.seq == -5).values(seq=6))
        assert a and b
    report = _verify(logged)
    assert not report.ok and report.first_bad_seq == 5


def test_full_rewrite_caught_by_the_signed_checkpoint(logged: World) -> None:
    """An attacker who recomputes every digest and chain after an edit is caught by the checkpoint."""
    with logged.registry.sessions() as s, s.begin():
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        chain = GENESIS
        for e in entries:
            actor = "mallory" if e.seq == 8 else e.actor
            digest = entry_digest(e.seq, actor, e.action, e.es_id, e.reason, e.at, e.payload)
            chain = chain_next(chain, digest)
            s.execute(update(AuditEntry).where(AuditEntry.seq == e.seq).values(actor=actor, digest=digest,
                                                                                  chain=chain))
    report = _verify(logged)
    assert not report.ok and report.first_bad_seq == 6 and "rewritten" in report.reason and "10" in report.reason


def test_forged_checkpoint(logged: World) -> None:
    _sql(logged, update(AuditCheckpoint).where(AuditCheckpoint.seq == 10).values(chain="ab" * 32))
    report = _verify(logged)
    assert not report.ok and "bad signature" in report.reason and report.first_bad_seq == 6


def test_wrong_audit_key(logged: World) -> None:
    report = _verify(logged, SM2PrivateKey.generate().public_key())
    assert not report.ok and "bad signature" in report.reason and report.first_bad_seq == 1


def test_without_a_key_the_chain_is_still_checked(logged: World) -> None:
    _sql(logged, update(AuditEntry).where(AuditEntry.seq == 3).values(reason="changed"))
    with logged.registry.sessions() as s:
        report = verify_audit(s, None)
    assert report.first_bad_seq == 3


def test_entries_commit_with_their_change_only(world: World) -> None:
    log = AuditLog()
    with world.registry.sessions() as s:
        with s.begin():
            log.append(s, actor="a", action="test", payload={"n": 1})
        before = world.count(AuditEntry)
        with pytest.raises(RuntimeError), s.begin():
            log.append(s, actor="a", action="test", payload={"n": 2})
            raise RuntimeError("the change failed")
    assert world.count(AuditEntry) == before
    assert _verify(world).ok
