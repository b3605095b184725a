"""Identities are checked against the embedded stack's identity simulator over real HTTP — the
component ``sealflow stack`` runs and stops, with the register file the demo fills — on applying for
a seal and on using one; and an install that is not the embedded stack refuses both steps (and the
stack start) until ``SEALFLOW_IDENTITY_URL`` is set (issue 13 item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from sealflow import stack
from sealflow.stack.ports import free_port_block
from stamping.audit.models import AuditEntry
from stamping.registry import SealRegistry
from stamping.registry import identity_register as register_file
from stamping.registry.demo import DEMO_PERSON, DEMO_PERSON_ID, DEMO_UNIT, KEEPER, bootstrap_demo
from stamping.registry.errors import IdentityMismatch, IdentityNotConfigured
from stamping.registry.models import SealApplication
from stamping.registry.rules import demo_credit_code, demo_id_number
from tests.stack_fixtures import stop_stack

OTHER_UNIT, OTHER_CODE = "柳州市其他局", demo_credit_code("11450200MB0000002")
HOLDER, HOLDER_ID = "王五", demo_id_number("45010219900101002")
PIN = "official-246810"


@dataclass
class Checked:
    """A registry whose identity checks go to the stack's simulator, and the demo made through it."""

    settings: Settings
    registry: SealRegistry
    demo: dict

    def mismatches(self) -> list[AuditEntry]:
        with self.registry._sessions() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "identity.mismatch")
                                  .order_by(AuditEntry.seq)))

    def count(self, model) -> int:
        with self.registry._sessions() as s:
            return len(s.scalars(select(model)).all())

    def register(self, persons=(), units=()) -> None:
        register_file.register(self.settings.identity_register_file, persons=persons, units=units)


@pytest.fixture
def checked(tmp_path: Path) -> Iterator[Checked]:
    settings = Settings(home=tmp_path / "var", kek="66" * 32, review_levels=1, audit_key_pin="audit-pin-6",
                        identity_port=free_port_block(1))
    try:
        pointed = stack.ensure_identity(settings, out=lambda _m: None)  # the stack's identity component
        assert stack.alive(settings, "identity") is not None
        assert pointed.identity_url == f"http://127.0.0.1:{settings.identity_port}"
        engine = make_engine(pointed.resolved_database_url)
        migrate(engine)
        registry = SealRegistry(session_factory(engine), pointed)
        demo = bootstrap_demo(registry, official_pin=PIN)  # registers the demo's people, then applies
        yield Checked(pointed, registry, demo)
        engine.dispose()
    finally:
        stop_stack(settings.home)
    assert stack.alive(settings, "identity") is None  # `down` stopped it


def test_the_demos_people_pass_the_stack_register(checked: Checked) -> None:
    assert set(checked.demo["es_ids"]) == {"official", "personal"}
    assert checked.mismatches() == []
    checked.registry.check_can_use(checked.demo["es_ids"]["official"], KEEPER)  # using it is confirmed too


def test_an_application_for_a_unit_whose_credit_code_the_register_does_not_know_is_refused_and_audited(
        checked: Checked) -> None:
    reg = checked.registry
    reg.add_unit(OTHER_UNIT, OTHER_CODE, actor="admin", admin="outsider")
    reg.add_user(OTHER_CODE, "outsider", "keeper", actor="outsider")
    before = checked.count(SealApplication)
    with pytest.raises(IdentityMismatch, match=r"unit 柳州市其他局 .*no unit \(统一社会信用代码\) with that number"):
        reg.apply("outsider", OTHER_CODE, "official", OTHER_UNIT, keeper="outsider")
    assert checked.count(SealApplication) == before
    (entry,) = checked.mismatches()
    assert (entry.actor, entry.payload["step"], entry.payload["kind"]) == ("outsider", "seal.apply", "unit")
    assert "no unit" in entry.reason and OTHER_CODE not in str(entry.payload)
    # the register holds that code under another name: still refused, with that reason
    checked.register(units=[("柳州市另一个局", OTHER_CODE)])
    with pytest.raises(IdentityMismatch, match="registered name of that unit differs"):
        reg.apply("outsider", OTHER_CODE, "official", OTHER_UNIT, keeper="outsider")
    # registered as it is: the same application goes through
    checked.register(units=[(OTHER_UNIT, OTHER_CODE)])
    assert reg.apply("outsider", OTHER_CODE, "official", OTHER_UNIT, keeper="outsider") > 0
    assert len(checked.mismatches()) == 2


