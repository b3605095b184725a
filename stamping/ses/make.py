"""Make seal data: a V4 SESeal (制作电子印章) and V4 SES_Signatures (签章).

The maker (制章者) signs DER(SES_SealInfo); the signer (签章者) signs DER(TBS_Sign). Signature
values are DER ``SEQUENCE {r, s}`` inside the BIT STRINGs, the algorithm is SM2-with-SM3.

``make_signature`` runs once per stamped document, so it splices bytes instead of building an
asn1crypto tree: the SESeal goes in verbatim (it must stay byte-identical anyway) and the few
other fields are encoded by hand. That costs a few microseconds besides the SM2 signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from asn1crypto import core
from asn1crypto.x509 import Time

from gmpki.pki.der import tlv
from stamping.ses import asn1
from stamping.ses.codec import SesFormatError, parse_seal

if TYPE_CHECKING:
    from gmpki.keys.signer import Signer
    from gmpki.pki.tsa_client import Timestamper

SM2_WITH_SM3 = "1.2.156.10197.1.501"
_SM2_WITH_SM3_DER = bytes.fromhex("06082a811ccf55018375")
_PICTURE_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPG", b"GIF8": "GIF"}


class SealBindingError(ValueError):
    """The signer's certificate is not one of the seal's certificates (certList)."""


@dataclass
class SealSpec:
    """What a new seal holds. ``signer_certs``: the certificates allowed to use the seal."""

    es_id: str  # 印章编码
    name: str  # 印章名称
    seal_type: int
    signer_certs: list[bytes]
    valid_start: datetime
    valid_end: datetime
    picture_png: bytes
    width_mm: float
    height_mm: float
    vid: str = "SealFlow"
    create_date: datetime | None = None


def _utc(value: datetime) -> datetime:
    """Whole seconds in UTC (GeneralizedTime without fractions, as every reader expects)."""
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def _picture_type(data: bytes) -> str:
    for magic, name in _PICTURE_MAGIC.items():
        if data.startswith(magic):
            return name
    if data.lstrip()[:5] in (b"<?xml", b"<svg ") or b"<svg" in data[:512]:
        return "SVG"
    raise ValueError("seal picture is not PNG, JPEG, GIF or SVG")


def _check_spec(spec: SealSpec) -> None:
    if not spec.es_id or not spec.es_id.isascii() or not spec.es_id.isprintable():
        raise ValueError(f"seal code (esID) must be printable ASCII, got {spec.es_id!r}")
    if not spec.name.strip():
        raise ValueError("seal name is empty")
    if not spec.signer_certs:
        raise ValueError("a seal needs at least one signer certificate (certList)")
    if _utc(spec.valid_end) <= _utc(spec.valid_start):
        raise ValueError(f"seal validity ends ({spec.valid_end}) before it starts ({spec.valid_start})")
    for label, mm in (("width", spec.width_mm), ("height", spec.height_mm)):
        if not 1 <= round(mm) <= 1000:
            raise ValueError(f"seal picture {label} {mm} mm is out of range")


def make_seal_info(spec: SealSpec, version: int = 4) -> asn1.SealInfoV4:
    """The SES_SealInfo of a new seal (what the maker signs)."""
    _check_spec(spec)
    created = _utc(spec.create_date or datetime.now(UTC))
    cert_list = asn1.CertList([core.OctetString(c) for c in spec.signer_certs])
    return asn1.SealInfoV4({
        "header": {"id": "ES", "version": version, "vid": spec.vid},
        "es_id": spec.es_id,
        "property": {
            "type": spec.seal_type,
            "name": spec.name,
            "cert_list_type": 1,
            "cert_list": core.Any.load(cert_list.dump()),
            "create_date": Time({"general_time": created}),
            "valid_start": Time({"general_time": _utc(spec.valid_start)}),
            "valid_end": Time({"general_time": _utc(spec.valid_end)}),
        },
        "picture": {
            "type": _picture_type(spec.picture_png),
            "data": spec.picture_png,
            "width": round(spec.width_mm),
            "height": round(spec.height_mm),
        },
    })


def make_seal(spec: SealSpec, maker: Signer) -> bytes:
    """DER of a new V4 SESeal signed by the seal maker (制章者)."""
    info = make_seal_info(spec)
    info_der = info.dump()
    seal = asn1.SESealV4({
        "eseal_info": asn1.SealInfoV4.load(info_der),
        "cert": maker.certificate,
        "sign_alg_id": SM2_WITH_SM3,
        "signed_value": maker.sign(info_der),
    })
    return seal.dump()


# --- SES_Signature, by hand -------------------------------------------------------------


@lru_cache(maxsize=64)
def _seal_binding(seal_der: bytes) -> tuple[int, frozenset[bytes], tuple[tuple[str, bytes], ...]]:
    """The seal's version and the signer certificates (or digests) it is bound to; parsed once per seal."""
    seal = parse_seal(seal_der)
    if seal.version not in (4, 5):
        raise SesFormatError(f"SESeal version {seal.version}: only V4/V5 seals can be used for new signatures")
    return seal.version, frozenset(seal.cert_list if seal.cert_list_type == 1 else ()), tuple(seal.cert_digests)


