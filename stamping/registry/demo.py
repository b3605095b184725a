"""A demo registry in one call: a unit, a person, their users, one official and one personal seal,
made end to end (apply → reviews → make). The pipeline and ``sealflow demo`` start from this."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import select

from stamping.registry import rules
from stamping.registry.models import Person, Seal, Unit
from stamping.registry.service import SealRegistry, state_file

DEMO_UNIT = "南宁市示范行政审批局"
DEMO_UNIT_CODE = rules.demo_credit_code("11450100MB1234567")
DEMO_PERSON = "张三"
DEMO_PERSON_ID = rules.demo_id_number("45010219800101123")
KEEPER, APPLICANT, ADMIN = "keeper", "applicant", "admin"


def _reviewer(level: int) -> str:
    return f"reviewer{level}"


def bootstrap_demo(registry: SealRegistry, *, official_pin: str | None = None, personal_pin: str | None = None,
                   actor: str = ADMIN) -> dict[str, Any]:
    """Create (or find, when run again) the demo unit, person, users and two active seals.

    Returns ``{"unit", "credit_code", "person", "users", "es_ids": {"official", "personal"},
    "pins": {...}}``; PINs are only returned for seals made by this call (they are the keeper's
    secret: the caller hands them on, they are not stored). A summary without PINs is written to
    ``<state>/registry/demo.json``.
    """
    levels = max(1, registry.settings.review_levels)
    existing = _existing(registry)
    if existing is None:
        registry.add_unit(DEMO_UNIT, DEMO_UNIT_CODE, actor=actor)
        registry.add_person(DEMO_PERSON, DEMO_PERSON_ID, actor=actor)
        registry.add_user(DEMO_UNIT_CODE, ADMIN, "admin", actor=actor)
        registry.add_user(DEMO_UNIT_CODE, APPLICANT, "applicant", actor=actor)
        registry.add_user(DEMO_UNIT_CODE, KEEPER, "keeper", person_id_number=DEMO_PERSON_ID, actor=actor)
        for level in range(1, levels + 1):
            registry.add_user(DEMO_UNIT_CODE, _reviewer(level), "reviewer", level=level, actor=actor)
        existing = {}
    pins: dict[str, str] = {}
    es_ids: dict[str, str] = {}
    for label, kind, name, holder, pin in (
        ("official", "official", DEMO_UNIT, None, official_pin),
        ("personal", "personal", DEMO_PERSON, DEMO_PERSON_ID, personal_pin),
    ):
        if existing.get(label):
            es_ids[label] = existing[label]
            continue
        app = registry.apply(APPLICANT, DEMO_UNIT_CODE, kind, name, holder_id_number=holder, keeper=KEEPER,
                             reason="demo")
        for level in range(1, levels + 1):
            registry.review(_reviewer(level), app, level, True, "demo")
        pins[label] = pin or secrets.token_urlsafe(9)
        es_ids[label] = registry.make(KEEPER, app, pins[label])
    summary = {"unit": DEMO_UNIT, "credit_code": DEMO_UNIT_CODE, "person": DEMO_PERSON,
               "users": {"admin": ADMIN, "applicant": APPLICANT, "keeper": KEEPER,
                         "reviewers": [_reviewer(n) for n in range(1, levels + 1)]},
               "es_ids": es_ids}
    path = state_file(registry.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return {**summary, "pins": pins}


def _existing(registry: SealRegistry) -> dict[str, str] | None:
    """The demo's active seals when the demo unit exists already (idempotent re-runs)."""
    with registry._sessions() as session:
        unit = session.scalars(select(Unit).where(Unit.credit_code == DEMO_UNIT_CODE)).first()
        if unit is None:
            return None
        person = session.scalars(select(Person).where(Person.id_number == DEMO_PERSON_ID)).first()
        found: dict[str, str] = {}
        for seal in session.scalars(select(Seal).where(Seal.unit_id == unit.id, Seal.status == "active")):
            if seal.kind == "official" and seal.name == unit.name:
                found.setdefault("official", seal.es_id)
            elif seal.kind == "personal" and person is not None and seal.holder_id == person.id:
                found.setdefault("personal", seal.es_id)
        return found
