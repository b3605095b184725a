"""Rewriting the audit log is caught even when the attacker recomputes every digest and chain, drops
the checkpoints, deletes the tail or re-signs with the audit key: checkpoints are mandatory and
their heads are anchored at the national platform (a real simulator over HTTP) and in the archive
bucket under Object Lock (the embedded SeaweedFS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from filing.client import PlatformClient
from filing.dispatcher import drain
from filing.outbox import FilingAttempt, OutboxRecord
from stamping.audit import verify_audit
from stamping.audit.anchors import BucketAnchors, platform_anchors
from stamping.audit.log import GENESIS, AuditPolicy, chain_next, checkpoint_message, entry_digest
from stamping.audit.models import AuditCheckpoint, AuditEntry
from tests.filing.conftest import Simulator
from tests.registry.conftest import World

POLICY = AuditPolicy(checkpoint_every=5, interval=timedelta(hours=2))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Simulator]:
    """A fresh platform per test: its listing holds only this test's anchors."""
    sim = Simulator(tmp_path / "platform")
    yield sim
    sim.stop()


@pytest.fixture
def client(platform: Simulator, demo_ca) -> Iterator[PlatformClient]:
    from gmpki.keys.signer import SoftwareSigner

    key, cert = demo_ca.issue_unit_signer("SealFlow filing system", "91450000000000000X")
    with PlatformClient(platform.url, SoftwareSigner(key, cert), platform.cert_der) as c:
        yield c


def _append(world: World, n: int) -> None:
    reg = world.registry
    for i in range(n):
        with reg.sessions() as s, s.begin():
            reg.audit.append(s, actor="keeper", action="seal.use", es_id="450000202600000001",
                             payload={"document": f"doc-{i}", "batch_id": "b1"}, at=world.clock())


@pytest.fixture
def filed(world: World, client: PlatformClient) -> World:
    """A log of 20 entries, checkpoints at 5, 10, 15, 20, each filed with the platform (receipts kept)."""
    with world.registry.sessions() as s:
        n = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()
    _append(world, 20 - n)
    result = drain(world.registry.sessions, client)
    assert result.as_dict()["sent"] >= 4, result
    with world.registry.sessions() as s:
        kept = s.scalars(select(OutboxRecord).where(OutboxRecord.kind == "audit.checkpoint")).all()
        assert len(kept) == 4 and all(r.receipt and r.state == "sent" for r in kept)
    return world


def _drop_filings(session) -> None:
    ids = select(OutboxRecord.record_id).where(OutboxRecord.kind == "audit.checkpoint")
    session.execute(delete(FilingAttempt).where(FilingAttempt.record_id.in_(ids)))
    session.execute(delete(OutboxRecord).where(OutboxRecord.kind == "audit.checkpoint"))


def _verify(world: World, client: PlatformClient | None = None, **kw):
    reg = world.registry
    with reg.sessions() as s:
        anchors = [platform_anchors(s, client, reg.settings.audit_key_id)] if client else None
        return verify_audit(s, reg.audit_public_key(), policy=POLICY, anchors=anchors, now=world.clock(), **kw)


def _rewrite(world: World, edit_seq: int, *, resign: bool = False, drop_checkpoints: bool = False) -> None:
    """What an insider with the database does: change an entry, recompute every digest and chain,
    then drop the checkpoints or re-sign them with the audit key."""
    reg = world.registry
    with reg.sessions() as s, s.begin():
        chain = GENESIS
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all():
            actor = "mallory" if e.seq == edit_seq else e.actor
            digest = entry_digest(e.seq, actor, e.action, e.es_id, e.reason, e.at, e.payload)
            chain = chain_next(chain, digest)
            s.execute(update(AuditEntry).where(AuditEntry.seq == e.seq).values(actor=actor, digest=digest,
                                                                                  chain=chain))
            if resign and s.get(AuditCheckpoint, e.seq) is not None:
                signature = reg._audit_signer().sign(checkpoint_message(e.seq, chain))
                s.execute(update(AuditCheckpoint).where(AuditCheckpoint.seq == e.seq).values(chain=chain,
                                                                                          signature=signature))
        if drop_checkpoints:
            s.execute(delete(AuditCheckpoint))


def test_intact_filed_log_matches_the_platform_anchors(filed: World, client: PlatformClient) -> None:
    report = _verify(filed, client)
    assert report.ok, report.reason
    assert report.covered_to == 20


def test_rewrite_that_drops_every_checkpoint_is_refused(filed: World) -> None:
    _rewrite(filed, 8, drop_checkpoints=True)
    with filed.registry.sessions() as s:
        assert verify_audit(s, filed.registry.audit_public_key()).ok  # what the database alone said before
    report = _verify(filed)
    assert not report.ok and report.first_bad_seq == 1
    assert "mandatory every 5 entries" in report.reason and "entries 1..20 are not covered" in report.reason


