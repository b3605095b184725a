"""Persons and units are checked against the identity registers (a local simulator over real HTTP)
on applying for a seal and on using one; a mismatch refuses the step with the register's reason
and is audited (issue 13 item 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from stamping.audit.models import AuditEntry
from stamping.registry import SealRegistry
from stamping.registry.errors import IdentityMismatch, IdentityRegisterUnavailable
from stamping.registry.identity_source import HttpIdentitySource
from stamping.registry.models import SealApplication
from tests.registry.conftest import OTHER_CODE, OTHER_UNIT, PERSON, PERSON_ID, PIN, UNIT, UNIT_CODE, World

REPO_ROOT = Path(__file__).resolve().parents[2]


class Register:
    """A running ``python -m stamping.registry.identity_simulator`` holding ``persons`` and ``units``."""

    def __init__(self, folder: Path, persons: list[tuple[str, str]], units: list[tuple[str, str]]) -> None:
        data = folder / "registers.json"
        data.write_text(json.dumps({"persons": [{"name": n, "id_number": i} for n, i in persons],
                                    "units": [{"name": n, "credit_code": c} for n, c in units]}, ensure_ascii=False))
        self.proc = subprocess.Popen([sys.executable, "-m", "stamping.registry.identity_simulator", "--port", "0",
                                      "--data", str(data)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert "listening on" in line, line
        self.url = line.strip().rsplit(" ", 1)[-1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def register(tmp_path: Path) -> Iterator[Register]:
    # the register knows UNIT and the holder under another name; OTHER_UNIT is not in it at all
    reg = Register(tmp_path, persons=[("李四四", PERSON_ID)], units=[(UNIT, UNIT_CODE)])
    yield reg
    reg.stop()


def _checked(world: World, url: str) -> SealRegistry:
    r = world.registry
    return SealRegistry(r.sessions, r.settings, r.keystore, r.ca, clock=world.clock, identity=HttpIdentitySource(url))


def _mismatches(world: World) -> list[AuditEntry]:
    with world.registry.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "identity.mismatch")))


def test_a_registered_unit_may_apply(world: World, register: Register) -> None:
    app = _checked(world, register.url).apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    assert app > 0 and _mismatches(world) == []


def test_a_unit_the_register_does_not_know_is_refused_and_audited(world: World, register: Register) -> None:
    before = world.count(SealApplication)
    with pytest.raises(IdentityMismatch, match="no unit"):
        _checked(world, register.url).apply("outsider", OTHER_CODE, "official", OTHER_UNIT, keeper="outsider")
    assert world.count(SealApplication) == before
    (entry,) = _mismatches(world)
    assert entry.actor == "outsider" and entry.payload["step"] == "seal.apply" and "no unit" in entry.reason
    assert OTHER_CODE not in json.dumps(entry.payload)  # the number is not copied whole into the log


def test_a_holder_whose_name_differs_in_the_register_is_refused(world: World, register: Register) -> None:
    with pytest.raises(IdentityMismatch, match="registered name"):
        _checked(world, register.url).apply("applicant", UNIT_CODE, "personal", PERSON, holder_id_number=PERSON_ID,
                                            keeper="keeper")


def test_using_a_seal_checks_the_keeper_against_the_register(world: World, register: Register) -> None:
    es_id = world.made()  # made without checks; the keeper is linked to PERSON
    with pytest.raises(IdentityMismatch, match="person"):
        _checked(world, register.url).seal_signer(es_id, PIN, "keeper")
    with pytest.raises(IdentityMismatch):
        _checked(world, register.url).check_can_use(es_id, "keeper")
    assert [e.payload["step"] for e in _mismatches(world)] == ["seal.use", "seal.use"]


def test_a_register_that_does_not_answer_refuses(world: World) -> None:
    with pytest.raises(IdentityMismatch, match="try again"):
        _checked(world, "http://127.0.0.1:9").apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")


def test_a_register_that_cannot_be_asked_is_told_apart_from_one_that_disagrees(
        world: World, register: Register) -> None:
    """Both refuse the step; only the first may pass on a retry (the batch's stamping step retries it)."""
    with pytest.raises(IdentityRegisterUnavailable):
        _checked(world, "http://127.0.0.1:9").apply("applicant", UNIT_CODE, "official", UNIT, keeper="keeper")
    with pytest.raises(IdentityMismatch) as disagreed:
        _checked(world, register.url).apply("outsider", OTHER_CODE, "official", OTHER_UNIT, keeper="outsider")
    assert not isinstance(disagreed.value, IdentityRegisterUnavailable)
