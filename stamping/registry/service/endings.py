"""How a seal's life ends or pauses: expiry (过期, a scheduled job), revocation (注销) and the
destruction of its keys (销毁), suspension on loss (失控/丢失) and resumption.

Decisions:

* **Expiry is a scheduled job** (:meth:`Endings.expire_due`, the ``seal_maintenance`` DAG), never
  decided lazily on read; each seal is expired in its own transaction, and one that changed
  meanwhile (renewed, revoked) is left for the next run.
* **Revocation is final**: no later step accepts a revoked seal. Its keys are destroyed after the
  revocation committed (files cannot roll back with a transaction); running
  :meth:`Endings.destroy_keys` again finishes an interrupted destruction. Certificates stay, so
  earlier signatures still verify and status lookups still answer.
* **Every change of status is one transaction** with its history row, filing record and audit
  entry (:meth:`Endings._transition`).
* **Who may**: any user of the owning unit reports a loss (at once, whoever notices); only an
  administrator revokes, resumes or destroys keys.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from stamping.audit.models import AuditEntry
from stamping.registry.errors import ConcurrentChange, InvalidState, SealNotActive
from stamping.registry.models import Person, Role, Seal, SealVersion, Unit, aware, utc
from stamping.registry.service.base import LIVE, RegistryBase
from stamping.registry.service.payloads import audit_payload, iso
from stamping.verdict.result import SealStatus

log = logging.getLogger(__name__)


class Endings(RegistryBase):
    """Expiry, revocation, key destruction, suspension and resumption (see the module docstring)."""

    def expire_due(self, now: datetime | None = None, actor: str = "scheduler") -> list[str]:
        """The scheduled job: every active or suspended seal past its validity becomes expired
        (filed and audited, one transaction per seal). Returns the esIDs it expired."""
        now = utc(now or self._clock())
        with self._sessions() as session:
            due = session.scalars(select(Seal.es_id).where(Seal.status.in_([s.value for s in LIVE]),
                                                           Seal.valid_end <= now)).all()
        expired = []
        for es_id in due:
            def step(session: Session, es_id: str = es_id) -> bool:
                seal = self._seal(session, es_id, lock=True)
                if seal.status not in LIVE or aware(seal.valid_end) > now:
                    return False  # renewed, revoked or expired by someone else meanwhile
                self._history(session, seal, SealStatus.EXPIRED, actor, f"validity ended {iso(seal.valid_end)}",
                              at=now)
                seal.updated_at = now
                unit = session.get(Unit, seal.unit_id)
                holder = session.get(Person, seal.holder_id) if seal.holder_id else None
                self._file(session, "seal.expire", seal, unit, holder, reason="validity ended", at=now)
                self.audit.append(session, actor=actor, action="seal.expire", es_id=es_id, at=now,
                                  payload=audit_payload(seal))
                return True

            try:
                if self._tx(step):
                    expired.append(es_id)
            except ConcurrentChange:
                log.info("seal %s changed while expiring; the next run looks again", es_id)
        return expired

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
                              payload=audit_payload(seal))

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
                              payload=audit_payload(seal, keys=key_ids, destroyed=destroyed,
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
