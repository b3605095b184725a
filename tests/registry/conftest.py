"""Fixtures of the registry tests: one demo CA per session, a registry per database with a clock
the test moves, and a small world of units, persons and users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from gmpki.pki.ca import DemoCA
from kernel.db import session_factory
from kernel.keys import key_store
from kernel.settings import Settings
from stamping.registry import SealRegistry
from stamping.registry.rules import demo_credit_code, demo_id_number

UNIT = "南宁市测试局"
UNIT_CODE = demo_credit_code("11450100MB0000001")
OTHER_UNIT = "柳州市其他局"
OTHER_CODE = demo_credit_code("11450200MB0000002")
PERSON, PERSON_ID = "李四", demo_id_number("45010219900101001")
OTHER_PERSON, OTHER_PERSON_ID = "王五", demo_id_number("45010219900101002")
PIN = "keeper-pin-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)  # inside the demo CA's validity

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@dataclass
class World:
    registry: SealRegistry
    clock: Clock
    engine: Engine

    def count(self, model, *where) -> int:
        with self.registry.sessions() as s:
            return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

    def approved(self, kind: str = "official", name: str = UNIT, **kw) -> int:
        app = self.registry.apply("applicant", UNIT_CODE, kind, name, keeper="keeper", **kw)
        self.registry.review("reviewer1", app, 1, True)
        self.registry.review("reviewer2", app, 2, True)
        return app

    def made(self, kind: str = "official", name: str = UNIT, **kw) -> str:
        return self.registry.make("keeper", self.approved(kind, name, **kw), PIN)


@pytest.fixture(scope="session")
def demo_ca(tmp_path_factory: pytest.TempPathFactory) -> DemoCA:
    return DemoCA.create(tmp_path_factory.mktemp("registry-ca") / "ca")


@pytest.fixture
def world(db_engine: Engine, tmp_path: Path, demo_ca: DemoCA) -> World:
    settings = Settings(home=tmp_path / "var", kek="11" * 32, review_levels=2, seal_validity_days=365,
                        audit_checkpoint_every=5, audit_key_pin="audit-pin-1")
    clock = Clock()
    reg = SealRegistry(session_factory(db_engine), settings, key_store(settings), demo_ca, clock=clock)
    reg.bootstrap("admin", UNIT, UNIT_CODE, os_login="test-admin")  # the first administrator
    reg.add_unit(OTHER_UNIT, OTHER_CODE, actor="admin", admin="outsider")
    reg.add_person(PERSON, PERSON_ID, actor="admin")
    reg.add_person(OTHER_PERSON, OTHER_PERSON_ID, actor="admin")
    for user, role, level, person in (("applicant", "applicant", 0, None),
                                      ("keeper", "keeper", 0, PERSON_ID), ("reviewer1", "reviewer", 1, None),
                                      ("reviewer1b", "reviewer", 1, None), ("reviewer2", "reviewer", 2, None)):
        reg.add_user(UNIT_CODE, user, role, level=level, person_id_number=person, actor="admin")
    for user, role in (("outsider", "applicant"), ("outsider", "keeper")):
        reg.add_user(OTHER_CODE, user, role, actor="outsider")
    return World(reg, clock, db_engine)