def check_binding(seal_der: bytes, cert: bytes) -> int:
    """The seal's version, once the certificate is known to be one the seal is bound to."""
    version, certs, digests = _seal_binding(seal_der)
    if cert in certs:
        return version
    for name, value in digests:
        algo = name.strip().lower().replace("-", "")
        try:
            if hashlib.new(algo, cert).digest() == value:
                return version
        except ValueError:
            continue
    raise SealBindingError("the signer's certificate is not in the seal's certList: this seal was not made for it")


def build_tbs_sign(seal_der: bytes, data_hash: bytes, property_info: str, signed_at: datetime,
                   version: int = 4) -> bytes:
    """DER TBS_Sign (V4/V5) with the SESeal spliced in verbatim."""
    if not property_info.isascii():
        raise ValueError("propertyInfo must be ASCII (IA5String)")
    when = _utc(signed_at).strftime("%Y%m%d%H%M%SZ").encode()
    return tlv(0x30, b"".join((
        tlv(0x02, bytes((version,))),
        seal_der,
        tlv(0x18, when),
        tlv(0x03, b"\x00" + data_hash),
        tlv(0x16, property_info.encode("ascii")),
    )))


def assemble_signature(tbs: bytes, cert: bytes, signature: bytes, time_stamp: bytes | None = None) -> bytes:
    """DER SES_Signature from a TBS_Sign, the signer certificate and the signature value, and
    optionally the RFC 3161 token over the signature value: ``timeStamp [0] EXPLICIT BIT STRING``."""
    stamp = tlv(0xA0, tlv(0x03, b"\x00" + time_stamp)) if time_stamp else b""
    return tlv(0x30, b"".join((tbs, tlv(0x04, cert), _SM2_WITH_SM3_DER, tlv(0x03, b"\x00" + signature), stamp)))


def make_signature(seal_der: bytes, data_hash: bytes, property_info: str, signer: Signer,
                   signed_at: datetime | None = None, timestamper: Timestamper | None = None) -> bytes:
    """DER of a V4 SES_Signature: ``signer`` signs DER(TBS_Sign) over ``data_hash``; with a
    ``timestamper`` (a TSA), its token over the signature value goes in the timeStamp field.

    Raises :class:`SesFormatError` for a malformed seal and :class:`SealBindingError` when the
    signer's certificate is not one the seal was made for; the timestamper's errors pass through.
    """
    seal_der, cert = bytes(seal_der), signer.certificate
    version = check_binding(seal_der, cert)
    tbs = build_tbs_sign(seal_der, data_hash, property_info, signed_at or datetime.now(UTC), version)
    signature = signer.sign(tbs)
    token = timestamper.timestamp(signature) if timestamper is not None else None
    return assemble_signature(tbs, cert, signature, token)
