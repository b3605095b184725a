"""Administration of the registry (印章管理员's work): the first administrator, authentication, units,
persons, users and their roles.

Decisions:

* **Who acts comes from authentication** (:meth:`Administration.authenticate`): a user proves who
  they are by the OS login an administrator mapped to them, or by their credential (a scrypt
  record, :func:`credential_record`, never the secret). Every step takes the authenticated user
  name as ``actor``.
* **Only an administrator of a unit grants roles in it**; units and persons are registered by
  administrators; the very first administrator comes from :meth:`Administration.bootstrap`, which
  works only while nobody can authenticate (:func:`anyone_can_authenticate`).
* **A user's proof is theirs**: granting a role never sets or changes an existing user's OS login
  or credential (that would hand their identity to whoever grants a role); :meth:`enrol` gives a
  proof only to a user without one, and only an administrator of every unit they belong to may.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stamping.registry import rules
from stamping.registry.errors import InvalidInput, NotAuthenticated, NotAuthorised, NotFound
from stamping.registry.models import Person, RegistryUser, Role, Unit, UnitUser
from stamping.registry.service.base import RegistryBase
from stamping.registry.service.payloads import b64

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_CREDENTIAL = 12


def credential_record(secret: str) -> str:
    """What is stored for a user's credential: salt and scrypt digest (never the secret)."""
    if len(secret) < MIN_CREDENTIAL:
        raise InvalidInput(f"a user credential needs at least {MIN_CREDENTIAL} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return json.dumps({"salt": b64(salt), "scrypt": b64(digest)})


def credential_matches(record: str | None, secret: str) -> bool:
    if not record or not secret:
        return False
    data = json.loads(record)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(data["salt"]), dklen=32,
                            maxmem=64 * 1024 * 1024, **_SCRYPT)
    return secrets.compare_digest(digest, base64.b64decode(data["scrypt"]))


def anyone_can_authenticate(session: Session) -> bool:
    """Whether any user has a proof yet (then :meth:`Administration.bootstrap` is refused)."""
    return session.scalars(select(RegistryUser.id).where(
        (RegistryUser.os_login.is_not(None)) | (RegistryUser.credential.is_not(None)))).first() is not None


