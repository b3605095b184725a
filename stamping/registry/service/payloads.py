"""What the registry writes about a seal for others: the filing record for the national platform
(national-platform.md, sent by ``filing.outbox``) and the payload of its audit entries.

Decisions:

* **Plain functions over a seal row**, not registry methods: a payload depends on the seal, its
  unit and holder, never on the registry's state, so building one needs no registry (and
  ``SealRegistry.filing_payload`` stays the same function).
* **Filed in the step's own transaction** (:func:`file_event` → ``filing.outbox.enqueue``): the
  filing record commits or rolls back together with the change it reports and its audit entry.
* Times are written as UTC ISO 8601 (:func:`iso`), certificates base64 (:func:`b64`), digests SM3 hex.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509
from sqlalchemy.orm import Session

from filing.outbox import enqueue
from gmpki.gm.sm3 import sm3
from stamping.registry.models import Person, Seal, SealKind, Unit, utc


def iso(value: datetime) -> str:
    return utc(value).isoformat()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


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


def common_name(der: bytes) -> str:
    cert = x509.Certificate.load(der)
    return cert.subject.native.get("common_name") or cert.subject.human_friendly


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
        "maker_name": common_name(maker), "maker_cert": b64(maker),
        "signer_certs": [{"serial": info.serial, "sm3": sm3(seal.signer_cert_der).hex()}],
        "valid_start": iso(seal.valid_start), "valid_end": iso(seal.valid_end),
        "event": event, "event_time": iso(at), "status": seal.status, "seal_sm3": seal.seal_sm3,
    }


def file_event(session: Session, kind: str, seal: Seal, unit: Unit, holder: Person | None, *, reason: str,
               at: datetime, **extra: str) -> str:
    """Queue the filing record of ``kind`` (``seal.make``, ``seal.revoke``…) in ``session``."""
    payload = filing_payload(seal, unit, holder, event=kind, at=at)
    if reason:
        payload["reason"] = reason
    payload.update(extra)
    return enqueue(session, kind, seal.es_id, payload)


def audit_payload(seal: Seal, **extra: Any) -> dict[str, Any]:
    """What an audit entry about a seal records of it (no key, no PIN)."""
    return {"es_id": seal.es_id, "version": seal.version, "name": seal.name, "kind": seal.kind,
            "status": seal.status, "seal_sm3": seal.seal_sm3, "valid_start": iso(seal.valid_start),
            "valid_end": iso(seal.valid_end), **extra}
