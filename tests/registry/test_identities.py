"""Who acts comes from authentication, never from a flag: the OS login an administrator mapped, or
a credential; only a unit's administrator manages its users; the first administrator is
bootstrapped only while nobody can authenticate; the demo makes its people the same way
(issue 13 item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.settings import get_settings
from sealflow.cli import main
from sealflow.commands.seal import os_login
from stamping.audit.models import AuditEntry
from stamping.registry.errors import InvalidInput, NotAuthenticated, NotAuthorised
from stamping.registry.rules import demo_credit_code, demo_id_number
from tests.registry.conftest import OTHER_CODE, UNIT, UNIT_CODE, World
from tests.stack_fixtures import cli_identity_port, stop_stack


def test_the_mapped_os_login_authenticates(world: World) -> None:
    assert world.registry.authenticate(os_login="test-admin") == "admin"
    with pytest.raises(NotAuthenticated, match="not mapped"):
        world.registry.authenticate(os_login="mallory")


def test_a_credential_authenticates_only_its_user(world: World) -> None:
    reg = world.registry
    reg.add_user(UNIT_CODE, "clerk", "records_office", actor="admin", credential="clerk-credential-1")
    assert reg.authenticate(username="clerk", credential="clerk-credential-1") == "clerk"
    for user, secret in (("clerk", "clerk-credential-2"), ("keeper", "clerk-credential-1"), ("nobody", "x" * 12)):
        with pytest.raises(NotAuthenticated, match="do not match"):
            reg.authenticate(username=user, credential=secret)


def test_only_an_administrator_of_the_unit_manages_its_users(world: World) -> None:
    reg = world.registry
    # the insider path of the issue: a user of one unit granting himself roles in another
    with pytest.raises(NotAuthorised, match="manage the users"):
        reg.add_user(UNIT_CODE, "outsider", "applicant", actor="outsider")  # admin of the other unit only
    with pytest.raises(NotAuthorised, match="manage the users"):
        reg.add_user(OTHER_CODE, "keeper", "admin", actor="keeper")
    with pytest.raises(NotAuthorised, match="manage the users"):
        reg.add_user(UNIT_CODE, "keeper", "admin", actor="keeper")  # nor in his own unit
    reg.add_user(UNIT_CODE, "operator1", "operator", actor="admin")


def test_units_and_persons_are_registered_by_administrators_only(world: World) -> None:
    reg = world.registry
    with pytest.raises(NotAuthorised, match="top-level unit"):
        reg.add_unit("某某局", demo_credit_code("11450100MB0000099"), actor="keeper")
    with pytest.raises(NotAuthorised, match="register persons"):
        reg.add_person("赵六", demo_id_number("45010219900101009"), actor="keeper")


def test_granting_a_role_never_hands_over_an_existing_identity(world: World) -> None:
    reg = world.registry
    with pytest.raises(NotAuthorised, match="theirs"):
        reg.add_user(OTHER_CODE, "admin", "keeper", actor="outsider", os_login="outsider-login")
    with pytest.raises(NotAuthorised, match="can authenticate already"):
        reg.enrol("admin", "admin", credential="new-credential-1")
    # "keeper" has no proof yet; the other unit's administrator may not give him one
    with pytest.raises(NotAuthorised, match="every unit"):
        reg.enrol("outsider", "keeper", os_login="outsider-login")
    reg.enrol("admin", "keeper", os_login="keeper-login")
    assert reg.authenticate(os_login="keeper-login") == "keeper"


def test_the_first_administrator_is_bootstrapped_once(world: World) -> None:
    with pytest.raises(NotAuthorised, match="administrators already"):
        world.registry.bootstrap("mallory", UNIT, UNIT_CODE, os_login="mallory")
    with pytest.raises(InvalidInput):
        world.registry.bootstrap("mallory", UNIT, UNIT_CODE)  # no proof at all


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "var"
    for key, value in {"SEALFLOW_HOME": str(home), "SEALFLOW_KEK": "44" * 32, "SEALFLOW_DATABASE_URL": "",
                       "SEALFLOW_REVIEW_LEVELS": "1", "SEALFLOW_AUDIT_KEY_PIN": "audit-pin-9"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SEALFLOW_USER", raising=False)
    get_settings.cache_clear()
    cli_identity_port(monkeypatch)  # demo-setup starts the stack's identity simulator
    yield home
    stop_stack(home)
    get_settings.cache_clear()


def test_at_the_command_line_the_actor_flag_is_checked_not_trusted(home: Path, capsys, monkeypatch) -> None:
    assert main(["seal", "demo-setup", "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    creds = json.loads(Path(demo["credential_file"]).read_text())
    official = demo["es_ids"]["official"]
    assert main(["seal", "whoami", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["username"] == "admin"  # the OS user who ran the demo
    # the OS user claims to be the keeper: refused, nothing happens
    assert main(["seal", "report-lost", official, "--reason", "x", "--actor", "keeper"]) == 2
    assert "authenticated as 'admin'" in capsys.readouterr().err
    # $USER and $LOGNAME are not who you are
    monkeypatch.setenv("USER", "keeper")
    monkeypatch.setenv("LOGNAME", "keeper")
    assert os_login() != "keeper"
    # a wrong credential is refused
    monkeypatch.setenv("SEALFLOW_USER", "keeper")
    monkeypatch.setenv("SEALFLOW_USER_CREDENTIAL", creds["reviewer1"])
    assert main(["seal", "report-lost", official, "--reason", "x"]) == 1
    assert "do not match" in capsys.readouterr().err
    monkeypatch.setenv("SEALFLOW_USER_CREDENTIAL", creds["keeper"])
    assert main(["seal", "report-lost", official, "--reason", "lost it"]) == 0
    capsys.readouterr()
    assert main(["audit", "show", "--action", "seal.report_lost", "--json"]) == 0
    assert [e["actor"] for e in json.loads(capsys.readouterr().out)] == ["keeper"]


def test_the_demo_makes_its_people_through_the_same_path(home: Path, capsys) -> None:
    assert main(["seal", "demo-setup", "--json"]) == 0
    demo = json.loads(capsys.readouterr().out)
    from sealflow.commands.seal import registry

    reg = registry(get_settings())
    with reg.sessions() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.in_(("registry.bootstrap", "user.grant")))
                            .order_by(AuditEntry.seq)).all()
    assert entries[0].action == "registry.bootstrap" and entries[0].payload["os_login"] == os_login()
    grants = {(e.payload["username"], e.payload["role"]) for e in entries[1:]}
    assert all(e.actor == "admin" for e in entries[1:])
    assert {("keeper", "keeper"), ("reviewer1", "reviewer"), ("records", "records_office"), ("operator", "operator"),
            ("archivist", "archivist"), ("auditor", "auditor"), ("applicant", "applicant")} <= grants
    assert demo["users"]["auditor"] == "auditor"
