"""What a seal (.esl) or seal signature (.dat) holds, for ``sealflow seal inspect``.

``describe`` returns plain JSON-able data (no verification: that is ``sealflow verify``);
``format_text`` renders it for people.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509

from stamping.ses.codec import MAX_INPUT, PARSE_ERRORS, SesFormatError, is_signature, parse_seal, parse_signature
from stamping.ses.model import Seal

_SEAL_TYPES = {1: "unit seal (V1) / official", 2: "personal seal (V1)"}


def _time(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def describe_certificate(der: bytes) -> dict[str, Any]:
    """Subject, issuer, serial, validity and SM3 fingerprint of a DER certificate."""
    info: dict[str, Any] = {"size": len(der), "sm3": hashlib.new("sm3", der).hexdigest()}
    try:
        cert = x509.Certificate.load(der, strict=True)
        tbs = cert["tbs_certificate"]
        info.update({
            "subject": cert.subject.human_friendly,
            "issuer": cert.issuer.human_friendly,
            "serial": format(tbs["serial_number"].native, "x"),
            "not_before": tbs["validity"]["not_before"].native.isoformat(),
            "not_after": tbs["validity"]["not_after"].native.isoformat(),
        })
    except PARSE_ERRORS as exc:
        info["error"] = f"not a readable X.509 certificate ({exc})"
    return info


def _describe_seal(seal: Seal) -> dict[str, Any]:
    desc: dict[str, Any] = {
        "version": seal.version,
        "es_id": seal.es_id,
        "vid": seal.vid,
        "name": seal.name,
        "type": seal.seal_type,
        "create_date": _time(seal.create_date),
        "valid_start": _time(seal.valid_start),
        "valid_end": _time(seal.valid_end),
        "picture": {"type": seal.picture_type, "size": len(seal.picture_data),
                    "width_mm": seal.picture_width_mm, "height_mm": seal.picture_height_mm},
        "cert_list_type": seal.cert_list_type,
        "maker_certificate": describe_certificate(seal.maker_cert),
        "sign_alg": seal.sign_alg,
        "signed_value_size": len(seal.signed_value),
        "extensions": [{"oid": e.oid, "critical": e.critical, "value": e.value.hex()} for e in seal.ext_datas],
        "size": len(seal.der),
    }
    if seal.cert_list_type == 1:
        desc["signer_certificates"] = [describe_certificate(c) for c in seal.cert_list]
    else:
        desc["signer_certificate_digests"] = [{"type": t, "value": v.hex()} for t, v in seal.cert_digests]
    if seal.time_stamp is not None:
        desc["time_stamp_size"] = len(seal.time_stamp)
    return desc


def describe(der: bytes) -> dict[str, Any]:
    """What the bytes hold: ``{"kind": "seal", "seal": {...}}`` or ``{"kind": "signature", ...}``.
    Raises :class:`stamping.ses.codec.SesFormatError` for anything else."""
    if is_signature(der):
        sig = parse_signature(der)
        return {
            "kind": "signature",
            "version": sig.version,
            "time_info": _time(sig.time_info),
            "data_hash": sig.data_hash.hex(),
            "property_info": sig.property_info,
            "signer_certificate": describe_certificate(sig.signer_cert),
            "sign_alg": sig.sign_alg,
            "signature_size": len(sig.signature),
            "time_stamp_size": len(sig.time_stamp) if sig.time_stamp else 0,
            "size": len(sig.der),
            "seal": _describe_seal(sig.seal),
        }
    return {"kind": "seal", "seal": _describe_seal(parse_seal(der))}


def read_seal_file(path: str | Path) -> bytes:
    """The bytes of a .esl/.dat file, refused (SesFormatError naming the file) when too large."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_INPUT:
        raise SesFormatError(f"{path}: {size} bytes exceeds the limit of {MAX_INPUT} bytes")
    return path.read_bytes()


def picture_of(der: bytes) -> tuple[str, bytes]:
    """(picture type, picture bytes) of a seal, or of the seal inside a signature."""
    seal = parse_signature(der).seal if is_signature(der) else parse_seal(der)
    return seal.picture_type, seal.picture_data


def _cert_lines(label: str, cert: dict[str, Any], indent: str) -> list[str]:
    if "error" in cert:
        return [f"{indent}{label}: {cert['error']}"]
    return [
        f"{indent}{label}: {cert['subject']}",
        f"{indent}  issuer:   {cert['issuer']}",
        f"{indent}  serial:   {cert['serial']}",
        f"{indent}  valid:    {cert['not_before']} – {cert['not_after']}",
        f"{indent}  SM3:      {cert['sm3']}",
    ]


def _seal_lines(seal: dict[str, Any], indent: str = "") -> list[str]:
    pic = seal["picture"]
    kind = _SEAL_TYPES.get(seal["type"], "") if seal["version"] == 1 else ""
    lines = [
        f"{indent}Seal (SESeal) version {seal['version']}, {seal['size']} bytes",
        f"{indent}  code (esID): {seal['es_id']}",
        f"{indent}  name:        {seal['name']}",
        f"{indent}  type:        {seal['type']}{f' ({kind})' if kind else ''}",
        f"{indent}  vendor:      {seal['vid']}",
        f"{indent}  created:     {seal['create_date']}",
        f"{indent}  valid:       {seal['valid_start']} – {seal['valid_end']}",
        f"{indent}  picture:     {pic['type']}, {pic['size']} bytes, {pic['width_mm']} x {pic['height_mm']} mm",
        f"{indent}  algorithm:   {seal['sign_alg']} (maker signature {seal['signed_value_size']} bytes)",
    ]
    lines += _cert_lines("maker", seal["maker_certificate"], indent + "  ")
    for i, cert in enumerate(seal.get("signer_certificates", []), 1):
        lines += _cert_lines(f"signer certificate {i}", cert, indent + "  ")
    for d in seal.get("signer_certificate_digests", []):
        lines.append(f"{indent}  signer certificate digest: {d['type']} {d['value']}")
    for ext in seal["extensions"]:
        lines.append(f"{indent}  extension:   {ext['oid']}{' (critical)' if ext['critical'] else ''} = {ext['value']}")
    if "time_stamp_size" in seal:
        lines.append(f"{indent}  timestamp:   {seal['time_stamp_size']} bytes")
    return lines


def format_text(desc: dict[str, Any]) -> str:
    """Human-readable text of :func:`describe`'s result."""
    if desc["kind"] == "seal":
        return "\n".join(_seal_lines(desc["seal"]))
    lines = [
        f"Seal signature (SES_Signature) version {desc['version']}, {desc['size']} bytes",
        f"  signed at:   {desc['time_info']}",
        f"  dataHash:    {desc['data_hash']}",
        f"  property:    {desc['property_info']}",
        f"  algorithm:   {desc['sign_alg']} (signature {desc['signature_size']} bytes)",
    ]
    lines += _cert_lines("signer", desc["signer_certificate"], "  ")
    if desc["time_stamp_size"]:
        lines.append(f"  timestamp:   {desc['time_stamp_size']} bytes")
    lines += _seal_lines(desc["seal"], "  ")
    return "\n".join(lines)