def test_rewrite_resigned_with_the_audit_key_differs_from_the_platform_anchor(filed: World,
                                                                             client: PlatformClient) -> None:
    _rewrite(filed, 12, resign=True)
    assert _verify(filed).ok  # consistent in itself: the database and the audit key agree
    report = _verify(filed, client)
    # entry 12 changed: the first anchor that differs is the one at 15, the one before (10) still holds
    assert not report.ok and report.first_bad_seq == 11 and "entries 11..15 were rewritten" in report.reason
    assert "national platform" in report.reason


def test_tail_deleted_with_its_checkpoints_is_caught_by_the_platform_anchor(filed: World,
                                                                            client: PlatformClient) -> None:
    with filed.registry.sessions() as s, s.begin():
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 12))
        s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > 12))
    report = _verify(filed)
    assert report.ok  # the database alone is consistent: 1..12, checkpoints at 5 and 10
    report = _verify(filed, client)
    assert not report.ok and report.first_bad_seq == 13 and "13..15 were deleted" in report.reason


def test_deleting_the_filing_records_too_is_caught(filed: World, client: PlatformClient) -> None:
    with filed.registry.sessions() as s, s.begin():
        s.execute(delete(AuditEntry).where(AuditEntry.seq > 12))
        s.execute(delete(AuditCheckpoint).where(AuditCheckpoint.seq > 12))
        _drop_filings(s)
    report = _verify(filed, client)
    assert not report.ok and "filing records deleted" in report.reason


def test_altering_our_copy_of_a_filed_anchor_is_caught(filed: World, client: PlatformClient) -> None:
    _rewrite(filed, 12, resign=True)
    with filed.registry.sessions() as s, s.begin():
        for row in s.scalars(select(OutboxRecord).where(OutboxRecord.kind == "audit.checkpoint")).all():
            point = s.get(AuditCheckpoint, row.payload["seq"])
            row.payload = {**row.payload, "chain": point.chain}  # make the filed copies agree with the rewrite
    report = _verify(filed, client)
    assert not report.ok and "was altered" in report.reason


def _uncovered_tail(world: World) -> None:
    """Entries up to two past a multiple of 5: a signed checkpoint, then two entries it does not cover."""
    with world.registry.sessions() as s:
        n = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()
    _append(world, (2 - n) % 5 + 5)


def test_entries_left_uncovered_past_the_interval_fail(world: World) -> None:
    _uncovered_tail(world)
    with world.registry.sessions() as s:
        last = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq.desc())).first()
        covered = max(s.scalars(select(AuditCheckpoint.seq)).all())
    assert last > covered and _verify(world).ok
    world.clock.advance(hours=3)
    report = _verify(world)
    assert not report.ok and report.first_bad_seq == covered + 1
    assert f"entries {covered + 1}..{last} are older than the checkpoint interval" in report.reason
    assert "sealflow audit checkpoint" in report.reason


def test_checkpoint_never_filed_past_the_interval_fails(world: World, client: PlatformClient) -> None:
    _uncovered_tail(world)
    with world.registry.sessions() as s, s.begin():  # the insider drops the queued filings
        _drop_filings(s)
    assert _verify(world, client).ok  # within the interval a pending anchor is normal
    world.clock.advance(hours=3)
    with world.registry.sessions() as s, s.begin():
        world.registry.audit.checkpoint(s, at=world.clock())
    report = _verify(world, client)
    assert not report.ok and "not anchored in the national platform" in report.reason


@pytest.mark.stack
def test_bucket_anchors_are_locked_and_catch_a_resigned_rewrite(world: World, embedded_stack, tmp_path: Path) -> None:
    import uuid

    from archive.store import ObjectLocked, ObjectStore

    settings = embedded_stack.settings.with_overrides(archive_bucket=f"audit-{uuid.uuid4().hex[:12]}")
    store = ObjectStore(settings)
    store.ensure_bucket()
    bucket = BucketAnchors(store, world.registry.settings.audit_key_id)
    _append(world, 12)
    with world.registry.sessions() as s:
        written = bucket.publish(s)
        assert written and bucket.publish(s) == []  # once only
        assert verify_audit(s, world.registry.audit_public_key(), policy=POLICY, anchors=[bucket.read()],
                            now=world.clock()).ok
    key = f"audit-anchors/{world.registry.settings.audit_key_id}/{written[0]:012d}.json"
    with pytest.raises(ObjectLocked):
        store.delete(key, store.head(key).version_id)

    _rewrite(world, 3, resign=True)
    with world.registry.sessions() as s:
        report = verify_audit(s, world.registry.audit_public_key(), policy=POLICY, anchors=[bucket.read()],
                              now=world.clock())
    assert not report.ok and "rewritten" in report.reason and "archive bucket" in report.reason
