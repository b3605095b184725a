"""A demo registry in one call: a unit, a person, their users, one official and one personal seal,
made end to end (apply → reviews → make). The pipeline and ``sealflow demo`` start from this.

The demo's people are made through the same path as real ones: the first administrator by
:meth:`SealRegistry.bootstrap` (mapped to the OS user running the demo, when given), everyone else
by that administrator with :meth:`SealRegistry.add_user`, each with a credential of their own
(returned once, like the PINs; the CLI keeps them in a 0600 file).

Identities: the demo's person and unit are checked against the identity registers when their seals
are applied for and used, like anyone's. On the embedded stack :func:`bootstrap_demo` first registers
them in the stack's identity simulator (:func:`register_demo_identities`), so every caller — the
demo, the CLI, each test fixture — gets people the register confirms; production registers nobody."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select

from kernel.files import write_atomic
from stamping.registry import identity_register, rules
from stamping.registry.errors import NotAuthorised
from stamping.registry.models import Person, RegistryUser, Seal, Unit
from stamping.registry.service import SealRegistry, anyone_can_authenticate, state_file

DEMO_UNIT = "南宁市示范行政审批局"
DEMO_UNIT_CODE = rules.demo_credit_code("11450100MB1234567")
DEMO_PERSON = "张三"
DEMO_PERSON_ID = rules.demo_id_number("45010219800101123")
KEEPER, APPLICANT, ADMIN = "keeper", "applicant", "admin"
# The other roles of the unit (用印登记, 批量操作, 档案, 审计): user name = role name.
RECORDS_OFFICE, OPERATOR, ARCHIVIST, AUDITOR = "records", "operator", "archivist", "auditor"


def _reviewer(level: int) -> str:
    return f"reviewer{level}"


def _people(levels: int) -> list[tuple[str, str, int]]:
    """(user, role, level) of every demo user but the administrator."""
    return [(APPLICANT, "applicant", 0), (KEEPER, "keeper", 0),
            *[(_reviewer(n), "reviewer", n) for n in range(1, levels + 1)],
            (RECORDS_OFFICE, "records_office", 0), (OPERATOR, "operator", 0), (ARCHIVIST, "archivist", 0),
            (AUDITOR, "auditor", 0)]


def _make_people(registry: SealRegistry, levels: int, actor: str | None, os_login: str | None) -> dict[str, str]:
    """The demo unit, its administrator and people; returns each new user's credential."""
    credentials = {name: secrets.token_urlsafe(18) for name in [ADMIN] + [p[0] for p in _people(levels)]}
    with registry.sessions() as session:
        fresh = not anyone_can_authenticate(session)
    if fresh:
        registry.bootstrap(ADMIN, DEMO_UNIT, DEMO_UNIT_CODE, os_login=os_login, credential=credentials[ADMIN])
    elif actor is None:
        raise NotAuthorised("the registry has administrators already: run the demo setup as one of them")
    else:
        registry.add_unit(DEMO_UNIT, DEMO_UNIT_CODE, actor=actor, admin=ADMIN)
        credentials.pop(ADMIN)  # an existing user keeps their own proof
    registry.add_person(DEMO_PERSON, DEMO_PERSON_ID, actor=ADMIN)
    for name, role, level in _people(levels):
        with registry.sessions() as session:
            exists = session.scalars(select(RegistryUser).where(RegistryUser.username == name)).first() is not None
        registry.add_user(DEMO_UNIT_CODE, name, role, level=level, actor=ADMIN,
                          person_id_number=DEMO_PERSON_ID if role == "keeper" else None,
                          credential=None if exists else credentials[name])
        if exists:
            credentials.pop(name)
    return credentials


def register_demo_identities(settings) -> Path:
    """Put the demo's person (张三) and unit into the embedded stack's identity register file (the
    running simulator re-reads it); returns the file."""
    path = settings.identity_register_file
    identity_register.register(path, persons=[(DEMO_PERSON, DEMO_PERSON_ID)], units=[(DEMO_UNIT, DEMO_UNIT_CODE)])
    return path


def bootstrap_demo(registry: SealRegistry, *, official_pin: str | None = None, personal_pin: str | None = None,
                   actor: str | None = None, os_login: str | None = None) -> dict[str, Any]:
    """Create (or find, when run again) the demo unit, person, users and two active seals.

    Returns ``{"unit", "credit_code", "person", "users", "es_ids": {"official", "personal"},
    "pins": {...}, "credentials": {...}}``; PINs are only returned for seals made by this call, and
    credentials for users made by it (they are their owners' secrets: the caller hands them on,
    they are not stored). A summary without either is written to ``<state>/registry/demo.json``.
    ``actor`` is the authenticated administrator adding the demo unit to a registry that has
    administrators already; on an empty registry the demo's administrator is bootstrapped, mapped
    to ``os_login`` when given.
    """
    levels = max(1, registry.settings.review_levels)
    if registry.settings.embedded:  # the stack's register must know the demo's people before they apply
        register_demo_identities(registry.settings)
    existing = _existing(registry)
    credentials: dict[str, str] = {}
    if existing is None:
        credentials = _make_people(registry, levels, actor, os_login)
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
                         "reviewers": [_reviewer(n) for n in range(1, levels + 1)], "records_office": RECORDS_OFFICE,
                         "operator": OPERATOR, "archivist": ARCHIVIST, "auditor": AUDITOR},
               "es_ids": es_ids}
    path = state_file(registry.settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return {**summary, "pins": pins, "credentials": credentials}


def credentials_file(settings) -> Path:
    """Where the demo keeps its people's credentials (0600) so that you can act as each of them."""
    return state_file(settings).with_name("demo-credentials.json")


def keep_credentials(settings, credentials: dict[str, str]) -> Path:
    """Add new demo credentials to :func:`credentials_file` (0600, written whole or not at all)."""
    path = credentials_file(settings)
    if credentials:
        old = json.loads(path.read_text()) if path.exists() else {}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, json.dumps({**old, **credentials}).encode())
    return path


def _existing(registry: SealRegistry) -> dict[str, str] | None:
    """The demo's active seals when the demo unit exists already (idempotent re-runs)."""
    with registry.sessions() as session:
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
