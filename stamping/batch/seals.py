"""The seal side of a batch: who keeps the seal, its key in custody for approved batches, the trust
store and registry status for 验章, and the audit entries of approvals and uses.

批量用章 custody: a keeper enrols a seal for batch use once by giving its PIN; the PIN is kept
SM4-GCM encrypted under the key-encryption key, and released only to stamp a batch whose use the
keeper approved (用章审批) with a one-time code. Revoking the enrolment deletes it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gmpki.gm.sm4 import DecryptionFailed, decrypt_gcm, encrypt_gcm
from gmpki.keys.signer import Signer
from gmpki.pki.trust import TrustStore
from kernel.files import write_atomic
from kernel.keys import custody_path, installation_trust, load_kek
from kernel.settings import Settings
from stamping.batch.approval import Decision
from stamping.registry.service import SealRegistry
from stamping.verdict.result import SealStatus


class CustodyError(Exception):
    """The seal is not enrolled for batch use, or its enrolment cannot be read."""


@dataclass(frozen=True)
class Keeper:
    name: str
    phone: str  # the SMS address; the user name when the registry holds no number


class BatchSeals:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 registry: SealRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or SealRegistry(sessions, settings)
        self._custody_dir = settings.state_dir / "custody"

    def __repr__(self) -> str:
        return f"BatchSeals({self.settings.state_dir})"

    # --- custody of the PIN for approved batches ----------------------------------------

    def _custody_file(self, es_id: str) -> Path:
        return custody_path(self.settings, es_id)  # one naming, shared with key destruction (销毁)

    def enrol(self, es_id: str, pin: str, keeper: str) -> None:
        """Keep the seal's PIN for approved batches; the PIN is checked by unlocking the key once."""
        self.registry.seal_signer(es_id, pin, keeper)
        self._custody_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        blob = encrypt_gcm(load_kek(self.settings), pin.encode(), es_id.encode())
        path = self._custody_file(es_id)
        write_atomic(path, json.dumps({"es_id": es_id, "keeper": keeper,
                                       "pin": base64.b64encode(blob).decode()}).encode())

    def withdraw(self, es_id: str) -> None:
        self._custody_file(es_id).unlink(missing_ok=True)

    def is_enrolled(self, es_id: str) -> bool:
        return self._custody_file(es_id).exists()

    def batch_signer(self, es_id: str) -> tuple[Signer, bytes]:
        """The signer and SESeal DER for an approved batch (the caller checks the approval)."""
        path = self._custody_file(es_id)
        if not path.exists():
            raise CustodyError(f"seal {es_id} is not enrolled for batch use: its keeper runs "
                               f"`sealflow seal enrol-batch {es_id} --pin-env VAR`")
        record = json.loads(path.read_text())
        try:
            pin = decrypt_gcm(load_kek(self.settings), base64.b64decode(record["pin"]), es_id.encode()).decode()
        except DecryptionFailed:
            raise CustodyError(f"the batch enrolment of seal {es_id} cannot be read with this KEK") from None
        return self.registry.seal_signer(es_id, pin, record["keeper"])

    # --- who may do what ----------------------------------------------------------------

    def keeper_of(self, es_id: str) -> Keeper:
        keeper = self.registry.show(es_id)["keeper"]
        return Keeper(keeper, keeper)

    def check_can_request(self, es_id: str, requester: str) -> None:
        """The seal must be active and enrolled; the requester must be a user of the owning unit."""
        del requester  # who asks is recorded with the approval; the keeper decides
        info = self.registry.show(es_id)
        if info["status"] != SealStatus.ACTIVE:
            raise CustodyError(f"seal {es_id} is {info['status']}; it cannot be used")
        if not self.is_enrolled(es_id):
            self.batch_signer(es_id)  # raises CustodyError with what to do

    def check_identities(self, es_id: str) -> None:
        """Using the seal for a batch: its unit, holder and keeper are checked against the identity
        registers now, before approval (a refusal is audited by the registry and raised, typed); the
        stamping step checks again when it unlocks the key."""
        self.registry.check_can_use(es_id, self.keeper_of(es_id).name)

    # --- 验章 -----------------------------------------------------------------------------

    def trust_store(self) -> TrustStore:
        """The trust anchors of the registry's CA and ``SEALFLOW_TRUST_ROOTS`` (``kernel.keys.installation_trust``,
        the one way they are built)."""
        return installation_trust(self.settings, self.registry.ca) or TrustStore([], [])

    def status_lookup(self, es_id: str, at: datetime) -> SealStatus | None:
        return self.registry.status_at(es_id, at)

    def use_lookup(self, es_id: str, signature_value: bytes) -> bool | None:
        return self.registry.use_recorded(es_id, signature_value)

    # --- audit ----------------------------------------------------------------------------

    def record_uses(self, session: Session, *, es_id: str, actor: str, batch_id: str,
                    documents: list[tuple[str, ...]]) -> None:
        self.registry.record_uses(session, es_id=es_id, actor=actor, batch_id=batch_id, documents=documents)

    def audit_decision(self, session: Session, decision: Decision, run_id: str = "") -> None:
        """One entry per answer: approved, refused (with the reason), or a try that did not count.
        A decision read back (decided earlier, e.g. by the answer gate) is not audited twice."""
        if not decision.recorded_now:
            return
        action = ("seal.use.approved" if decision.approved else "seal.use.refused") if decision.final \
            else f"seal.use.answer_{'rejected' if decision.outcome != 'wrong_code' else 'wrong_code'}"
        self.audit(session, actor=decision.decided_by or "unknown", action=action, es_id=decision.es_id,
                   reason=decision.reason, payload={"batch_id": decision.batch_id, "request_id": decision.request_id,
                                                    "run_id": run_id, "outcome": decision.outcome})

    def audit(self, session: Session, *, actor: str, action: str, es_id: str, reason: str, payload: dict) -> None:
        self.registry.audit.append(session, actor=actor, action=action, es_id=es_id, reason=reason, payload=payload)

    def seal_unit(self, es_id: str) -> tuple[str, str]:
        """The seal's unit: (统一社会信用代码, name)."""
        info = self.registry.show(es_id)
        return info["credit_code"], info["unit"]
