"""An audited use names the signature it made (SM3 of the signature value); 验章 with the registry
finds it there — and does not find a signature made with the seal's key outside SealFlow."""

from __future__ import annotations

from tests.registry.conftest import PIN, World


def test_a_recorded_signature_is_found_and_an_unrecorded_one_is_not(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    signer, _seal = reg.seal_signer(es_id, PIN, "keeper")
    ours, theirs = signer.sign(b"document one"), signer.sign(b"made outside SealFlow")
    reg.record_use(es_id, "keeper", "a.pdf sm3:00", None, signature_value=ours)
    assert reg.use_recorded(es_id, ours) is True
    assert reg.use_recorded(es_id, theirs) is False
    assert reg.use_recorded("45000000000000", ours) is None  # not a seal of this registry


def test_uses_recorded_by_a_batch_are_found_after_the_first_lookup(world: World) -> None:
    from gmpki.gm.sm3 import sm3

    reg = world.registry
    es_id = world.made()
    assert reg.use_recorded(es_id, b"sig-1") is False  # read (and cached) before the batch's uses exist
    with reg.sessions() as s, s.begin():
        reg.record_uses(s, es_id=es_id, actor="keeper", batch_id="b1",
                        documents=[("x.ofd", "11", sm3(b"sig-1").hex()), ("y.ofd", "22", "")])
    assert reg.use_recorded(es_id, b"sig-1") is True
    assert reg.use_recorded(es_id, b"sig-2") is False
