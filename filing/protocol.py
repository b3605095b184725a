"""SealFlow's filing protocol (备案接口) ``sealflow-filing/1``: records, canonical bytes, signatures, receipts.

The national platform's real interface is not public, so this is our own, kept small so that a
province's specification can replace it behind :class:`filing.client.PlatformClient`. The
OpenAPI document is ``docs/filing-openapi.yaml``. In short:

* ``POST /v1/filings`` — body = one record ``{record_id, kind, subject, subject_seq, created_at,
  payload}``. Headers ``X-SealFlow-Certificate`` (base64 DER of the sending system's SM2
  certificate) and ``X-SealFlow-Signature`` (base64 DER SM2-with-SM3 signature, default uid,
  over :func:`canonical` of the body). Optional ``X-SealFlow-System`` (the sender's id).
* Answer: ``201`` (new) or ``200`` (a resend: the ORIGINAL receipt, byte for byte) with
  ``{"receipt": {receipt_id, record_id, received_at, record_sm3, platform}, "signature": b64}``
  where the signature is the platform's SM2 signature over :func:`canonical` of ``receipt`` and
  ``record_sm3`` is the hex SM3 of the canonical record. ``409`` when a record_id is reused with
  a different body, ``422`` with ``{"error", "reason"}`` when a record is invalid, ``401`` when
  the signature or certificate is refused.
* ``POST /v1/filings:batch`` — ``{"records": [{"record": {...}, "signature": b64}, ...]}``, each
  record signed on its own (same certificate header); the answer lists one result per record
  ``{record_id, status, receipt?, signature?, reason?}`` — per-record receipts, same idempotency.
* ``GET /v1/filings?since=<receipt seq>&limit=<n>`` — the platform's listing for reconciliation,
  paged by ``next``; ``GET /v1/health``; ``GET /v1/platform-certificate`` (PEM).

Canonical form (``kernel.canonical``): JSON with object keys sorted by code point, no insignificant
whitespace (separators ``,`` and ``:``), non-ASCII characters as themselves, UTF-8 encoded. Values are
strings, integers (|n| < 2**53), booleans, null, arrays and objects — no floats, no NaN, so that
every implementation produces the same bytes (a subset of RFC 8785 JCS).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from gmpki.gm.sm3 import sm3_hex
from kernel.canonical import NotCanonical, canonical_json

PROTOCOL = "sealflow-filing/1"
HEADER_CERT = "X-SealFlow-Certificate"
HEADER_SIGNATURE = "X-SealFlow-Signature"
HEADER_SYSTEM = "X-SealFlow-System"
HEADER_PROTOCOL = "X-SealFlow-Protocol"
MAX_BODY_BYTES = 512 * 1024
MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024
MAX_BATCH_RECORDS = 1000

SEAL_EVENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "es_id": str,  # 印章编码
    "seal_name": str,  # 印章名称
    "seal_kind": str,  # official | position | personal (公章, 职务章, 私章)
    "seal_type": int,  # esType code of the SESeal
    "owner_name": str,  # 用章单位 or holder
    "owner_id": str,  # 统一社会信用代码 or 身份证号 (18 characters)
    "maker_name": str,  # 制章单位
    "maker_cert": str,  # base64 DER of the seal maker's certificate
    "signer_certs": list,  # [{"serial": hex, "sm3": hex of the DER}]
    "valid_start": str,  # ISO 8601 with offset
    "valid_end": str,
    "event_time": str,
    "seal_sm3": str,  # hex SM3 of the SESeal DER
}
ARCHIVE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "batch_id": str,
    "documents": int,
    "bytes": int,
    "manifest_sm3": str,  # hex SM3 of the batch manifest
    "registered_at": str,
}
# An audit checkpoint head (审计日志锚定): the audit key's signed (seq, chain), filed so that the
# platform holds a copy of the log's head that a database rewrite cannot reach.
AUDIT_CHECKPOINT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "seq": int,  # the last audit entry the checkpoint covers
    "chain": str,  # hex SM3 chain value at that entry
    "at": str,  # when it was signed
    "key_id": str,  # the audit key
    "signature": str,  # base64 DER SM2 signature of the audit key over the checkpoint message
}
# Optional: "reason" (seal.revoke / seal.suspend / seal.change), "archive_id" (档号), "package_uri".
REQUIRED_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    **dict.fromkeys(
        ("seal.make", "seal.change", "seal.renew", "seal.expire", "seal.revoke", "seal.suspend", "seal.resume",
         "seal.destroy"),
        SEAL_EVENT_FIELDS,
    ),
    "archive.register": ARCHIVE_FIELDS,
    "audit.checkpoint": AUDIT_CHECKPOINT_FIELDS,
}
SEAL_KINDS_OF_SEAL = ("official", "position", "personal")
RECORD_KEYS = ("record_id", "kind", "subject", "subject_seq", "created_at", "payload")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_OWNER_ID = re.compile(r"^[0-9A-Z]{17}[0-9A-Z]$")
_RECORD_ID = re.compile(r"^[0-9A-Za-z._:-]{8,64}$")


class ProtocolError(ValueError):
    """Something in a request or a reply does not follow ``sealflow-filing/1``."""


class RecordInvalid(ProtocolError):
    """A record the platform must refuse (422), with the reason."""


class SignatureInvalid(ProtocolError):
    """A request signature or certificate that does not verify (401)."""


def canonical(obj: Any) -> bytes:
    """The canonical bytes of a JSON value (``kernel.canonical``, see the module docstring); refuses floats."""
    try:
        return canonical_json(obj)
    except NotCanonical as exc:
        raise ProtocolError(str(exc)) from exc


def record_digest(record: dict[str, Any]) -> str:
    """Hex SM3 of the canonical record: what a receipt's ``record_sm3`` must equal."""
    return sm3_hex(canonical(record))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError) as exc:
        raise ProtocolError(f"{what} is not valid base64") from exc


