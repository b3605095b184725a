"""Every lifecycle transition of the registry and every refusal, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import x509
from sqlalchemy import select

from filing.outbox import OutboxRecord
from filing.protocol import record_body, validate_record
from gmpki.gm.sm2 import signature_der_to_raw
from gmpki.gm.sm3 import sm3
from stamping.audit.models import AuditEntry
from stamping.registry import (
    InvalidInput,
    InvalidState,
    NameMismatch,
    NotAuthorised,
    PinRefused,
    RenewalWindow,
    ReviewRefused,
    SealNotActive,
    SealRevoked,
)
from stamping.registry.models import Seal, StatusChange, aware
from stamping.registry.service import cert_info
from stamping.ses.codec import parse_seal
from stamping.verdict.result import SealStatus, SignatureResult
from stamping.verdict.seal_checks import check_seal
from tests.registry.conftest import (
    OTHER_CODE,
    OTHER_PERSON_ID,
    PERSON,
    PERSON_ID,
    PIN,
    UNIT,
    UNIT_CODE,
    World,
)


def _outbox(world: World, es_id: str) -> list[OutboxRecord]:
    with world.registry.sessions() as s:
        return list(s.scalars(select(OutboxRecord).where(OutboxRecord.subject == es_id)
                              .order_by(OutboxRecord.subject_seq)))


def _valid_filing(rec: OutboxRecord) -> None:
    validate_record(record_body(rec.record_id, rec.kind, rec.subject, rec.subject_seq, aware(rec.created_at),
                                rec.payload))


def test_make_official_seal_end_to_end(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    info = reg.show(es_id)
    assert (info["status"], info["version"], info["name"], info["kind"], info["type_code"]) == (
        "active", 1, UNIT, "official", 1)
    seal = parse_seal(reg.seal_der(es_id))
    assert (seal.version, seal.es_id, seal.name, seal.seal_type) == (4, es_id, UNIT, 1)
    # validity of the seal == validity of its signer certificate
    cert = cert_info(seal.cert_list[0])
    assert (seal.valid_start, seal.valid_end) == (cert.not_before, cert.not_after)
    assert cert.not_after - cert.not_before == timedelta(days=365)
    assert "11450100MB0000001" in x509.Certificate.load(seal.cert_list[0]).subject.human_friendly
    # filed in the same transaction, with every field the platform needs
    (rec,) = _outbox(world, es_id)
    assert rec.kind == "seal.make"
    _valid_filing(rec)
    p = rec.payload
    assert (p["owner_id"], p["seal_kind"], p["seal_sm3"]) == (UNIT_CODE, "official", sm3(seal.der).hex())
    assert p["signer_certs"][0]["sm3"] == sm3(seal.cert_list[0]).hex()
    # a seal the registry made passes every 验章 seal check (maker signature, chains, validity, status)
    result = SignatureResult()
    signer, seal_der = reg.seal_signer(es_id, PIN, "keeper")
    assert seal_der == seal.der and signer.certificate == seal.cert_list[0]
    check_seal(result, seal, signer.certificate, world.clock.now + timedelta(hours=1), reg.ca.trust_store(),
               reg.status_at)
    assert all(c.ok for c in result.checks), [(c.name, c.reason) for c in result.checks if not c.ok]
    assert {"maker_signature", "seal_status", "maker_chain", "signer_chain"} <= {c.name for c in result.checks}


def test_registry_seal_verifies_with_gmssl(world: World) -> None:
    """Independent path: gmssl's pure-Python SM2 over DER(SES_SealInfo) of a registry seal."""
    from gmssl import sm2

    es_id = world.made("personal", PERSON, holder_id_number=PERSON_ID)
    seal = parse_seal(world.registry.seal_der(es_id))
    spki = x509.Certificate.load(seal.maker_cert)["tbs_certificate"]["subject_public_key_info"]
    verifier = sm2.CryptSM2(public_key="00", private_key=None)
    verifier.public_key = spki["public_key"].contents[2:].hex()
    raw = signature_der_to_raw(seal.signed_value).hex()
    assert verifier.verify_with_sm3(raw, seal.signed_bytes)
    assert not verifier.verify_with_sm3(raw, seal.signed_bytes.replace(PERSON.encode(), "李五".encode()))
    assert seal.seal_type == 2 and seal.name == PERSON
    assert _outbox(world, es_id)[0].payload["owner_id"] == PERSON_ID  # a personal seal's owner is its holder