class Administration(RegistryBase):
    """Bootstrap, authentication, units, persons, users and roles (see the module docstring)."""

    def bootstrap(self, username: str, unit_name: str, credit_code: str, *, os_login: str | None = None,
                  credential: str | None = None) -> None:
        """The first administrator (印章管理员): registers the unit (if new) and the user with the
        ADMIN role, proven by ``os_login`` and/or ``credential``. Refused as soon as anyone can
        authenticate: from then on administrators add everyone (:meth:`add_user`)."""
        if not (os_login or credential):
            raise InvalidInput("the first administrator needs an OS login or a credential to prove who they are")
        code, name = rules.check_credit_code(credit_code), rules.normalise_name(unit_name)
        record = credential_record(credential) if credential else None

        def step(session: Session) -> None:
            if anyone_can_authenticate(session):
                raise NotAuthorised("the registry has administrators already: ask one of them to add you "
                                    "(`sealflow seal user-add`)")
            unit = session.scalars(select(Unit).where(Unit.credit_code == code)).first()
            if unit is None:
                unit = Unit(name=name, credit_code=code, parent_id=None, created_at=self._clock())
                session.add(unit)
                session.flush()
            user = self._user(session, username, create_by="bootstrap")
            user.os_login, user.credential = os_login, record
            if not any(r.role == Role.ADMIN for r in self._roles(session, unit.id, username)):
                session.add(UnitUser(unit_id=unit.id, username=username, role=Role.ADMIN.value, level=0,
                                     created_at=self._clock()))
            self.audit.append(session, actor=username, action="registry.bootstrap",
                              payload={"unit": code, "username": username, "os_login": os_login or "",
                                       "credential": bool(record)})

        self._tx(step)

    def authenticate(self, *, os_login: str | None = None, username: str | None = None,
                     credential: str | None = None) -> str:
        """The SealFlow user name of whoever proves it: ``username`` with its ``credential``, else the
        OS login an administrator mapped. Raises :class:`NotAuthenticated` otherwise (same message for
        an unknown user and a wrong credential)."""
        with self._sessions() as session:
            if username is not None:
                user = session.scalars(select(RegistryUser).where(RegistryUser.username == username)).first()
                if user is None or not credential_matches(user.credential, credential or ""):
                    raise NotAuthenticated(f"user {username!r} and that credential do not match; check "
                                           "SEALFLOW_USER and SEALFLOW_USER_CREDENTIAL")
                return user.username
            if os_login:
                user = session.scalars(select(RegistryUser).where(RegistryUser.os_login == os_login)).first()
                if user is not None:
                    return user.username
            raise NotAuthenticated(f"the OS user {os_login!r} is not mapped to a SealFlow user: ask a unit "
                                   f"administrator to run `sealflow seal user-add … --os-login {os_login}`, or set "
                                   "SEALFLOW_USER and SEALFLOW_USER_CREDENTIAL (the very first administrator: "
                                   "`sealflow seal bootstrap`)")

    def _user(self, session: Session, username: str, *, create_by: str | None = None) -> RegistryUser:
        username = username.strip()
        user = session.scalars(select(RegistryUser).where(RegistryUser.username == username)).first()
        if user is None:
            if create_by is None:
                raise NotFound(f"no user {username!r} in the registry")
            user = RegistryUser(username=username, created_at=self._clock(), created_by=create_by)
            session.add(user)
            session.flush()
        return user

    def _require_admin_anywhere(self, session: Session, actor: str, what: str, *, top_level: bool = False) -> None:
        stmt = select(UnitUser.id).join(Unit, Unit.id == UnitUser.unit_id).where(
            UnitUser.username == actor, UnitUser.role == Role.ADMIN.value)
        if top_level:
            stmt = stmt.where(Unit.parent_id.is_(None))
        if session.scalars(stmt).first() is None:
            where = "a top-level unit" if top_level else "a unit"
            raise NotAuthorised(f"{actor!r} may not {what}: only an administrator of {where} may")

    def users(self) -> list[dict[str, Any]]:
        """Every user with their roles per unit (for the Airflow auth manager mapping)."""
        with self._sessions() as session:
            rows = session.execute(select(UnitUser, Unit).join(Unit, Unit.id == UnitUser.unit_id)
                                   .order_by(UnitUser.username, Unit.credit_code)).all()
            out: dict[str, dict[str, Any]] = {}
            for user in session.scalars(select(RegistryUser).order_by(RegistryUser.username)):
                out[user.username] = {"username": user.username, "os_login": user.os_login, "roles": []}
            for role, unit in rows:
                entry = out.setdefault(role.username, {"username": role.username, "os_login": None, "roles": []})
                entry["roles"].append({"unit": unit.credit_code, "role": role.role, "level": role.level})
            return list(out.values())

    def enrol(self, actor: str, username: str, *, os_login: str | None = None, credential: str | None = None) -> None:
        """Give a user who has no proof yet their OS login and/or credential. Only an administrator of
        every unit where the user holds a role may (nobody can take over another unit's user), and
        never for a user who can authenticate already."""
        if not (os_login or credential):
            raise InvalidInput("give an OS login or a credential")
        record = credential_record(credential) if credential else None

        def step(session: Session) -> None:
            user = self._user(session, username)
            if user.os_login or user.credential:
                raise NotAuthorised(f"{username!r} can authenticate already; their proof is theirs to keep")
            units = {r.unit_id for r in session.scalars(select(UnitUser).where(UnitUser.username == user.username))}
            admin_of = {r.unit_id for r in session.scalars(select(UnitUser).where(
                UnitUser.username == actor, UnitUser.role == Role.ADMIN.value))}
            if not units or not units <= admin_of:
                raise NotAuthorised(f"{actor!r} may not enrol {username!r}: only an administrator of every unit "
                                    "where they hold a role may")
            user.os_login, user.credential = os_login, record
            self.audit.append(session, actor=actor, action="user.enrol",
                              payload={"username": user.username, "os_login": os_login or "",
                                       "credential": bool(record)})

        self._tx(step)

    def add_unit(self, name: str, credit_code: str, *, actor: str, parent_code: str | None = None,
                 admin: str | None = None) -> int:
        """Register a unit (用章单位) with its legal name and 统一社会信用代码: by an administrator of
        the parent unit, or of a top-level unit for a new top-level one. ``admin`` (default: the
        actor) becomes the new unit's first administrator."""
        code, name = rules.check_credit_code(credit_code), rules.normalise_name(name)
        if not name:
            raise InvalidInput("the unit's legal name is empty")

        def step(session: Session) -> int:
            if session.scalars(select(Unit).where(Unit.credit_code == code)).first() is not None:
                raise InvalidInput(f"unit {code} is already registered")
            parent = self._unit(session, parent_code) if parent_code else None
            if parent is not None:
                self._require(session, parent, actor, (Role.ADMIN,), "register units under it")
            else:
                self._require_admin_anywhere(session, actor, "register a top-level unit", top_level=True)
            first_admin = self._user(session, admin or actor, create_by=actor).username
            unit = Unit(name=name, credit_code=code, parent_id=parent.id if parent else None, created_at=self._clock())
            session.add(unit)
            session.flush()
            session.add(UnitUser(unit_id=unit.id, username=first_admin, role=Role.ADMIN.value, level=0,
                                 created_at=self._clock()))
            self.audit.append(session, actor=actor, action="unit.add", reason="",
                              payload={"credit_code": code, "name": name, "admin": first_admin})
            return unit.id

        return self._tx(step)

    def rename_unit(self, credit_code: str, new_name: str, *, actor: str, reason: str = "") -> None:
        """Record a unit's new legal name (更名); its seals then need a change (:meth:`change`)."""
        new_name = rules.normalise_name(new_name)

        def step(session: Session) -> None:
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.ADMIN,), "rename the unit")
            old, unit.name = unit.name, new_name
            self.audit.append(session, actor=actor, action="unit.rename", reason=reason,
                              payload={"credit_code": unit.credit_code, "old_name": old, "new_name": new_name})

        self._tx(step)

    def add_person(self, name: str, id_number: str, *, actor: str) -> int:
        """Register a person by ID-card name and 公民身份号码 (an administrator of any unit)."""
        number, name = rules.check_id_number(id_number), rules.normalise_name(name)
        if not name:
            raise InvalidInput("the person's ID-card name is empty")

        def step(session: Session) -> int:
            self._require_admin_anywhere(session, actor, "register persons")
            if session.scalars(select(Person).where(Person.id_number == number)).first() is not None:
                raise InvalidInput(f"a person with ID number {number[:6]}… is already registered")
            person = Person(name=name, id_number=number, created_at=self._clock())
            session.add(person)
            session.flush()
            self.audit.append(session, actor=actor, action="person.add", payload={"name": name,
                                                                                  "id_number_prefix": number[:6]})
            return person.id

        return self._tx(step)

    def add_user(self, credit_code: str, username: str, role: str, *, actor: str, level: int = 0,
                 person_id_number: str | None = None, os_login: str | None = None,
                 credential: str | None = None) -> None:
        """Grant ``username`` a role in a unit (reviewers: at ``level`` 1..n); only an administrator
        of that unit may. A new user is registered with how they prove who they are (``os_login``,
        ``credential``); an existing user's proof is never changed here (that would hand their
        identity to whoever grants a role)."""
        try:
            r = Role(role)
        except ValueError:
            raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(Role)}") from None
        if (r is Role.REVIEWER) != (level > 0):
            raise InvalidInput("reviewers need a level ≥ 1 and other roles none (level 0)")
        if not username.strip():
            raise InvalidInput("the user name is empty")
        record = credential_record(credential) if credential else None

        def step(session: Session) -> None:
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.ADMIN,), f"manage the users of {unit.name}")
            person = self._person(session, person_id_number).id if person_id_number else None
            user = session.scalars(select(RegistryUser).where(RegistryUser.username == username.strip())).first()
            if user is None:
                user = self._user(session, username, create_by=actor)
                user.os_login, user.credential, user.person_id = os_login, record, person
            elif (os_login and os_login != user.os_login) or record:
                raise NotAuthorised(f"{username!r} exists already: their OS login and credential are theirs; "
                                    "grant the role without them")
            session.add(UnitUser(unit_id=unit.id, username=username.strip(), person_id=person, role=r.value,
                                 level=level, created_at=self._clock()))
            self.audit.append(session, actor=actor, action="user.grant", reason="",
                              payload={"unit": unit.credit_code, "username": username, "role": r.value,
                                       "level": level, "os_login": os_login or ""})

        self._tx(step)
