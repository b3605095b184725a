"""What every part of the seal registry stands on: its database and clock, one transaction per step
with lost races made :class:`ConcurrentChange`, the look-ups that refuse with a message saying what
to do, the role check, and the two writes every status change makes (history row, filing record).

Decisions:

* **One base class for the topic mixins** (``administration``, ``applications``, ``making``…):
  the helpers here are the registry's own, shared by its parts and used by nothing outside it.
* **Races**: a row read to be changed is read ``FOR UPDATE`` on PostgreSQL (:meth:`_locked`; SQLite
  serialises writers anyway); updates carry an optimistic ``row_version``. SQLite's "database is
  locked" and a lost audit ``seq`` are retried as a whole step (it then sees the winner's state);
  a stale row or a unique-key clash is the caller's :class:`ConcurrentChange`.
* **Expiry is decided by the scheduled job**, never on read, so :meth:`_check_live` looks at the
  stored status only.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from kernel.db import transaction
from kernel.settings import Settings
from stamping.audit.log import AuditConflict, AuditLog
from stamping.registry.errors import ConcurrentChange, NotAuthorised, NotFound, SealNotActive, SealRevoked
from stamping.registry.models import Person, RegistryUser, Role, Seal, SealApplication, StatusChange, Unit, UnitUser
from stamping.registry.service.keys import RegistryKeys
from stamping.registry.service.payloads import file_event
from stamping.verdict.result import SealStatus

if TYPE_CHECKING:
    from gmpki.gm.sm2 import SM2PublicKey
    from gmpki.keys.signer import Signer
    from gmpki.keys.store import KeyStore
    from gmpki.pki.ca import DemoCA
    from stamping.registry.identity_source import IdentitySource

T = TypeVar("T")
TRIES = 6
# Statuses a seal can still leave; REVOKED is final.
LIVE = (SealStatus.ACTIVE, SealStatus.SUSPENDED)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class RegistryBase:
    """The seal registry over a SealFlow database (see ``stamping.registry.service``).

    ``keystore`` and ``ca`` default to the key store and the CA of ``settings``
    (``<state>/keys``, ``<state>/ca``), opened when first needed: read-only uses such as
    ``status_at`` never touch them.
    """

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings,
                 keystore: KeyStore | None = None, ca: DemoCA | None = None, *,
                 clock: Callable[[], datetime] = now, identity: IdentitySource | None = None) -> None:
        self._sessions = session_factory
        self.settings = settings
        self._identity = identity
        self.keys = RegistryKeys(settings, keystore, ca)
        self._clock = clock
        self.audit = AuditLog(self._audit_signer, settings.audit_checkpoint_every, settings.audit_key_id)
        self._use_digests: dict[str, set[str]] = {}

    def __repr__(self) -> str:
        return f"SealRegistry({self.settings.state_dir})"

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The registry's database, for callers that read or audit alongside it (one transaction)."""
        return self._sessions

    # --- keys (see keys.py) ------------------------------------------------------------

    @property
    def keystore(self) -> KeyStore:
        return self.keys.keystore

    @property
    def ca(self) -> DemoCA:
        return self.keys.ca

    def _audit_signer(self) -> Signer:
        return self.keys.audit_signer()

    def audit_public_key(self) -> SM2PublicKey:
        """The audit key's public key (creating the key on first use)."""
        return self.keys.audit_public_key()

    # --- transactions --------------------------------------------------------------------

    def _tx(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction; lost races become :class:`ConcurrentChange`.

        SQLite answers a writer that waited too long, or whose snapshot went stale, with
        "database is locked", and an audit append that lost its seq there cannot step past it
        alone: the whole step is tried again (it then sees the winner's state).
        """
        for attempt in range(TRIES):
            try:
                with transaction(self._sessions) as session:
                    return fn(session)
            except (OperationalError, AuditConflict) as exc:
                if isinstance(exc, OperationalError) and not any(w in str(exc).lower() for w in ("locked", "busy")):
                    raise
                if attempt == TRIES - 1:
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

    def _user_person(self, session: Session, unit: Unit, username: str) -> Person | None:
        """The person a user is (their own link, else the one a role in ``unit`` names); None if neither."""
        user = session.scalars(select(RegistryUser).where(RegistryUser.username == username)).first()
        person_id = user.person_id if user is not None else None
        if person_id is None:
            person_id = next((r.person_id for r in self._roles(session, unit.id, username) if r.person_id), None)
        return session.get(Person, person_id) if person_id else None

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

    # --- seal status ---------------------------------------------------------------------

    @staticmethod
    def _check_live(seal: Seal, what: str, allow: tuple[SealStatus, ...] = LIVE) -> None:
        if seal.status == SealStatus.REVOKED:
            raise SealRevoked(f"seal {seal.es_id} is revoked (注销) and revocation is final: it cannot {what}; "
                              "apply for a new seal")
        if seal.status not in allow:
            raise SealNotActive(f"seal {seal.es_id} is {seal.status}; cannot {what} it"
                                + (f" (superseded by {seal.superseded_by})" if seal.superseded_by else ""))

    def _history(self, session: Session, seal: Seal, to: SealStatus, actor: str, reason: str,
                 at: datetime | None = None, *, initial: bool = False) -> None:
        session.add(StatusChange(seal_id=seal.id, es_id=seal.es_id, from_status=None if initial else seal.status,
                                 to_status=to.value, at=at or self._clock(), actor=actor, reason=reason))
        seal.status = to.value

    def _file(self, session: Session, kind: str, seal: Seal, unit: Unit, holder: Person | None, *, reason: str,
              at: datetime | None = None, **extra: str) -> str:
        return file_event(session, kind, seal, unit, holder, reason=reason, at=at or self._clock(), **extra)