NAME_REFUSALS = [
    ("personal", "李 四", None, PERSON_ID, NameMismatch),
    ("personal", "王五", None, PERSON_ID, NameMismatch),
    ("personal", PERSON, None, None, InvalidInput),
    ("position", "王五", None, PERSON_ID, NameMismatch),
    ("official", "南宁市测试", None, None, NameMismatch),
    ("official", UNIT + "办公室", "legal_name", None, NameMismatch),
    ("official", "办公室", "internal_body", None, NameMismatch),
    ("official", UNIT, "branch", None, NameMismatch),
    ("official", UNIT + "合同章", "business", None, NameMismatch),
    ("official", UNIT, "stamp", None, InvalidInput),
    ("sovereign", UNIT, None, None, InvalidInput),
]


def test_seal_name_rules(world: World) -> None:
    # one database per test is the slow part: the cases share it
    for kind, name, sub, holder, error in NAME_REFUSALS:
        with pytest.raises(error) as exc:
            world.registry.apply("applicant", UNIT_CODE, kind, name, official_type=sub, holder_id_number=holder,
                                 keeper="keeper")
        assert str(exc.value), (kind, name)
    assert world.count(AuditEntry, AuditEntry.action == "seal.apply") == 0
    for sub, name in (("internal_body", UNIT + "办公室"), ("branch", UNIT + "青秀分局"),
                      ("business", UNIT + "合同专用章"), ("legal_name", " " + UNIT)):
        app = world.registry.apply("applicant", UNIT_CODE, "official", name, official_type=sub, keeper="keeper")
        assert world.registry.list_applications()[-1]["id"] == app
    assert world.count(AuditEntry, AuditEntry.action == "seal.apply") == 4


def test_position_seal_named_after_its_holder(world: World) -> None:
    es_id = world.made("position", PERSON, holder_id_number=PERSON_ID)
    assert world.registry.show(es_id)["type_code"] == 6
    # a position seal is used for the unit: its certificate is the unit's
    assert "11450100MB0000001" in x509.Certificate.load(parse_seal(world.registry.seal_der(es_id)).cert_list[0]
                                                          ).subject.human_friendly


def test_personal_seal_is_kept_by_its_holder(world: World) -> None:
    world.registry.add_user(UNIT_CODE, "keeper2", "keeper", actor="admin")
    with pytest.raises(InvalidInput, match="kept by its holder"):
        world.registry.apply("applicant", UNIT_CODE, "personal", PERSON, holder_id_number=PERSON_ID, keeper="keeper2")
    with pytest.raises(InvalidInput, match="not a keeper"):
        world.registry.apply("applicant", UNIT_CODE, "official", UNIT, keeper="reviewer2")


def test_review_rules(world: World) -> None:
    reg = world.registry
    app = reg.apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    with pytest.raises(ReviewRefused, match="waits for level 1"):
        reg.review("reviewer2", app, 2, True)
    with pytest.raises(NotAuthorised, match="reviewer"):
        reg.review("reviewer2", app, 1, True)  # a level-2 reviewer cannot decide level 1
    with pytest.raises(NotAuthorised):
        reg.review("outsider", app, 1, True)
    with pytest.raises(InvalidState, match="only after all 2"):
        reg.make("keeper", app, PIN)
    assert reg.review("reviewer1", app, 1, True) == "submitted"
    reg.add_user(UNIT_CODE, "reviewer1", "reviewer", level=2, actor="admin")
    with pytest.raises(ReviewRefused, match="different reviewer"):
        reg.review("reviewer1", app, 2, True)
    assert reg.review("reviewer2", app, 2, True) == "approved"
    with pytest.raises(InvalidState):
        reg.review("reviewer2", app, 3, True)
    # the applicant never reviews its own application
    reg.add_user(UNIT_CODE, "applicant", "reviewer", level=1, actor="admin")
    app2 = reg.apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    with pytest.raises(ReviewRefused, match="applied for this seal"):
        reg.review("applicant", app2, 1, True)


