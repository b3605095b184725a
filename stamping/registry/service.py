"""The seal registry's lifecycle (印章全生命周期): apply, review level by level, make, change,
renew, expire, revoke, report lost, resume; status lookups for 验章; signers and use records.

Each step runs in one database transaction that also writes its audit entry and, for making,
change, renewal, expiry, revocation, suspension and resumption, its filing record
(``filing.outbox.enqueue``): the three commit or roll back together.

Design decisions:

* **Change (变更) makes a new seal with a new esID** and retires the old one (``superseded_by`` /
  ``supersedes`` link them). The esID is inside the signed SESeal and is all a verifier has to
  look a seal up by: after a rename the old seal must answer "retired" and the new one "active"
  to status lookups, which one esID cannot do. Renewal (续期) keeps the esID (the rules keep the
  seal's identity) and bumps ``version``; every version's SESeal stays in ``registry_seal_versions``.
* **Each seal version has its own key** (``seal-<esID>-v<n>-<random>`` in the key store, under the
  keeper's PIN), so two racing renewals never overwrite each other's key or certificate; the
  loser's key is simply never referenced.
* **Races** (two reviewers, two renewals): the row is read ``FOR UPDATE`` (PostgreSQL; SQLite
  serialises writers anyway), updates carry an optimistic ``row_version`` and reviews are unique
  per (application, level). The loser gets :class:`ConcurrentChange` or, when it ran after the
  winner committed, the refusal that the new state calls for.
* **Who acts comes from authentication** (:meth:`SealRegistry.authenticate`): a user proves who
  they are by the OS login an administrator mapped to them, or by their credential (a scrypt
  record, never the secret). Every method takes the authenticated user name as ``actor``; only
  an administrator of a unit grants roles in it, units and persons are registered by
  administrators, and the very first administrator comes from :meth:`SealRegistry.bootstrap`,
  which works only while nobody can authenticate.
* **Expiry is a scheduled job** (:meth:`SealRegistry.expire_due`, the ``seal_maintenance`` DAG),
  never decided lazily on read; :meth:`status_at` answers from the status history, so a
  revocation after a signature does not invalidate that earlier signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from asn1crypto import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from filing.outbox import enqueue
from gmpki.gm.sm3 import sm3
from kernel.db import transaction
from kernel.settings import Settings
from stamping.audit.log import AuditConflict, AuditLog
from stamping.audit.models import AuditEntry
from stamping.registry import rules
from stamping.registry.errors import (
    ConcurrentChange,
    IdentityMismatch,
    IdentityNotConfigured,
    IdentityRegisterUnavailable,
    InvalidInput,
    InvalidState,
    NotAuthenticated,
    NotAuthorised,
    NotFound,
    PinRefused,
    RegistryError,
    RenewalWindow,
    ReviewRefused,
    SealNotActive,
    SealRevoked,
    ValidityMismatch,
)
from stamping.registry.models import (
    ApplicationStatus,
    Certificate,
    OfficialType,
    Person,
    RegistryUser,
    Review,
    Role,
    Seal,
    SealApplication,
    SealKind,
    SealVersion,
    StatusChange,
    Unit,
    UnitUser,
    aware,
    utc,
)
from stamping.verdict.result import SealStatus

if TYPE_CHECKING:
    from gmpki.keys.signer import Signer
    from gmpki.keys.store import KeyStore
    from gmpki.pki.ca import DemoCA
    from stamping.pictures import SealPicture
    from stamping.registry.identity_source import IdentitySource

log = logging.getLogger(__name__)
T = TypeVar("T")
_TRIES = 6
# Statuses a seal can still leave; REVOKED is final.
_LIVE = (SealStatus.ACTIVE, SealStatus.SUSPENDED)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(value: datetime) -> str:
    return utc(value).isoformat()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# (registry, es_id) → status history rows, while a status_snapshot() block runs in this thread/task.
_STATUS_HISTORY: ContextVar[dict[tuple[int, str], list] | None] = ContextVar("status_history", default=None)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_CREDENTIAL = 12


def credential_record(secret: str) -> str:
    """What is stored for a user's credential: salt and scrypt digest (never the secret)."""
    if len(secret) < MIN_CREDENTIAL:
        raise InvalidInput(f"a user credential needs at least {MIN_CREDENTIAL} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **_SCRYPT)
    return json.dumps({"salt": _b64(salt), "scrypt": _b64(digest)})


def credential_matches(record: str | None, secret: str) -> bool:
    if not record or not secret:
        return False
    data = json.loads(record)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(data["salt"]), dklen=32,
                            maxmem=64 * 1024 * 1024, **_SCRYPT)
    return secrets.compare_digest(digest, base64.b64decode(data["scrypt"]))


@dataclass(frozen=True)
class CertInfo:
    serial: str
    subject: str
    not_before: datetime
    not_after: datetime


def cert_info(der: bytes) -> CertInfo:
    cert = x509.Certificate.load(der)
    validity = cert["tbs_certificate"]["validity"]
    return CertInfo(serial=format(cert.serial_number, "x"), subject=cert.subject.human_friendly,
                    not_before=validity["not_before"].native.astimezone(UTC),
                    not_after=validity["not_after"].native.astimezone(UTC))


def _common_name(der: bytes) -> str:
    cert = x509.Certificate.load(der)
    return cert.subject.native.get("common_name") or cert.subject.human_friendly


