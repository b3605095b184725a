"""Using a seal and answering for it: the signer to stamp with (only for its keeper, only while
active and valid, after 身份核验), the audit record of each use, and the status lookups of 验章.

Decisions:

* **Status at a time, from the history** (:meth:`Use.status_at`): a revocation after a signature
  does not invalidate that earlier signature.
* **A status snapshot per 验章 chunk** (:meth:`Use.status_snapshot`): each seal's history is read
  once per block (a ContextVar, so it belongs to the calling thread or task only); each lookup
  still judges its own time against it.
* **Uses are recorded by the SM3 of the signature value**, so 验章 can tell our signatures from
  others made with the seal's key (:meth:`Use.use_recorded`); the known digests are cached per
  seal and re-read on a miss.
* **The PIN unlocks the key in the key store**, which counts wrong tries; a refusal is
  :class:`PinRefused` and never repeats the PIN.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gmpki.gm.sm3 import sm3
from stamping.audit.models import AuditEntry
from stamping.registry.errors import PinRefused, SealNotActive
from stamping.registry.models import Person, Role, Seal, StatusChange, Unit, aware, utc
from stamping.registry.service.identity_checks import IdentityChecks
from stamping.verdict.result import SealStatus

if TYPE_CHECKING:
    from gmpki.keys.signer import Signer

# (registry, es_id) → status history rows, while a status_snapshot() block runs in this thread/task.
STATUS_HISTORY: ContextVar[dict[tuple[int, str], list] | None] = ContextVar("status_history", default=None)


class Use(IdentityChecks):
    """Signers, use records and status lookups (see the module docstring)."""

    @contextmanager
    def status_snapshot(self) -> Iterator[None]:
        """Within the block, each seal's status history is read once (what 验章 of a batch chunk uses:
        two look-ups per document were a third of its time, one query each).

        The snapshot is of the history, not of a status: each look-up still judges its own time
        against it. A status changed while the block runs (seconds, for a chunk) is seen by the
        next block; the snapshot belongs to the calling thread or task only (a ContextVar)."""
        token = STATUS_HISTORY.set({})
        try:
            yield
        finally:
            STATUS_HISTORY.reset(token)

    def status_at(self, es_id: str, at: datetime) -> SealStatus | None:
        """The seal's status at ``at`` from its history (a SealStatusLookup); None if unknown here."""
        at = utc(at)
        snapshot = STATUS_HISTORY.get()
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
