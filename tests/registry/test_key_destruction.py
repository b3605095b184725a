"""Revoking (注销) a seal destroys its private keys (销毁): every version's key file in the key store
and the PIN batch custody keeps; the destruction is audited and filed; the key never signs again,
and a document stamped before still verifies (issue 13 item 6)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from filing.outbox import OutboxRecord
from gmpki.keys.store import KeyNotFound
from kernel.keys import custody_path
from stamping.audit.models import AuditEntry
from stamping.registry.errors import InvalidState, NotAuthorised
from stamping.registry.models import SealVersion
from tests.registry.conftest import PIN, World


def _key_ids(world: World, es_id: str) -> list[str]:
    with world.registry.sessions() as s:
        return sorted(s.scalars(select(SealVersion.key_id).where(SealVersion.es_id == es_id)))


def _stamped_pdf(world: World, es_id: str) -> bytes:
    from stamping.batch.samples import render_certificate, sample_rows
    from stamping.pdf import stamp_pdf
    from stamping.placement import Placement

    row = next(r for r in sample_rows(4) if r["format"] == "pdf")
    signer, seal_der = world.registry.seal_signer(es_id, PIN, "keeper")
    return stamp_pdf(render_certificate(row), seal_der, signer, Placement.parse("anchor:（盖章）"))


def test_revocation_destroys_every_key_and_custody_copy(world: World) -> None:
    from stamping.batch.seals import BatchSeals

    reg = world.registry
    es_id = world.made()
    world.clock.advance(days=345)  # inside the renewal window (the last 30 days of 365)
    reg.renew("keeper", es_id, PIN)  # a second version with a key of its own
    keys = _key_ids(world, es_id)
    assert len(keys) == 2 and all(reg.keystore.exists(k) for k in keys)
    BatchSeals(reg.settings, reg.sessions, reg).enrol(es_id, PIN, "keeper")
    assert custody_path(reg.settings, es_id).exists()

    assert sorted(reg.revoke("admin", es_id, "unit dissolved")) == keys

    assert not any(reg.keystore.exists(k) for k in keys)
    assert not any(p.exists() for p in reg.keystore._dir.glob(f"seal-{es_id}-*"))
    assert not custody_path(reg.settings, es_id).exists()
    for key_id in keys:
        with pytest.raises(KeyNotFound):
            reg.keystore.signer(key_id, PIN)  # the key itself is gone, not just refused by status
    with reg.sessions() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.es_id == es_id,
                                                      AuditEntry.action == "seal.destroy")).all()
        assert entry.actor == "admin" and entry.payload["destroyed"] == keys
        assert entry.payload["custody_pin_destroyed"] == "true"
        kinds = [r.kind for r in s.scalars(select(OutboxRecord).where(OutboxRecord.subject == es_id)
                                           .order_by(OutboxRecord.subject_seq))]
    assert kinds[-2:] == ["seal.revoke", "seal.destroy"]
    assert reg.destroy_keys("admin", es_id) == []  # again: nothing left, nothing recorded twice
    assert world.count(AuditEntry, AuditEntry.action == "seal.destroy") == 1


def test_a_document_stamped_before_the_destruction_still_verifies(world: World) -> None:
    from stamping.verify.dispatch import verify_bytes

    reg = world.registry
    es_id = world.made()
    sealed = _stamped_pdf(world, es_id)
    world.clock.advance(minutes=5)
    reg.revoke("admin", es_id, "unit dissolved")
    assert not any(reg.keystore.exists(k) for k in _key_ids(world, es_id))
    result = verify_bytes(sealed, "before.pdf", reg.ca.trust_store(), reg.status_at)
    assert result.valid, result.to_json()


def test_keys_are_destroyed_only_after_revocation_and_by_an_administrator(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    with pytest.raises(InvalidState, match="only once it is revoked"):
        reg.destroy_keys("admin", es_id)
    with pytest.raises(NotAuthorised):
        reg.revoke("keeper", es_id, "not mine to end")
    assert all(reg.keystore.exists(k) for k in _key_ids(world, es_id))