class SealRegistry:
    """The seal registry over a SealFlow database (see the module docstring).

    ``keystore`` and ``ca`` default to the key store and the demo CA of ``settings``
    (``<state>/keys``, ``<state>/ca``), created when first needed: read-only uses such as
    :meth:`status_at` never touch them.
    """

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings,
                 keystore: KeyStore | None = None, ca: DemoCA | None = None, *,
                 clock: Callable[[], datetime] = _now, identity: IdentitySource | None = None) -> None:
        self._sessions = session_factory
        self.settings = settings
        self._identity = identity
        self._keystore = keystore
        self._ca = ca
        self._clock = clock
        self.audit = AuditLog(self._audit_signer, settings.audit_checkpoint_every, settings.audit_key_id)
        self._use_digests: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"SealRegistry({self.settings.state_dir})"

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The registry's database, for callers that read or audit alongside it (one transaction)."""
        return self._sessions

    # --- collaborators -------------------------------------------------------------------

    @property
    def keystore(self) -> KeyStore:
        if self._keystore is None:
            from kernel.keys import key_store

            self._keystore = key_store(self.settings)
        return self._keystore

    @property
    def ca(self) -> DemoCA:
        if self._ca is None:
            from kernel.keys import installation_ca  # given by the composition root, else the installation's

            self._ca = installation_ca(self.settings)
        return self._ca

    @property
    def identity(self) -> IdentitySource | None:
        """The identity registers (身份核验): the one given, else ``settings.identity_url``; None when
        neither — then the embedded stack checks nothing (its entry points set ``identity_url`` to the
        stack's simulator, see ``sealflow.root.with_stack_identity``) and production refuses."""
        if self._identity is None and self.settings.identity_url:
            from stamping.registry.identity_source import HttpIdentitySource

            self._identity = HttpIdentitySource(self.settings.identity_url)
        return self._identity

    def _check_identities(self, actor: str, action: str, es_id: str | None, unit: Unit,
                          persons: Iterable[Person]) -> None:
        """Ask the registers about the unit and each person; a mismatch (or a register that cannot be
        asked, or none configured in production) refuses the step with the reason and is audited in
        its own transaction."""
        source = self.identity
        if source is None:
            if self.settings.embedded:
                return
            reason = ("no identity register is configured and this install is not the embedded stack "
                      "(SEALFLOW_S3_ENDPOINT is set): set SEALFLOW_IDENTITY_URL to the data-sharing platform's "
                      "identity service")
            self._audit_identity_refusal(actor, action, es_id, "register", "", "", reason)
            raise IdentityNotConfigured(f"{action} refused: {reason}")
        from stamping.registry.identity_source import IdentityUnavailable

        asks = [("unit", unit.name, unit.credit_code, source.check_unit)]
        asks += [("person", p.name, p.id_number, source.check_person) for p in persons]
        for kind, name, number, ask in asks:
            try:
                verdict = ask(name, number)
                reason = verdict.reason
            except IdentityUnavailable as exc:
                where = " (on the embedded stack: `sealflow stack up` starts it)" if self.settings.embedded else ""
                verdict, reason = None, f"{exc}; try again when the register answers{where}"
            if verdict is not None and verdict.match:
                continue
            self._audit_identity_refusal(actor, action, es_id, kind, name, number, reason)
            refusal = IdentityMismatch if verdict is not None else IdentityRegisterUnavailable
            raise refusal(f"{action} refused: the identity register does not confirm the {kind} "
                          f"{name} ({number[:6]}…): {reason}")

    def _audit_identity_refusal(self, actor: str, action: str, es_id: str | None, kind: str, name: str,
                                number: str, reason: str) -> None:
        """``identity.mismatch`` with the step and the reason; only the number's first six characters
        (the region), never the whole 公民身份号码."""
        def record(session: Session) -> None:
            self.audit.append(session, actor=actor, action="identity.mismatch", es_id=es_id, reason=reason,
                              payload={"step": action, "kind": kind, "name": name, "number_prefix": number[:6]})

        self._tx(record)

    def _user_person(self, session: Session, unit: Unit, username: str) -> Person | None:
        user = session.scalars(select(RegistryUser).where(RegistryUser.username == username)).first()
        person_id = user.person_id if user is not None else None
        if person_id is None:
            person_id = next((r.person_id for r in self._roles(session, unit.id, username) if r.person_id), None)
        return session.get(Person, person_id) if person_id else None

    def _audit_pin(self) -> str:
        from kernel.keys import service_pin

        return service_pin(self.settings, self.settings.audit_key_id, self.settings.audit_key_pin)

    def _audit_signer(self) -> Signer:
        """The audit key's signer; the key (and its certificate from the CA) is created on first use."""
        from gmpki.pki.certs import Subject

        key_id, pin = self.settings.audit_key_id, self._audit_pin()
        if not self.keystore.exists(key_id):
            public = self.keystore.create(key_id, pin)
            self.keystore.set_certificate(key_id, self.ca.issue(Subject("SealFlow audit log", organization="SealFlow"),
                                                                public))
        from kernel.keys import service_signer  # the one service-key path (no wrong-PIN tries)

        return service_signer(self.keystore, self.settings, key_id, pin)

    def audit_public_key(self):
        """The audit key's public key (creating the key on first use)."""
        self._audit_signer()
        return self.keystore.public_key(self.settings.audit_key_id)

    # --- transactions --------------------------------------------------------------------

    def _tx(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction; lost races become :class:`ConcurrentChange`.

        SQLite answers a writer that waited too long, or whose snapshot went stale, with
        "database is locked", and an audit append that lost its seq there cannot step past it
        alone: the whole step is tried again (it then sees the winner's state).
        """
        for attempt in range(_TRIES):
            try:
                with transaction(self._sessions) as session:
                    return fn(session)
            except (OperationalError, AuditConflict) as exc:
                if isinstance(exc, OperationalError) and not any(w in str(exc).lower() for w in ("locked", "busy")):
                    raise
                if attempt == _TRIES - 1:
                    raise ConcurrentChange("the database stayed busy with other changes; try again") from None
                time.sleep(0.02 * (attempt + 1) + random.random() * 0.05)
            except StaleDataError:
                raise ConcurrentChange("another change to the same application or seal was committed at the same "
                                       "moment and won; reload it and try again if still needed") from None
            except IntegrityError as exc:
                raise ConcurrentChange(f"a conflicting change was committed at the same moment "
                                       f"({exc.orig.__class__.__name__}); reload and try again") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _locked(session: Session, stmt):
        # FOR UPDATE on PostgreSQL: a racing writer waits and then reads the winner's row.
        if session.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        return session.scalars(stmt).first()

    # --- lookups -------------------------------------------------------------------------

    @staticmethod
    def _unit(session: Session, credit_code: str) -> Unit:
        unit = session.scalars(select(Unit).where(Unit.credit_code == credit_code.strip().upper())).first()
        if unit is None:
            raise NotFound(f"no unit with 统一社会信用代码 {credit_code} in the registry; add it first "
                           "(SealRegistry.add_unit / demo-setup)")
        return unit

    @staticmethod
    def _person(session: Session, id_number: str) -> Person:
        person = session.scalars(select(Person).where(Person.id_number == id_number.strip().upper())).first()
        if person is None:
            raise NotFound(f"no person with ID number {id_number[:6]}… in the registry; add the person first")
        return person

    def _seal(self, session: Session, es_id: str, *, lock: bool = False) -> Seal:
        stmt = select(Seal).where(Seal.es_id == es_id)
        seal = self._locked(session, stmt) if lock else session.scalars(stmt).first()
        if seal is None:
            raise NotFound(f"no seal {es_id} in the registry; check the esID (`sealflow seal list`)")
        return seal

    def _application(self, session: Session, application_id: int) -> SealApplication:
        app = self._locked(session, select(SealApplication).where(SealApplication.id == application_id))
        if app is None:
            raise NotFound(f"no seal application {application_id}; see `sealflow seal list --applications`")
        return app

    @staticmethod
    def _roles(session: Session, unit_id: int, username: str) -> list[UnitUser]:
        return list(session.scalars(select(UnitUser).where(UnitUser.unit_id == unit_id,
                                                           UnitUser.username == username)))

    def _require(self, session: Session, unit: Unit, actor: str, roles: Iterable[Role], what: str,
                 level: int | None = None) -> list[UnitUser]:
        wanted = {r.value for r in roles}
        rows = [r for r in self._roles(session, unit.id, actor)
                if r.role in wanted and (level is None or r.role != Role.REVIEWER or r.level == level)]
        if not rows:
            need = " or ".join(sorted(wanted)) + (f" (level {level})" if level is not None else "")
            raise NotAuthorised(f"{actor!r} may not {what}: only {need} users of {unit.name} "
                                f"({unit.credit_code}) may; ask the unit's administrator to grant the role")
        return rows

    # --- identities: bootstrap, authentication -----------------------------------------

    @staticmethod
    def _anyone_can_authenticate(session: Session) -> bool:
        return session.scalars(select(RegistryUser.id).where(
            (RegistryUser.os_login.is_not(None)) | (RegistryUser.credential.is_not(None)))).first() is not None

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
            if self._anyone_can_authenticate(session):
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

    # --- units, persons, users (administration) ------------------------------------------

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

    # --- apply and review ----------------------------------------------------------------

    def apply(self, actor: str, credit_code: str, kind: str, name: str, *, official_type: str | None = None,
              holder_id_number: str | None = None, keeper: str | None = None, reason: str = "") -> int:
        """申领: ask for a new seal; returns the application id. Reviews follow (:meth:`review`)."""
        k, sub = rules.seal_kind(kind, official_type)
        with self._sessions() as session:  # 身份核验 of the unit, the holder and the applicant first
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.APPLICANT, Role.ADMIN), "apply for seals")
            people = [p for p in (self._person(session, holder_id_number) if holder_id_number else None,
                                  self._user_person(session, unit, actor)) if p is not None]
            session.expunge_all()
        self._check_identities(actor, "seal.apply", None, unit, people)

        def step(session: Session) -> int:
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.APPLICANT, Role.ADMIN), "apply for seals")
            holder = self._person(session, holder_id_number) if holder_id_number else None
            checked = rules.check_seal_name(k, sub, name, unit.name, holder.name if holder else None)
            keeper_name = keeper or actor
            self._check_keeper(session, unit, keeper_name, k, holder)
            app = SealApplication(unit_id=unit.id, applicant=actor, kind=k.value,
                                  official_type=sub.value if sub else None, name=checked,
                                  holder_id=holder.id if holder else None, keeper=keeper_name,
                                  levels_required=max(1, self.settings.review_levels), levels_approved=0,
                                  status=ApplicationStatus.SUBMITTED.value, reason=reason, created_at=self._clock())
            session.add(app)
            session.flush()
            self.audit.append(session, actor=actor, action="seal.apply", reason=reason,
                              payload={"application": app.id, "unit": unit.credit_code, "kind": k.value,
                                       "official_type": app.official_type, "name": checked, "keeper": keeper_name})
            return app.id

        return self._tx(step)

    def _check_keeper(self, session: Session, unit: Unit, keeper: str, kind: SealKind, holder: Person | None) -> None:
        rows = [r for r in self._roles(session, unit.id, keeper) if r.role == Role.KEEPER]
        if not rows:
            raise InvalidInput(f"{keeper!r} is not a keeper (保管人) of {unit.name}; name a user with the keeper role")
        if kind is SealKind.PERSONAL and holder is not None and all(r.person_id != holder.id for r in rows):
            raise InvalidInput(f"a personal seal is kept by its holder: {keeper!r} is not linked to {holder.name}")

    def review(self, actor: str, application_id: int, level: int, approve: bool, comment: str = "") -> str:
        """逐级审核: decide ``level`` of an application; returns the application's new status."""

        def step(session: Session) -> str:
            app = self._application(session, application_id)
            unit = session.get(Unit, app.unit_id)
            if app.status != ApplicationStatus.SUBMITTED:
                raise InvalidState(f"application {app.id} is {app.status}; only submitted applications are reviewed")
            if level != app.levels_approved + 1:
                raise ReviewRefused(f"application {app.id} waits for level {app.levels_approved + 1}, not level "
                                    f"{level}; levels are reviewed in order")
            self._require(session, unit, actor, (Role.REVIEWER,), f"review level {level}", level=level)
            if actor == app.applicant:
                raise ReviewRefused(f"{actor!r} applied for this seal and may not review it; another reviewer must")
            earlier = session.scalars(select(Review.reviewer).where(Review.application_id == app.id)).all()
            if actor in earlier:
                raise ReviewRefused(f"{actor!r} already reviewed an earlier level of application {app.id}; each "
                                    "level needs a different reviewer")
            session.add(Review(application_id=app.id, level=level, reviewer=actor, approved=approve,
                               comment=comment, at=self._clock()))
            if not approve:
                app.status = ApplicationStatus.REJECTED.value
            else:
                app.levels_approved = level
                if level >= app.levels_required:
                    app.status = ApplicationStatus.APPROVED.value
            session.flush()
            self.audit.append(session, actor=actor, action="seal.review", reason=comment,
                              payload={"application": app.id, "level": level, "approved": approve,
                                       "status": app.status})
            return app.status

        return self._tx(step)

    # --- making --------------------------------------------------------------------------

    def _picture(self, kind: SealKind, sub: OfficialType | None, name: str, unit_name: str) -> SealPicture:
        from stamping import pictures

        if kind is SealKind.PERSONAL:
            return pictures.demo_personal_seal(name)
        if kind is SealKind.POSITION:
            return pictures.demo_position_seal(name)
        bottom = name[len(unit_name):] if sub is not OfficialType.LEGAL_NAME else ""
        return pictures.demo_official_seal(unit_name, bottom_text=bottom)

    def _issue(self, *, kind: SealKind, es_id: str, version: int, pin: str, unit: Unit, holder: Person | None,
               name: str, type_code: int, start: datetime, end: datetime,
               picture: SealPicture | None, sub: OfficialType | None) -> dict[str, Any]:
        """Key into the key store, signer certificate from the CA, V4 SESeal by the maker: outside any
        transaction (slow, and nothing in the database refers to the key until the step commits)."""
        import secrets

        from stamping.ses.make import SealSpec, make_seal

        if kind is SealKind.PERSONAL:
            key, cert = self.ca.issue_person_signer(holder.name, holder.id_number, start, end)
        else:
            key, cert = self.ca.issue_unit_signer(unit.name, unit.credit_code, start, end)
        info = cert_info(cert)
        if info.not_before != utc(start) or info.not_after != utc(end):
            raise ValidityMismatch(f"the CA issued a certificate valid {info.not_before}..{info.not_after}, not the "
                                   f"seal's {start}..{end}; a seal's validity must equal its certificate's")
        key_id = f"seal-{es_id}-v{version}-{secrets.token_hex(3)}"
        try:
            self.keystore.create(key_id, pin, key)
        except Exception as exc:  # the key store says what is wrong with the PIN (too short…)
            raise PinRefused(f"the key store refused the new key for seal {es_id}: {exc}") from None
        self.keystore.set_certificate(key_id, cert)
        picture = picture or self._picture(kind, sub, name, unit.name)
        spec = SealSpec(es_id=es_id, name=name, seal_type=type_code, signer_certs=[cert], valid_start=start,
                        valid_end=end, picture_png=picture.png, width_mm=picture.width_mm,
                        height_mm=picture.height_mm, create_date=self._clock())
        seal_der = make_seal(spec, self.ca.maker_signer())
        return {"key_id": key_id, "cert": cert, "cert_info": info, "seal_der": seal_der,
                "seal_sm3": sm3(seal_der).hex()}

    def _store_version(self, session: Session, seal: Seal, made: dict[str, Any]) -> None:
        now = self._clock()
        session.add(SealVersion(seal_id=seal.id, es_id=seal.es_id, version=seal.version, seal_der=made["seal_der"],
                                seal_sm3=made["seal_sm3"], key_id=made["key_id"], valid_start=seal.valid_start,
                                valid_end=seal.valid_end, created_at=now))
        info: CertInfo = made["cert_info"]
        session.add(Certificate(seal_id=seal.id, es_id=seal.es_id, seal_version=seal.version, serial=info.serial,
                                subject=info.subject, cert_der=made["cert"], cert_sm3=sm3(made["cert"]).hex(),
                                not_before=info.not_before, not_after=info.not_after, created_at=now))

    def _history(self, session: Session, seal: Seal, to: SealStatus, actor: str, reason: str,
                 at: datetime | None = None, *, initial: bool = False) -> None:
        session.add(StatusChange(seal_id=seal.id, es_id=seal.es_id, from_status=None if initial else seal.status,
                                 to_status=to.value, at=at or self._clock(), actor=actor, reason=reason))
        seal.status = to.value

    def make(self, actor: str, application_id: int, pin: str, *, picture: SealPicture | None = None,
             valid_days: int | None = None) -> str:
        """制作: after every level approved, make the seal (key under the keeper's ``pin``, signer
        certificate, V4 SESeal), store it, file it and audit it. Returns the new esID."""
        with self._sessions() as session:
            app = session.get(SealApplication, application_id)
            if app is None:
                raise NotFound(f"no seal application {application_id}; see `sealflow seal list --applications`")
            if app.status != ApplicationStatus.APPROVED:
                raise InvalidState(f"application {app.id} is {app.status}: a seal is made only after all "
                                   f"{app.levels_required} review level(s) approved it")
            unit = session.get(Unit, app.unit_id)
            holder = session.get(Person, app.holder_id) if app.holder_id else None
            if actor != app.keeper:
                self._require(session, unit, actor, (Role.ADMIN,), "make this seal (the keeper or an admin may)")
            kind, sub = rules.seal_kind(app.kind, app.official_type)
            name = rules.check_seal_name(kind, sub, app.name, unit.name, holder.name if holder else None)
            session.expunge_all()
        start = self._clock()
        end = start + timedelta(days=valid_days or self.settings.seal_validity_days)
        es_id = rules.new_es_id(self.settings.seal_region_code, start)
        code = rules.type_code(kind, sub)
        made = self._issue(kind=kind, es_id=es_id, version=1, pin=pin, unit=unit, holder=holder, name=name,
                           type_code=code, start=start, end=end, picture=picture, sub=sub)

        def step(session: Session) -> str:
            current = self._application(session, application_id)
            if current.status != ApplicationStatus.APPROVED:
                raise InvalidState(f"application {current.id} is {current.status} now (made at the same moment?)")
            seal = Seal(es_id=es_id, version=1, kind=kind.value, official_type=sub.value if sub else None,
                        type_code=code, name=name, unit_id=unit.id, holder_id=holder.id if holder else None,
                        keeper=current.keeper, key_id=made["key_id"], signer_cert_der=made["cert"],
                        seal_der=made["seal_der"], seal_sm3=made["seal_sm3"], valid_start=start, valid_end=end,
                        status=SealStatus.ACTIVE.value, application_id=current.id, created_at=start, updated_at=start)
            session.add(seal)
            session.flush()
            self._history(session, seal, SealStatus.ACTIVE, actor, "made", initial=True)
            self._store_version(session, seal, made)
            current.status, current.es_id = ApplicationStatus.MADE.value, es_id
            self._file(session, "seal.make", seal, unit, holder, reason="")
            self.audit.append(session, actor=actor, action="seal.make", es_id=es_id,
                              payload=self._audit_payload(seal, application=current.id))
            return es_id

        return self._tx(step)

    # --- change, renewal, expiry ---------------------------------------------------------

    def change(self, actor: str, es_id: str, pin: str, *, new_name: str | None = None,
               new_unit_code: str | None = None, reason: str = "", picture: SealPicture | None = None) -> str:
        """变更 (rename, merger): a new seal (new esID) with the new name or owner; the old one is
        retired. Returns the new esID. A unit rename is recorded first with :meth:`rename_unit`."""
        with self._sessions() as session:
            old = self._seal(session, es_id)
            self._check_live(old, "change", allow=(SealStatus.ACTIVE,))
            unit = session.get(Unit, old.unit_id)
            self._require(session, unit, actor, (Role.ADMIN, Role.KEEPER), "change this seal")
            target = self._unit(session, new_unit_code) if new_unit_code else unit
            if target.id != unit.id:
                self._require(session, target, actor, (Role.ADMIN, Role.KEEPER), "move a seal into this unit")
            holder = session.get(Person, old.holder_id) if old.holder_id else None
            kind, sub = rules.seal_kind(old.kind, old.official_type)
            name = rules.check_seal_name(kind, sub, new_name or old.name, target.name, holder.name if holder else None)
            old_keeper = old.keeper
            session.expunge_all()
        start = self._clock()
        end = start + timedelta(days=self.settings.seal_validity_days)
        new_id = rules.new_es_id(self.settings.seal_region_code, start)
        code = rules.type_code(kind, sub)
        made = self._issue(kind=kind, es_id=new_id, version=1, pin=pin, unit=target, holder=holder, name=name,
                           type_code=code, start=start, end=end, picture=picture, sub=sub)

        def step(session: Session) -> str:
            seal = self._seal(session, es_id, lock=True)
            self._check_live(seal, "change", allow=(SealStatus.ACTIVE,))
            new = Seal(es_id=new_id, version=1, kind=kind.value, official_type=sub.value if sub else None,
                       type_code=code, name=name, unit_id=target.id, holder_id=holder.id if holder else None,
                       keeper=old_keeper, key_id=made["key_id"], signer_cert_der=made["cert"],
                       seal_der=made["seal_der"], seal_sm3=made["seal_sm3"], valid_start=start, valid_end=end,
                       status=SealStatus.ACTIVE.value, supersedes=seal.es_id, application_id=seal.application_id,
                       created_at=start, updated_at=start)
            session.add(new)
            session.flush()
            self._history(session, new, SealStatus.ACTIVE, actor, f"made by change of {seal.es_id}", initial=True)
            self._store_version(session, new, made)
            self._history(session, seal, SealStatus.RETIRED, actor, f"changed into {new_id}: {reason}".strip(": "))
            seal.superseded_by, seal.updated_at = new_id, start
            self._file(session, "seal.change", seal, unit, holder, reason=reason, superseded_by=new_id)
            self._file(session, "seal.make", new, target, holder, reason=reason, supersedes=seal.es_id)
            self.audit.append(session, actor=actor, action="seal.change", es_id=seal.es_id, reason=reason,
                              payload={"old": self._audit_payload(seal), "new": self._audit_payload(new)})
            return new_id

        return self._tx(step)

    def renew(self, actor: str, es_id: str, pin: str, *, valid_days: int | None = None) -> int:
        """续期: within the 30 days before expiry, a new certificate and SESeal with a new validity,
        same esID. Returns the new version number."""
        now = self._clock()
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            self._check_live(seal, "renew", allow=(SealStatus.ACTIVE,))
            unit = session.get(Unit, seal.unit_id)
            self._require(session, unit, actor, (Role.ADMIN, Role.KEEPER), "renew this seal")
            self._check_window(seal, now)
            holder = session.get(Person, seal.holder_id) if seal.holder_id else None
            kind, sub = rules.seal_kind(seal.kind, seal.official_type)
            version, old_end, name, code = seal.version, aware(seal.valid_end), seal.name, seal.type_code
            session.expunge_all()
        end = old_end + timedelta(days=valid_days or self.settings.seal_validity_days)
        made = self._issue(kind=kind, es_id=es_id, version=version + 1, pin=pin, unit=unit, holder=holder, name=name,
                           type_code=code, start=now, end=end, picture=None, sub=sub)

        def step(session: Session) -> int:
            seal = self._seal(session, es_id, lock=True)
            self._check_live(seal, "renew", allow=(SealStatus.ACTIVE,))
            if seal.version != version:
                raise ConcurrentChange(f"seal {es_id} was renewed or changed at the same moment (now version "
                                       f"{seal.version}); nothing more to do")
            self._check_window(seal, now)
            seal.version, seal.key_id, seal.signer_cert_der = version + 1, made["key_id"], made["cert"]
            seal.seal_der, seal.seal_sm3, seal.valid_start, seal.valid_end = (made["seal_der"], made["seal_sm3"],
                                                                              now, end)
            seal.updated_at = now
            session.flush()
            self._store_version(session, seal, made)
            self._file(session, "seal.renew", seal, unit, holder, reason="")
            self.audit.append(session, actor=actor, action="seal.renew", es_id=es_id,
                              payload=self._audit_payload(seal, previous_valid_end=_iso(old_end)))
            return seal.version

        return self._tx(step)

    @staticmethod
    def _check_window(seal: Seal, now: datetime) -> None:
        end = aware(seal.valid_end)
        opens = end - timedelta(days=rules.RENEWAL_WINDOW_DAYS)
        if now < opens:
            raise RenewalWindow(f"seal {seal.es_id} expires on {end:%Y-%m-%d}; renewal opens on {opens:%Y-%m-%d} "
                                f"(the {rules.RENEWAL_WINDOW_DAYS} days before expiry); try again then")
        if now >= end:
            raise RenewalWindow(f"seal {seal.es_id} expired on {end:%Y-%m-%d}; an expired seal cannot be renewed, "
                                "apply for a new one")

    def expire_due(self, now: datetime | None = None, actor: str = "scheduler") -> list[str]:
        """The scheduled job: every active or suspended seal past its validity becomes expired
        (filed and audited, one transaction per seal). Returns the esIDs it expired."""
        now = utc(now or self._clock())
        with self._sessions() as session:
            due = session.scalars(select(Seal.es_id).where(Seal.status.in_([s.value for s in _LIVE]),
                                                           Seal.valid_end <= now)).all()
        expired = []
        for es_id in due:
            def step(session: Session, es_id: str = es_id) -> bool:
                seal = self._seal(session, es_id, lock=True)
                if seal.status not in _LIVE or aware(seal.valid_end) > now:
                    return False  # renewed, revoked or expired by someone else meanwhile
                self._history(session, seal, SealStatus.EXPIRED, actor, f"validity ended {_iso(seal.valid_end)}",
                              at=now)
                seal.updated_at = now
                unit = session.get(Unit, seal.unit_id)
                holder = session.get(Person, seal.holder_id) if seal.holder_id else None
                self._file(session, "seal.expire", seal, unit, holder, reason="validity ended", at=now)
                self.audit.append(session, actor=actor, action="seal.expire", es_id=es_id, at=now,
                                  payload=self._audit_payload(seal))
                return True

            try:
                if self._tx(step):
                    expired.append(es_id)
            except ConcurrentChange:
                log.info("seal %s changed while expiring; the next run looks again", es_id)
        return expired

    # --- revoke, suspend, resume ---------------------------------------------------------

    @staticmethod
    def _check_live(seal: Seal, what: str, allow: tuple[SealStatus, ...] = _LIVE) -> None:
        if seal.status == SealStatus.REVOKED:
            raise SealRevoked(f"seal {seal.es_id} is revoked (注销) and revocation is final: it cannot {what}; "
                              "apply for a new seal")
        if seal.status not in allow:
            raise SealNotActive(f"seal {seal.es_id} is {seal.status}; cannot {what} it"
                                + (f" (superseded by {seal.superseded_by})" if seal.superseded_by else ""))

    def _transition(self, actor: str, es_id: str, to: SealStatus, kind: str, action: str, reason: str,
                    allow: tuple[SealStatus, ...], roles: tuple[Role, ...], what: str) -> None:
        def step(session: Session) -> None:
            seal = self._seal(session, es_id, lock=True)
            self._check_live(seal, what, allow=allow)
            unit = session.get(Unit, seal.unit_id)
            self._require(session, unit, actor, roles, f"{what} this seal")
            if to is SealStatus.ACTIVE and aware(seal.valid_end) <= self._clock():
                raise SealNotActive(f"seal {es_id} is past its validity ({seal.valid_end:%Y-%m-%d}); it cannot be "
                                    "resumed, it will expire")
            self._history(session, seal, to, actor, reason)
            seal.updated_at = self._clock()
            holder = session.get(Person, seal.holder_id) if seal.holder_id else None
            session.flush()
            self._file(session, kind, seal, unit, holder, reason=reason)
            self.audit.append(session, actor=actor, action=action, es_id=es_id, reason=reason,
                              payload=self._audit_payload(seal))

        self._tx(step)

    def revoke(self, actor: str, es_id: str, reason: str) -> list[str]:
        """注销: end a seal for good (final: no later step accepts it), then destroy its keys
        (:meth:`destroy_keys`). Returns the key ids destroyed."""
        self._transition(actor, es_id, SealStatus.REVOKED, "seal.revoke", "seal.revoke", reason,
                         tuple(SealStatus), (Role.ADMIN,), "revoke")
        return self.destroy_keys(actor, es_id, reason)

    def destroy_keys(self, actor: str, es_id: str, reason: str = "") -> list[str]:
        """销毁: overwrite and remove every private key the seal ever had (each version's key file in
        the key store) and the PIN batch custody keeps for it; audit and file the destruction.

        Only for a revoked seal, after the revocation committed (files cannot roll back with a
        transaction; a failure here leaves a revoked seal that can no longer be used anyway, and
        running this again finishes the job). The certificates stay in the registry, so earlier
        signatures still verify and status lookups still answer.
        """
        from gmpki.keys.store import shred
        from kernel.keys import custody_path

        with self._sessions() as session:
            seal = self._seal(session, es_id)
            if seal.status != SealStatus.REVOKED:
                raise InvalidState(f"seal {es_id} is {seal.status}: keys are destroyed only once it is revoked "
                                   "(`sealflow seal revoke`)")
            self._require(session, session.get(Unit, seal.unit_id), actor, (Role.ADMIN,), "destroy its keys")
            key_ids = sorted({seal.key_id, *session.scalars(select(SealVersion.key_id)
                                                            .where(SealVersion.es_id == es_id))})
            recorded = session.scalars(select(AuditEntry.seq).where(AuditEntry.es_id == es_id,
                                                                    AuditEntry.action == "seal.destroy")).first()
        destroyed = [k for k in key_ids if self.keystore.destroy(k)]
        custody = custody_path(self.settings, es_id)
        had_custody = custody.exists()
        shred(custody)
        if recorded is not None and not destroyed and not had_custody:
            return []  # done before: nothing left to destroy, nothing new to record

        def step(session: Session) -> None:
            seal = self._seal(session, es_id, lock=True)
            unit = session.get(Unit, seal.unit_id)
            holder = session.get(Person, seal.holder_id) if seal.holder_id else None
            self._file(session, "seal.destroy", seal, unit, holder, reason=reason or "keys destroyed after revocation")
            self.audit.append(session, actor=actor, action="seal.destroy", es_id=es_id, reason=reason,
                              payload=self._audit_payload(seal, keys=key_ids, destroyed=destroyed,
                                                          custody_pin_destroyed=str(had_custody).lower()))

        self._tx(step)
        return destroyed

    def report_lost(self, actor: str, es_id: str, reason: str) -> None:
        """失控/丢失: suspend the seal at once; any user of the owning unit may report."""
        self._transition(actor, es_id, SealStatus.SUSPENDED, "seal.suspend", "seal.report_lost", reason,
                         (SealStatus.ACTIVE,), tuple(Role), "report lost")

    def resume(self, actor: str, es_id: str, reason: str) -> None:
        """Lift a suspension (an administrator, once the seal is back under control)."""
        self._transition(actor, es_id, SealStatus.ACTIVE, "seal.resume", "seal.resume", reason,
                         (SealStatus.SUSPENDED,), (Role.ADMIN,), "resume")

    # --- filing and audit payloads -------------------------------------------------------

    def _file(self, session: Session, kind: str, seal: Seal, unit: Unit, holder: Person | None, *, reason: str,
              at: datetime | None = None, **extra: str) -> str:
        payload = self.filing_payload(seal, unit, holder, event=kind, at=at or self._clock())
        if reason:
            payload["reason"] = reason
        payload.update(extra)
        return enqueue(session, kind, seal.es_id, payload)

    @staticmethod
    def filing_payload(seal: Seal, unit: Unit, holder: Person | None, *, event: str, at: datetime) -> dict[str, Any]:
        """The fields national-platform.md asks for, per seal event (see filing.protocol)."""
        from stamping.ses.codec import parse_seal

        maker = parse_seal(seal.seal_der).maker_cert
        info = cert_info(seal.signer_cert_der)
        personal = seal.kind == SealKind.PERSONAL and holder is not None
        return {
            "es_id": seal.es_id, "seal_name": seal.name, "seal_kind": seal.kind, "seal_type": seal.type_code,
            "official_type": seal.official_type or "", "version": seal.version,
            "owner_name": holder.name if personal else unit.name,
            "owner_id": holder.id_number if personal else unit.credit_code,
            "maker_name": _common_name(maker), "maker_cert": _b64(maker),
            "signer_certs": [{"serial": info.serial, "sm3": sm3(seal.signer_cert_der).hex()}],
            "valid_start": _iso(seal.valid_start), "valid_end": _iso(seal.valid_end),
            "event": event, "event_time": _iso(at), "status": seal.status, "seal_sm3": seal.seal_sm3,
        }

    @staticmethod
    def _audit_payload(seal: Seal, **extra: Any) -> dict[str, Any]:
        return {"es_id": seal.es_id, "version": seal.version, "name": seal.name, "kind": seal.kind,
                "status": seal.status, "seal_sm3": seal.seal_sm3, "valid_start": _iso(seal.valid_start),
                "valid_end": _iso(seal.valid_end), **extra}

    # --- use -----------------------------------------------------------------------------

    @contextmanager
    def status_snapshot(self) -> Iterator[None]:
        """Within the block, each seal's status history is read once (what 验章 of a batch chunk uses:
        two look-ups per document were a third of its time, one query each).

        The snapshot is of the history, not of a status: each look-up still judges its own time
        against it. A status changed while the block runs (seconds, for a chunk) is seen by the
        next block; the snapshot belongs to the calling thread or task only (a ContextVar)."""
        token = _STATUS_HISTORY.set({})
        try:
            yield
        finally:
            _STATUS_HISTORY.reset(token)

    def status_at(self, es_id: str, at: datetime) -> SealStatus | None:
        """The seal's status at ``at`` from its history (a SealStatusLookup); None if unknown here."""
        at = utc(at)
        snapshot = _STATUS_HISTORY.get()
        rows = snapshot.get((id(self), es_id)) if snapshot is not None else None
        if rows is None:
            with self._sessions() as session:
                rows = session.execute(select(StatusChange.to_status, StatusChange.at)
                                       .where(StatusChange.es_id == es_id).order_by(StatusChange.at, StatusChange.id)
                                       ).all()
            if snapshot is not None:
                snapshot[(id(self), es_id)] = rows
        if not rows:
            return None
        status = rows[0].to_status  # a time before the making: the seal's first status (validity checks catch it)
        for row in rows:
            if aware(row.at) <= at:
                status = row.to_status
            else:
                break
        return SealStatus(status)

    def seal_signer(self, es_id: str, pin: str, actor: str) -> tuple[Signer, bytes]:
        """The signer and SESeal DER to stamp with: only an active seal within its validity, and only
        for its keeper or a keeper of the owning unit; the PIN unlocks the key."""
        now = self._clock()
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            self._check_live(seal, "be used", allow=(SealStatus.ACTIVE,))
            if not aware(seal.valid_start) <= now < aware(seal.valid_end):
                raise SealNotActive(f"seal {es_id} is outside its validity ({seal.valid_start:%Y-%m-%d}.."
                                    f"{seal.valid_end:%Y-%m-%d}); renew it or wait for the expiry job")
            unit = session.get(Unit, seal.unit_id)
            if actor != seal.keeper:
                self._require(session, unit, actor, (Role.KEEPER,), "use this seal")
            key_id, seal_der = seal.key_id, seal.seal_der
            people = [p for p in (session.get(Person, seal.holder_id) if seal.holder_id else None,
                                  self._user_person(session, unit, actor)) if p is not None]
            session.expunge_all()
        self._check_identities(actor, "seal.use", es_id, unit, people)
        from gmpki.keys.store import KeyStoreError

        try:
            signer = self.keystore.signer(key_id, pin)
        except KeyStoreError as exc:
            raise PinRefused(f"seal {es_id}: {exc}") from None
        return signer, seal_der

    def check_can_use(self, es_id: str, actor: str) -> None:
        """Refuse (typed) unless ``actor`` may use the active seal ``es_id`` — without a PIN."""
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            self._check_live(seal, "be used", allow=(SealStatus.ACTIVE,))
            unit = session.get(Unit, seal.unit_id)
            if actor != seal.keeper:
                self._require(session, unit, actor, (Role.KEEPER,), "use this seal")
            people = [p for p in (session.get(Person, seal.holder_id) if seal.holder_id else None,
                                  self._user_person(session, unit, actor)) if p is not None]
            session.expunge_all()
        self._check_identities(actor, "seal.use", es_id, unit, people)

    def record_use(self, es_id: str, actor: str, document_ref: str, batch_id: str | None = None, reason: str = "",
                   *, session: Session | None = None, signature_value: bytes | None = None) -> AuditEntry:
        """Audit one use of a seal (one stamped document); in ``session`` when given (the caller's
        transaction), else in a transaction of its own. ``signature_value``: the SM2 signature made,
        recorded by its SM3 so that 验章 can tell our signatures from others made with the seal's key."""
        def step(s: Session) -> AuditEntry:
            seal = self._seal(s, es_id)
            payload = {"document": document_ref, "batch_id": batch_id or "", "seal_version": seal.version,
                       "seal_sm3": seal.seal_sm3}
            if signature_value is not None:
                payload["signature_sm3"] = sm3(signature_value).hex()
            return self.audit.append(s, actor=actor, action="seal.use", es_id=es_id, reason=reason, payload=payload)

        return step(session) if session is not None else self._tx(step)

    def record_uses(self, session: Session, *, es_id: str, actor: str, batch_id: str,
                    documents: list[tuple[str, ...]]) -> None:
        """One audit entry per stamped document ``(file, sm3 hex[, SM3 hex of the signature value])``
        in the caller's transaction (the batch pipeline's UseRecorder)."""
        seal = self._seal(session, es_id)
        items = []
        for name, digest, *signature in documents:
            payload = {"document": f"{name} sm3:{digest}", "batch_id": batch_id or "",
                       "seal_version": seal.version, "seal_sm3": seal.seal_sm3}
            if signature and signature[0]:
                payload["signature_sm3"] = signature[0]
            items.append({"actor": actor, "action": "seal.use", "es_id": es_id, "payload": payload})
        self.audit.append_many(session, items)

    def use_recorded(self, es_id: str, signature_value: bytes) -> bool | None:
        """Whether a signature value was recorded as a use of seal ``es_id`` (a SignatureUseLookup);
        None when the seal is not in this registry.

        The digests of a seal's uses are read once and kept; a miss reads them again (a use recorded
        since), so verifying a batch costs one query per seal, not one per document."""
        digest = sm3(signature_value).hex()
        known = self._use_digests.get(es_id)
        if known is not None and digest in known:
            return True
        with self._sessions() as session:
            if session.scalar(select(Seal.es_id).where(Seal.es_id == es_id)) is None:
                return None
            rows = session.execute(select(AuditEntry.payload).where(AuditEntry.es_id == es_id,
                                                                    AuditEntry.action == "seal.use"))
            known = {p.get("signature_sm3") for (p,) in rows if isinstance(p, dict)}
        known.discard(None)
        self._use_digests[es_id] = known
        return digest in known

    # --- reading -------------------------------------------------------------------------

    def seal_der(self, es_id: str, version: int | None = None) -> bytes:
        """The SESeal DER (the current one, or of ``version``) for export (.esl)."""
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            if version is None or version == seal.version:
                return seal.seal_der
            row = session.scalars(select(SealVersion).where(SealVersion.es_id == es_id,
                                                            SealVersion.version == version)).first()
            if row is None:
                raise NotFound(f"seal {es_id} has no version {version} (versions 1..{seal.version})")
            return row.seal_der

    def list_seals(self, *, credit_code: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            stmt = select(Seal, Unit).join(Unit, Unit.id == Seal.unit_id).order_by(Seal.id)
            if credit_code:
                stmt = stmt.where(Unit.credit_code == credit_code.strip().upper())
            if status:
                stmt = stmt.where(Seal.status == status)
            return [self._summary(seal, unit) for seal, unit in session.execute(stmt)]

    def list_applications(self, *, status: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            stmt = select(SealApplication, Unit).join(Unit, Unit.id == SealApplication.unit_id).order_by(
                SealApplication.id)
            if status:
                stmt = stmt.where(SealApplication.status == status)
            return [{"id": a.id, "unit": u.name, "credit_code": u.credit_code, "kind": a.kind,
                     "official_type": a.official_type, "name": a.name, "applicant": a.applicant, "keeper": a.keeper,
                     "status": a.status, "levels": f"{a.levels_approved}/{a.levels_required}", "es_id": a.es_id}
                    for a, u in session.execute(stmt)]

    @staticmethod
    def _summary(seal: Seal, unit: Unit) -> dict[str, Any]:
        return {"es_id": seal.es_id, "version": seal.version, "name": seal.name, "kind": seal.kind,
                "official_type": seal.official_type, "type_code": seal.type_code, "unit": unit.name,
                "credit_code": unit.credit_code, "keeper": seal.keeper, "status": seal.status,
                "valid_start": _iso(seal.valid_start), "valid_end": _iso(seal.valid_end), "seal_sm3": seal.seal_sm3,
                "supersedes": seal.supersedes, "superseded_by": seal.superseded_by}

    def show(self, es_id: str) -> dict[str, Any]:
        """Everything about one seal: summary, certificates, versions and status history."""
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            out = self._summary(seal, session.get(Unit, seal.unit_id))
            out["certificates"] = [{"version": c.seal_version, "serial": c.serial, "subject": c.subject,
                                    "not_before": _iso(c.not_before), "not_after": _iso(c.not_after),
                                    "sm3": c.cert_sm3}
                                   for c in session.scalars(select(Certificate).where(Certificate.es_id == es_id)
                                                            .order_by(Certificate.id))]
            out["history"] = [{"from": h.from_status, "to": h.to_status, "at": _iso(h.at), "actor": h.actor,
                               "reason": h.reason}
                              for h in session.scalars(select(StatusChange).where(StatusChange.es_id == es_id)
                                                       .order_by(StatusChange.at, StatusChange.id))]
            return out


def state_file(settings: Settings) -> Path:
    """Where ``bootstrap_demo`` leaves its summary (esIDs, users; never PINs)."""
    return settings.state_dir / "registry" / "demo.json"


__all__ = ["RegistryError", "SealRegistry", "cert_info", "state_file"]