def test_rejected_application_is_never_made(world: World) -> None:
    reg = world.registry
    app = reg.apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    reg.review("reviewer1", app, 1, True)
    assert reg.review("reviewer2", app, 2, False, "no impression attached") == "rejected"
    with pytest.raises(InvalidState, match="rejected"):
        reg.make("keeper", app, PIN)
    assert world.count(Seal) == 0


def test_only_the_owning_units_users(world: World) -> None:
    reg = world.registry
    with pytest.raises(NotAuthorised, match="apply"):
        reg.apply("outsider", UNIT_CODE, "official", UNIT, keeper="keeper")
    with pytest.raises(NotAuthorised):
        reg.apply("keeper", UNIT_CODE, "official", UNIT)  # a keeper is no applicant
    app = world.approved()
    with pytest.raises(NotAuthorised, match="make"):
        reg.make("outsider", app, PIN)
    es_id = reg.make("keeper", app, PIN)
    for call in (lambda: reg.seal_signer(es_id, PIN, "outsider"), lambda: reg.seal_signer(es_id, PIN, "reviewer1"),
                 lambda: reg.change("outsider", es_id, PIN), lambda: reg.renew("outsider", es_id, PIN),
                 lambda: reg.revoke("keeper", es_id, "not an admin"), lambda: reg.report_lost("outsider", es_id, "x"),
                 lambda: reg.change("keeper", es_id, PIN, new_unit_code=OTHER_CODE)):
        with pytest.raises(NotAuthorised):
            call()
    assert reg.show(es_id)["status"] == "active"
    with pytest.raises(PinRefused, match="wrong PIN"):
        reg.seal_signer(es_id, "not-the-pin", "keeper")


def test_renewal_only_in_the_30_days_before_expiry(world: World) -> None:
    reg, clock = world.registry, world.clock
    es_id = world.made()
    old = reg.show(es_id)
    with pytest.raises(RenewalWindow, match="renewal opens on"):
        reg.renew("keeper", es_id, PIN)
    clock.advance(days=365 - 31)
    with pytest.raises(RenewalWindow):
        reg.renew("keeper", es_id, PIN)
    clock.advance(days=2)
    assert reg.renew("keeper", es_id, PIN) == 2
    new = reg.show(es_id)
    assert new["es_id"] == es_id and new["version"] == 2 and new["seal_sm3"] != old["seal_sm3"]
    seal = parse_seal(reg.seal_der(es_id))
    cert = cert_info(seal.cert_list[0])
    assert (seal.valid_start, seal.valid_end) == (cert.not_before, cert.not_after) == (
        clock.now, parse_seal(reg.seal_der(es_id, 1)).valid_end + timedelta(days=365))
    assert len(new["certificates"]) == 2
    assert [r.kind for r in _outbox(world, es_id)] == ["seal.make", "seal.renew"]
    _valid_filing(_outbox(world, es_id)[1])
    signer, der = reg.seal_signer(es_id, PIN, "keeper")
    assert der == seal.der and signer.certificate == seal.cert_list[0]
    clock.advance(days=400)
    with pytest.raises(RenewalWindow, match="expired"):
        reg.renew("keeper", es_id, PIN)


def test_expiry_by_the_scheduled_job_not_on_read(world: World) -> None:
    reg, clock = world.registry, world.clock
    es_id, lost = world.made(), world.made()
    reg.report_lost("keeper", lost, "lost laptop")
    made_at = clock.now
    clock.advance(days=366)
    assert reg.show(es_id)["status"] == "active"  # nothing expires lazily on read
    with pytest.raises(SealNotActive, match="outside its validity"):
        reg.seal_signer(es_id, PIN, "keeper")
    assert sorted(reg.expire_due()) == sorted([es_id, lost])
    assert reg.expire_due() == []
    assert reg.show(es_id)["status"] == "expired" and reg.show(lost)["status"] == "expired"
    assert reg.status_at(es_id, made_at + timedelta(days=1)) is SealStatus.ACTIVE
    assert reg.status_at(es_id, clock.now) is SealStatus.EXPIRED
    assert _outbox(world, es_id)[-1].kind == "seal.expire"
    _valid_filing(_outbox(world, es_id)[-1])
    with pytest.raises(SealNotActive, match="expired"):
        reg.seal_signer(es_id, PIN, "keeper")


