"""Type=Sign OFD signatures (数字签名, GB/T 33190 §18, GM/T 0099-2020 §7.2.2 b): SignedValue.dat
holds a GB/T 35275 SignedData with SM2, and no seal.

Two shapes are met in the wild, both read here (ofdrw writes both and its validator accepts both):
- the bare ``SignedData`` whose content (OID 1.2.156.10197.6.1.4.2.1) is SM3(Signature.xml), and the
  SignerInfo's SM2 signature (SM3withSM2, default user id) is over those 32 content bytes;
- a ``ContentInfo`` (signedData OID, GB/T 35275 or PKCS #7) around it, possibly with PKCS #9 signed
  attributes: then messageDigest must be SM3(Signature.xml) and the signature is over DER(SET OF attrs).

Checks (kinds as :mod:`stamping.verdict.result`): ``signed_value`` (it parses), ``data_hash`` (the
signed digest is SM3 of this Signature.xml: the References' digests are bound through it),
``signer_signature``, ``signer_cert_validity`` at the signing time, ``signer_chain``. There is no
seal, so no maker signature, seal validity or registry status: the result names the signer only.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, core

from gmpki.gm.sm3 import sm3
from gmpki.pki.der import read_tlv, signer_certificate
from gmpki.pki.trust import TrustStore
from stamping.verdict.result import SignatureResult
from stamping.verdict.seal_checks import check_cert_validity, check_chain, check_signature, common_name

SIGNED_DATA_OIDS = {"1.2.156.10197.6.1.4.2.2", "1.2.840.113549.1.7.2"}
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
SIGNING_TIME = "1.2.840.113549.1.9.5"
# SM2 signature OIDs as GB/T 35275 SignerInfos write them: sm2Sign, SM2-with-SM3.
_SM2_ALGS = {"1.2.156.10197.1.301.1", "1.2.156.10197.1.501"}


class SignedValueError(ValueError):
    """SignedValue.dat is not a readable GB/T 35275 SignedData."""


@dataclass
class DigitalSignedValue:
    content: bytes | None  # the attached content (SM3 of Signature.xml in ofdrw's shape)
    signed_attrs_der: bytes | None  # DER SET OF Attribute, when signed attributes are present
    message_digest: bytes | None
    signing_time: datetime | None
    signer_cert: bytes
    signature: bytes
    signature_algorithm: str


def _unwrap(blob: bytes) -> bytes:
    """The SignedData SEQUENCE, with or without its ContentInfo (contentType, [0] EXPLICIT content)."""
    tag, start, end = read_tlv(blob, 0, SignedValueError)
    if tag != 0x30 or end != len(blob):
        raise SignedValueError("not one DER SEQUENCE")
    first, _, oend = read_tlv(blob, start, SignedValueError)
    if first != 0x06:
        return blob  # a bare SignedData starts with its version INTEGER
    oid = core.ObjectIdentifier.load(blob[start:oend]).dotted
    if oid not in SIGNED_DATA_OIDS:
        raise SignedValueError(f"ContentInfo of type {oid}, not signedData")
    wrapper, wstart, wend = read_tlv(blob, oend, SignedValueError)
    if wrapper != 0xA0:
        raise SignedValueError("ContentInfo without [0] content")
    return blob[wstart:wend]


def parse_digital_signed_value(blob: bytes) -> DigitalSignedValue:
    try:
        sd = cms.SignedData.load(_unwrap(blob), strict=True)
        infos = sd["signer_infos"]
        if len(infos) != 1:
            raise SignedValueError(f"{len(infos)} SignerInfos (expected exactly 1)")
        si = infos[0]
        certs = [c.chosen.dump() for c in sd["certificates"]] if len(sd["certificates"]) else []
        signer = _signer_cert(si, certs)
        content = sd["encap_content_info"]["content"].native  # bytes, or None when detached
        attrs = si["signed_attrs"]
        values = {a["type"].dotted: a["values"] for a in attrs} if len(attrs) else {}
        md, st = values.get(MESSAGE_DIGEST), values.get(SIGNING_TIME)
        return DigitalSignedValue(
            content=content,
            signed_attrs_der=(b"\x31" + attrs.dump()[1:]) if len(attrs) else None,
            message_digest=core.OctetString.load(md[0].dump()).native if md else None,
            signing_time=st[0].native if st else None,
            signer_cert=signer, signature=si["signature"].native,
            signature_algorithm=si["signature_algorithm"]["algorithm"].dotted)
    except SignedValueError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise SignedValueError(f"malformed GB/T 35275 SignedData: {exc}") from None


def _signer_cert(si: cms.SignerInfo, certs: list[bytes]) -> bytes:
    cert = signer_certificate(si["sid"].dump(), tuple(certs))
    if cert is None:
        raise SignedValueError("the signer's certificate is not in the SignedData")
    return cert


def _signed_digest_matches(value: DigitalSignedValue, expected: bytes) -> tuple[bool, str]:
    if value.signed_attrs_der is not None:
        if value.message_digest is None:
            return False, "signed attributes without messageDigest"
        return value.message_digest == expected, "messageDigest attribute"
    if value.content is None:
        return False, "no content and no signed attributes: nothing binds the signature to Signature.xml"
    if value.content == expected:
        return True, "signed content"
    try:  # one producer writes the digest base64-encoded (ofdrw accepts it too)
        return base64.b64decode(value.content, validate=True) == expected, "signed content (base64)"
    except (binascii.Error, ValueError):
        return False, "signed content"


def check_digital_signature(result: SignatureResult, blob: bytes, signature_xml: bytes,
                            claimed_at: datetime | None, trust: TrustStore | None) -> None:
    """The checks of one Type=Sign signature; ``claimed_at`` is Signature.xml's SignatureDateTime."""
    try:
        value = parse_digital_signed_value(blob)
    except SignedValueError as exc:
        result.add("signed_value", False, f"not a GB/T 35275 SignedData: {exc}")
        return
    result.add("signed_value", True, "GB/T 35275 SignedData (digital signature, no seal)")
    result.signer = common_name(value.signer_cert)
    ok, what = _signed_digest_matches(value, sm3(signature_xml))
    result.add("data_hash", ok, f"the {what} " + ("is" if ok else "is not") + " the SM3 digest of Signature.xml")
    alg = "1.2.156.10197.1.501" if value.signature_algorithm in _SM2_ALGS else value.signature_algorithm
    data = value.signed_attrs_der if value.signed_attrs_der is not None else (value.content or b"")
    check_signature(result, "signer_signature", "signer", value.signer_cert, alg, value.signature, data,
                     "the signed attributes" if value.signed_attrs_der is not None else "the SM3 digest")
    signed_at = value.signing_time or claimed_at
    if value.signing_time:
        result.signed_at = value.signing_time.isoformat()
    check_cert_validity(result, value.signer_cert, signed_at)
    check_chain(result, "signer_chain", "signer", value.signer_cert, signed_at, trust)