def test_an_application_for_a_person_whose_id_number_the_register_holds_under_another_name_is_refused(
        checked: Checked) -> None:
    reg = checked.registry
    reg.add_person(HOLDER, HOLDER_ID, actor="admin")
    reg.add_user(checked.demo["credit_code"], "holder-keeper", "keeper", person_id_number=HOLDER_ID, actor="admin")
    checked.register(persons=[("王五五", HOLDER_ID)])
    with pytest.raises(IdentityMismatch, match=r"person 王五 \(450102…\).*registered name of that person differs"):
        reg.apply("applicant", checked.demo["credit_code"], "personal", HOLDER, holder_id_number=HOLDER_ID,
                  keeper="holder-keeper")
    (entry,) = checked.mismatches()
    assert entry.payload == {"step": "seal.apply", "kind": "person", "name": HOLDER, "number_prefix": HOLDER_ID[:6]}


def test_using_a_seal_whose_keeper_the_register_no_longer_confirms_is_refused_and_audited(checked: Checked) -> None:
    official = checked.demo["es_ids"]["official"]
    checked.registry.seal_signer(official, PIN, KEEPER)  # confirmed: usable
    checked.register(persons=[("张三丰", DEMO_PERSON_ID)])  # the register now names the number otherwise
    with pytest.raises(IdentityMismatch, match=r"seal.use refused: .*person 张三"):
        checked.registry.seal_signer(official, PIN, KEEPER)
    with pytest.raises(IdentityMismatch):
        checked.registry.check_can_use(official, KEEPER)
    assert [(e.payload["step"], e.es_id, e.actor) for e in checked.mismatches()] == [("seal.use", official, KEEPER)] * 2
    checked.register(persons=[(DEMO_PERSON, DEMO_PERSON_ID)])  # corrected: the re-read register confirms again
    checked.registry.seal_signer(official, PIN, KEEPER)


def test_a_register_that_is_down_refuses_and_says_how_to_start_it(checked: Checked) -> None:
    stop_stack(checked.settings.home)
    with pytest.raises(IdentityMismatch, match=r"try again when the register answers .*sealflow stack up"):
        checked.registry.check_can_use(checked.demo["es_ids"]["official"], KEEPER)


# --- production: not the embedded stack -------------------------------------------------------


def _production(settings: Settings) -> Settings:
    """The same state as an install that names its object store (compose, a cluster) and no register."""
    return settings.with_overrides(s3_endpoint="http://store.internal:9000", identity_url="")


def test_production_without_an_identity_register_refuses_to_apply_and_to_use_and_audits_it(
        checked: Checked) -> None:
    prod = _production(checked.settings)
    assert not prod.embedded and stack.with_stack_identity(prod).identity_url == ""
    registry = SealRegistry(checked.registry._sessions, prod)
    with pytest.raises(IdentityNotConfigured, match="set SEALFLOW_IDENTITY_URL"):
        registry.apply("applicant", checked.demo["credit_code"], "official", DEMO_UNIT, keeper=KEEPER)
    with pytest.raises(IdentityNotConfigured, match="set SEALFLOW_IDENTITY_URL"):
        registry.seal_signer(checked.demo["es_ids"]["official"], PIN, KEEPER)
    assert [(e.payload["step"], e.payload["kind"]) for e in checked.mismatches()] == \
        [("seal.apply", "register"), ("seal.use", "register")]
    # configured, the same install checks against the register it names
    configured = SealRegistry(checked.registry._sessions,
                              prod.with_overrides(identity_url=checked.settings.identity_url))
    configured.seal_signer(checked.demo["es_ids"]["official"], PIN, KEEPER)


def test_production_without_an_identity_register_does_not_start(tmp_path: Path) -> None:
    prod = _production(Settings(home=tmp_path / "var", kek="66" * 32))
    for start in (lambda: stack.up(prod, out=lambda _m: None), lambda: stack.ensure_identity(prod),
                  lambda: stack.init_services(prod)):
        with pytest.raises(stack.IdentityNotConfigured, match="SEALFLOW_IDENTITY_URL"):
            start()
    assert not (prod.state_dir / "run").exists()  # refused before anything was started


def test_the_cli_refuses_a_seal_application_in_production_without_a_register(
        checked: Checked, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from kernel.settings import get_settings
    from sealflow.cli import main
    from stamping.registry.demo import credentials_file, keep_credentials

    creds = keep_credentials(checked.settings, checked.demo["credentials"])
    assert creds == credentials_file(checked.settings)
    for key, value in stack.sealflow_env(_production(checked.settings)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SEALFLOW_IDENTITY_URL", raising=False)
    monkeypatch.setenv("SEALFLOW_USER", "applicant")
    monkeypatch.setenv("SEALFLOW_USER_CREDENTIAL", checked.demo["credentials"]["applicant"])
    get_settings.cache_clear()
    try:
        code = main(["seal", "apply", "--unit", checked.demo["credit_code"], "--kind", "official",
                     "--name", DEMO_UNIT, "--keeper", KEEPER])
    finally:
        get_settings.cache_clear()
    assert code == 1
    err = capsys.readouterr().err
    assert "IdentityNotConfigured" in err and "SEALFLOW_IDENTITY_URL" in err