def test_lost_seal_suspended_at_once_then_resumed(world: World) -> None:
    reg, clock = world.registry, world.clock
    es_id = world.made()
    t_active = clock.now
    clock.advance(hours=1)
    reg.report_lost("reviewer1", es_id, "USB key missing")  # any user of the unit may report
    with pytest.raises(SealNotActive, match="suspended"):
        reg.seal_signer(es_id, PIN, "keeper")
    with pytest.raises(SealNotActive):
        reg.renew("keeper", es_id, PIN)
    with pytest.raises(SealNotActive):
        reg.report_lost("keeper", es_id, "again")
    t_suspended = clock.advance(hours=1)
    with pytest.raises(NotAuthorised):
        reg.resume("keeper", es_id, "found")
    clock.advance(hours=1)
    reg.resume("admin", es_id, "found in the safe")
    with pytest.raises(SealNotActive):
        reg.resume("admin", es_id, "twice")
    assert reg.status_at(es_id, t_active) is SealStatus.ACTIVE
    assert reg.status_at(es_id, t_suspended) is SealStatus.SUSPENDED
    assert reg.status_at(es_id, clock.now) is SealStatus.ACTIVE
    assert reg.status_at("no-such-seal", clock.now) is None
    assert [r.kind for r in _outbox(world, es_id)] == ["seal.make", "seal.suspend", "seal.resume"]
    assert reg.seal_signer(es_id, PIN, "keeper")[1] == reg.seal_der(es_id)
    history = reg.show(es_id)["history"]
    assert [(h["from"], h["to"]) for h in history] == [(None, "active"), ("active", "suspended"),
                                                       ("suspended", "active")]


def test_revocation_is_final_and_keeps_earlier_signatures_valid(world: World) -> None:
    reg, clock = world.registry, world.clock
    es_id = world.made()
    signed_at = clock.advance(days=1)
    clock.advance(days=1)
    reg.revoke("admin", es_id, "unit dissolved")
    assert reg.status_at(es_id, signed_at) is SealStatus.ACTIVE  # a signature before the revocation stays valid
    assert reg.status_at(es_id, clock.now) is SealStatus.REVOKED
    for call in (lambda: reg.resume("admin", es_id, "undo"), lambda: reg.revoke("admin", es_id, "again"),
                 lambda: reg.report_lost("admin", es_id, "x"), lambda: reg.renew("admin", es_id, PIN),
                 lambda: reg.change("admin", es_id, PIN), lambda: reg.seal_signer(es_id, PIN, "keeper")):
        with pytest.raises(SealRevoked, match="final"):
            call()
    clock.advance(days=400)
    assert reg.expire_due() == []
    assert [r.kind for r in _outbox(world, es_id)] == ["seal.make", "seal.revoke", "seal.destroy"]
    assert _outbox(world, es_id)[1].payload["reason"] == "unit dissolved"