def der_to_pem(der: bytes) -> bytes:
    """A certificate in PEM armour (64-character lines)."""
    body = "\n".join(b64(der)[i : i + 64] for i in range(0, len(b64(der)), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode("ascii")


def pem_to_der(data: bytes) -> bytes:
    """DER of a PEM or DER certificate."""
    from asn1crypto import pem

    return pem.unarmor(data)[2] if pem.detect(data) else data


def record_body(
    record_id: str, kind: str, subject: str, subject_seq: int, created_at: datetime, payload: dict[str, Any]
) -> dict[str, Any]:
    """The wire form of one outbox record."""
    return {
        "record_id": record_id,
        "kind": kind,
        "subject": subject,
        "subject_seq": subject_seq,
        "created_at": created_at.isoformat(),
        "payload": payload,
    }


def _check_time(value: str, where: str) -> None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordInvalid(f"{where} is not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise RecordInvalid(f"{where} has no UTC offset: {value!r}")


def validate_record(record: Any) -> dict[str, Any]:
    """Check a received record's shape and its kind's payload fields; raise :class:`RecordInvalid`."""
    if not isinstance(record, dict):
        raise RecordInvalid("record must be a JSON object")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise RecordInvalid(f"missing field(s): {', '.join(missing)}")
    extra = sorted(set(record) - set(RECORD_KEYS))
    if extra:
        raise RecordInvalid(f"unknown field(s): {', '.join(extra)}")
    if not isinstance(record["record_id"], str) or not _RECORD_ID.match(record["record_id"]):
        raise RecordInvalid("record_id must be 8..64 characters of [0-9A-Za-z._:-]")
    kind = record["kind"]
    if kind not in REQUIRED_FIELDS:
        raise RecordInvalid(f"unknown kind {kind!r}")
    if not isinstance(record["subject"], str) or not 0 < len(record["subject"]) <= 128:
        raise RecordInvalid("subject must be 1..128 characters")
    seq = record["subject_seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise RecordInvalid("subject_seq must be a positive integer")
    if not isinstance(record["created_at"], str):
        raise RecordInvalid("created_at must be a string")
    _check_time(record["created_at"], "created_at")
    payload = record["payload"]
    if not isinstance(payload, dict):
        raise RecordInvalid("payload must be a JSON object")
    _validate_payload(kind, record["subject"], payload)
    return record


def _validate_payload(kind: str, subject: str, payload: dict[str, Any]) -> None:
    fields = REQUIRED_FIELDS[kind]
    missing = [name for name in fields if name not in payload]
    if missing:
        raise RecordInvalid(f"{kind}: missing payload field(s): {', '.join(missing)}")
    for name, typ in fields.items():
        value = payload[name]
        if not isinstance(value, typ) or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
            raise RecordInvalid(f"{kind}: payload field {name} must be a non-empty {_type_name(typ)}")
    if kind == "archive.register":
        if payload["documents"] < 0 or payload["bytes"] < 0:
            raise RecordInvalid("archive.register: documents and bytes must not be negative")
        if not _HEX64.match(payload["manifest_sm3"]):
            raise RecordInvalid("archive.register: manifest_sm3 must be 64 lower-case hex digits")
        _check_time(payload["registered_at"], "payload.registered_at")
        return
    if kind == "audit.checkpoint":
        if payload["seq"] < 1 or not _HEX64.match(payload["chain"]):
            raise RecordInvalid("audit.checkpoint: seq must be positive and chain 64 lower-case hex digits")
        _check_time(payload["at"], "payload.at")
        unb64_checked(payload["signature"], "audit.checkpoint: signature")
        return
    if payload["es_id"] != subject:
        raise RecordInvalid(f"{kind}: payload es_id {payload['es_id']!r} differs from subject {subject!r}")
    if payload["seal_kind"] not in SEAL_KINDS_OF_SEAL:
        raise RecordInvalid(f"{kind}: seal_kind must be one of {', '.join(SEAL_KINDS_OF_SEAL)}")
    if not _OWNER_ID.match(payload["owner_id"]):
        raise RecordInvalid(f"{kind}: owner_id must be an 18-character credit code or ID number")
    if not _HEX64.match(payload["seal_sm3"]):
        raise RecordInvalid(f"{kind}: seal_sm3 must be 64 lower-case hex digits")
    unb64_checked(payload["maker_cert"], f"{kind}: maker_cert")
    if not payload["signer_certs"]:
        raise RecordInvalid(f"{kind}: signer_certs must list at least one certificate")
    for i, cert in enumerate(payload["signer_certs"]):
        if not (isinstance(cert, dict) and isinstance(cert.get("serial"), str) and isinstance(cert.get("sm3"), str)):
            raise RecordInvalid(f"{kind}: signer_certs[{i}] must be {{serial, sm3}}")
        if not _HEX64.match(cert["sm3"]):
            raise RecordInvalid(f"{kind}: signer_certs[{i}].sm3 must be 64 lower-case hex digits")
    for name in ("valid_start", "valid_end", "event_time"):
        _check_time(payload[name], f"payload.{name}")
    if datetime.fromisoformat(payload["valid_end"]) <= datetime.fromisoformat(payload["valid_start"]):
        raise RecordInvalid(f"{kind}: valid_end is not after valid_start")


def unb64_checked(text: str, what: str) -> bytes:
    try:
        return unb64(text, what)
    except ProtocolError as exc:
        raise RecordInvalid(str(exc)) from exc


def _type_name(typ: type | tuple[type, ...]) -> str:
    return {str: "string", int: "integer", list: "array"}.get(typ, str(typ))  # type: ignore[arg-type]


# --- signing and verifying -------------------------------------------------------------------


def sign_request(record: dict[str, Any], signer: Any, system_id: str = "") -> tuple[bytes, dict[str, str]]:
    """Body bytes (canonical) and headers of a ``POST /v1/filings`` for ``record``.

    ``signer`` is a :class:`gmpki.keys.signer.Signer` (the sending system's key).
    """
    body = canonical(record)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        HEADER_PROTOCOL: PROTOCOL,
        HEADER_CERT: b64(signer.certificate),
        HEADER_SIGNATURE: b64(signer.sign(body)),
    }
    if system_id:
        headers[HEADER_SYSTEM] = system_id
    return body, headers


def sign_batch(
    records: list[dict[str, Any]], signer: Any, system_id: str = ""
) -> tuple[bytes, dict[str, str], list[str]]:
    """Body and headers of a ``POST /v1/filings:batch`` (each record signed on its own), and the
    records' digests (what their receipts' ``record_sm3`` must be)."""
    canons = [canonical(r) for r in records]
    items = [{"record": r, "signature": b64(signer.sign(c))} for r, c in zip(records, canons, strict=True)]
    body = canonical({"records": items})
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        HEADER_PROTOCOL: PROTOCOL,
        HEADER_CERT: b64(signer.certificate),
    }
    if system_id:
        headers[HEADER_SYSTEM] = system_id
    return body, headers, [sm3_hex(c) for c in canons]


@lru_cache(maxsize=64)
def public_key(cert_der: bytes) -> Any:
    """The SM2 key of a certificate, parsed once: the key object also caches its Z value (GM/T 0009)."""
    from gmpki.gm.sm2 import SM2PublicKey

    return SM2PublicKey.from_certificate(cert_der)


def verify_signature(cert_der: bytes, signature: bytes, data: bytes) -> bool:
    """SM2-with-SM3 (default uid) check of ``signature`` over ``data`` by the key in ``cert_der``."""
    try:
        key = public_key(cert_der)
    except Exception as exc:  # a certificate we cannot read is a refused signature, whatever the parser says
        raise SignatureInvalid(f"unreadable certificate: {type(exc).__name__}") from exc
    return key.verify(signature, data)


@dataclass(frozen=True)
class Receipt:
    """A platform receipt (回执) as stored with the record: the signed body and its signature."""

    receipt_id: str
    record_id: str
    received_at: str
    record_sm3: str
    envelope: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: Any) -> Receipt:
        if not isinstance(envelope, dict) or not isinstance(envelope.get("receipt"), dict):
            raise ProtocolError("receipt envelope must be {receipt: {...}, signature: ...}")
        body = envelope["receipt"]
        if not isinstance(envelope.get("signature"), str):
            raise ProtocolError("receipt envelope has no signature")
        try:
            return cls(
                receipt_id=str(body["receipt_id"]),
                record_id=str(body["record_id"]),
                received_at=str(body["received_at"]),
                record_sm3=str(body["record_sm3"]),
                envelope={"receipt": body, "signature": envelope["signature"]},
            )
        except KeyError as exc:
            raise ProtocolError(f"receipt lacks {exc.args[0]}") from exc


def make_receipt(body: dict[str, Any], platform_signer: Any) -> dict[str, Any]:
    """The signed envelope of a receipt body (the platform's side)."""
    return {"receipt": body, "signature": b64(platform_signer.sign(canonical(body)))}


def check_receipt(
    envelope: Any, platform_cert: bytes, record: dict[str, Any] | None = None, record_sm3: str | None = None
) -> Receipt:
    """Parse a receipt envelope, verify the platform's signature and, given ``record``, that the
    receipt is for this very record (same id and same SM3 of the canonical record).

    Raises :class:`ProtocolError` with the reason.
    """
    receipt = Receipt.from_envelope(envelope)
    signature = unb64(envelope["signature"], "receipt signature")
    if not verify_signature(platform_cert, signature, canonical(envelope["receipt"])):
        raise SignatureInvalid(f"receipt {receipt.receipt_id}: platform signature does not verify")
    if record is not None:
        if receipt.record_id != record["record_id"]:
            raise ProtocolError(f"receipt {receipt.receipt_id} is for {receipt.record_id}, not {record['record_id']}")
        if receipt.record_sm3 != (record_sm3 or record_digest(record)):
            raise ProtocolError(f"receipt {receipt.receipt_id}: record digest differs from the record sent")
    return receipt