def test_change_after_rename_makes_a_new_seal_and_retires_the_old(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    with pytest.raises(NameMismatch):
        reg.change("keeper", es_id, PIN, new_name="南宁市新名称局")  # the unit's legal name is still the old one
    with pytest.raises(NotAuthorised):
        reg.rename_unit(UNIT_CODE, "南宁市新名称局", actor="keeper")
    reg.rename_unit(UNIT_CODE, "南宁市新名称局", actor="admin", reason="机构改革")
    new_id = reg.change("keeper", es_id, PIN, new_name="南宁市新名称局", reason="unit renamed")
    assert new_id != es_id
    old, new = reg.show(es_id), reg.show(new_id)
    assert (old["status"], old["superseded_by"]) == ("retired", new_id)
    assert (new["status"], new["supersedes"], new["name"], new["version"]) == ("active", es_id, "南宁市新名称局", 1)
    assert parse_seal(reg.seal_der(new_id)).name == "南宁市新名称局"
    assert [r.kind for r in _outbox(world, es_id)] == ["seal.make", "seal.change"]
    assert _outbox(world, es_id)[1].payload["superseded_by"] == new_id
    assert [r.kind for r in _outbox(world, new_id)] == ["seal.make"]
    for rec in _outbox(world, es_id) + _outbox(world, new_id):
        _valid_filing(rec)
    assert reg.status_at(es_id, world.clock.now) is SealStatus.RETIRED
    with pytest.raises(SealNotActive, match="superseded by"):
        reg.seal_signer(es_id, PIN, "keeper")
    reg.seal_signer(new_id, PIN, "keeper")


def test_merger_moves_the_seal_to_the_new_unit(world: World) -> None:
    reg = world.registry
    es_id = world.made("official", UNIT + "办公室", official_type="internal_body")
    reg.add_user(OTHER_CODE, "keeper", "keeper", actor="outsider")
    new_id = reg.change("keeper", es_id, PIN, new_name="柳州市其他局办公室", new_unit_code=OTHER_CODE,
                        reason="merged")
    assert reg.show(new_id)["credit_code"] == OTHER_CODE
    assert _outbox(world, new_id)[0].payload["owner_id"] == OTHER_CODE


def test_refused_or_failed_steps_leave_no_outbox_or_audit_rows(world: World, monkeypatch) -> None:
    reg = world.registry
    es_id = world.made()
    before = (world.count(OutboxRecord), world.count(AuditEntry), world.count(StatusChange))
    with pytest.raises(NotAuthorised):
        reg.revoke("keeper", es_id, "no right")
    with pytest.raises(RenewalWindow):
        reg.renew("keeper", es_id, PIN)

    def boom(*a, **kw):  # fault injection: fails after the outbox row is added
        raise RuntimeError("disk full")

    monkeypatch.setattr(reg.audit, "append", boom)
    with pytest.raises(RuntimeError):
        reg.report_lost("keeper", es_id, "lost")
    monkeypatch.undo()
    assert (world.count(OutboxRecord), world.count(AuditEntry), world.count(StatusChange)) == before
    assert reg.show(es_id)["status"] == "active"


def test_uses_are_audited(world: World) -> None:
    reg = world.registry
    es_id = world.made()
    entry = reg.record_use(es_id, "keeper", "a.pdf sm3:00", "batch-1", "licence issued")
    assert (entry.action, entry.es_id, entry.payload["batch_id"]) == ("seal.use", es_id, "batch-1")
    with reg.sessions() as s, s.begin():
        reg.record_uses(s, es_id=es_id, actor="keeper", batch_id="b2", documents=[("x.ofd", "11"), ("y.ofd", "22")])
    with reg.sessions() as s:
        docs = [e.payload["document"] for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "seal.use")
                                                         .order_by(AuditEntry.seq))]
    assert docs == ["a.pdf sm3:00", "x.ofd sm3:11", "y.ofd sm3:22"]
    reg.check_can_use(es_id, "keeper")
    with pytest.raises(NotAuthorised):
        reg.check_can_use(es_id, "outsider")


def test_bad_identifiers_refused(world: World) -> None:
    reg = world.registry
    with pytest.raises(InvalidInput, match="统一社会信用代码"):
        reg.add_unit("某单位", "11450100MB0000001X", actor="admin")
    with pytest.raises(InvalidInput, match="公民身份号码"):
        reg.add_person("某人", OTHER_PERSON_ID[:-1] + ("0" if OTHER_PERSON_ID[-1] != "0" else "1"), actor="admin")
    with pytest.raises(InvalidInput, match="already registered"):
        reg.add_unit(UNIT, UNIT_CODE, actor="admin")
    with pytest.raises(InvalidInput, match="level"):
        reg.add_user(UNIT_CODE, "x", "reviewer", actor="admin")
