"""CMS SignedData with SM2/SM3 for PDF signatures (/SubFilter /adbe.pkcs7.detached).

Built with asn1crypto because OpenSSL's CMS layer cannot sign SM2 (and verifies with an empty
user id). Two container flavours, told apart only by the content-type OIDs:
``pkcs7`` (1.2.840.113549.1.7.x, what most Chinese PDF readers accept) and ``gbt35275``
(GB/T 35275: 1.2.156.10197.6.1.4.2.x).

Signed attributes: contentType, signingTime, messageDigest (SM3 of the ByteRange) and the
seal (DER SESeal, GB/T 38540) under ``SESEAL_ATTR_OID`` so a verifier can check the seal itself
(制章人 signature, certificate list, validity) — a private OID under the UUID arc 2.25.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import cms, core, x509

from gmpki.gm.oids import GBT35275_DATA, GBT35275_SIGNED_DATA, SM2_WITH_SM3, SM3
from gmpki.pki.der import attribute, oid_der, read_tlv, signer_certificate, tlv

__all__ = ["CONTAINERS", "SESEAL_ATTR_OID", "SIGNATURE_TIME_STAMP_ATTR", "CmsError", "ParsedCms",
           "build_signed_data", "parse_signed_data", "signed_attrs_der"]

SIGNATURE_TIME_STAMP_ATTR = "1.2.840.113549.1.9.16.2.14"  # id-aa-signatureTimeStampToken
# SealFlow's private attribute: the SESeal (DER) the signer stamped with. UUID-derived OID (X.667).
SESEAL_ATTR_OID = "2.25.70779784612582400809781131925234584854"
PKCS7_DATA = "1.2.840.113549.1.7.1"
PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2"
CONTAINERS = {"pkcs7": (PKCS7_SIGNED_DATA, PKCS7_DATA), "gbt35275": (GBT35275_SIGNED_DATA, GBT35275_DATA)}
MAX_SM2_SIG_DER = 72


class CmsError(ValueError):
    """A CMS blob that is not the SignedData we expect."""


def _utc(dt: datetime) -> datetime:
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def _signing_time_der(at: datetime) -> bytes:
    at = _utc(at)
    if 1950 <= at.year < 2050:
        return tlv(0x17, at.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, at.strftime("%Y%m%d%H%M%SZ").encode())


def build_signed_attrs(digest: bytes, signed_at: datetime, seal_der: bytes | None,
                       container: str = "pkcs7") -> bytes:
    """DER SET OF Attribute (contentType, signingTime, messageDigest, seal) — what SM2 signs.

    Written by hand (DER: SET OF sorted by encoding): asn1crypto takes ~1 ms for this and the
    pipeline signs thousands of documents per batch."""
    _, data_oid = CONTAINERS[container]
    attrs = [
        attribute("1.2.840.113549.1.9.3", oid_der(data_oid)),
        attribute("1.2.840.113549.1.9.5", _signing_time_der(signed_at)),
        attribute("1.2.840.113549.1.9.4", tlv(0x04, digest)),
    ]
    if seal_der is not None:
        attrs.append(attribute(SESEAL_ATTR_OID, seal_der))
    return tlv(0x31, b"".join(sorted(attrs)))


def signed_attrs_der(attrs: cms.CMSAttributes) -> bytes:
    """DER of SET OF Attribute from a parsed SignerInfo's [0] IMPLICIT signedAttrs (RFC 5652 §5.4)."""
    der = attrs.dump()
    return b"\x31" + der[1:] if der[:1] == b"\xa0" else der


@lru_cache(maxsize=64)
def _signer_parts(certificate: bytes, container: str, extra_certs: tuple[bytes, ...]) -> tuple[bytes, bytes, bytes]:
    """(SignedData fields before signerInfos, SignerInfo head up to signedAttrs, algorithm + tag for the
    signature) — the constant parts of our CMS for one certificate."""
    data_oid = CONTAINERS[container][1]
    cert = x509.Certificate.load(certificate)
    ias = cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}).dump()
    sm3_alg = tlv(0x30, oid_der(SM3) + b"\x05\x00")
    sd_head = (tlv(0x02, b"\x01") + tlv(0x31, sm3_alg) + tlv(0x30, oid_der(data_oid))
               + tlv(0xA0, certificate + b"".join(extra_certs)))
    si_head = tlv(0x02, b"\x01") + ias + sm3_alg
    sig_alg = tlv(0x30, oid_der(SM2_WITH_SM3))
    return sd_head, si_head, sig_alg


def build_signed_data(signed_attrs: bytes, signature: bytes, certificate: bytes,
                      container: str = "pkcs7", extra_certs: tuple[bytes, ...] = (),
                      time_stamp_token: bytes | None = None) -> bytes:
    """DER ContentInfo{SignedData} (detached) from DER signed attributes and their SM2 signature;
    ``time_stamp_token``: an RFC 3161 token over the signature value, put in the unsigned
    attribute id-aa-signatureTimeStampToken (RFC 3161 Appendix A)."""
    if signed_attrs[:1] != b"\x31":
        raise ValueError("signed_attrs must be DER SET OF Attribute")
    sd_head, si_head, sig_alg = _signer_parts(certificate, container, tuple(extra_certs))
    unsigned = (tlv(0xA1, attribute(SIGNATURE_TIME_STAMP_ATTR, time_stamp_token))
                if time_stamp_token else b"")
    signer_info = tlv(0x30, si_head + b"\xa0" + signed_attrs[1:] + sig_alg + tlv(0x04, signature) + unsigned)
    signed_data = tlv(0x30, sd_head + tlv(0x31, signer_info))
    return tlv(0x30, oid_der(CONTAINERS[container][0]) + tlv(0xA0, signed_data))


@dataclass
class ParsedCms:
    container: str  # "pkcs7" | "gbt35275" | other content-type OID
    signer_cert: bytes
    certificates: list[bytes]
    digest_algorithm: str
    signature_algorithm: str
    signed_attrs_der: bytes
    signature: bytes
    message_digest: bytes | None
    content_type: str | None
    signing_time: datetime | None
    seal_der: bytes | None
    time_stamp_token: bytes | None = None  # unsigned id-aa-signatureTimeStampToken, as found


def parse_signed_data(blob: bytes) -> ParsedCms:
    """Parse the /Contents CMS (trailing zero padding allowed). Raises CmsError.

    A SignedData laid out as DER in the usual way (what SealFlow and most producers write) is read by
    :func:`_parse_plain`, a walk over the TLVs that takes a seventh of asn1crypto's time; anything it
    does not expect (another tag, a high tag number, a time format, a CertificateChoices other than a
    certificate…) is left to asn1crypto, which then decides as before. Both give the same ParsedCms
    for what the walk accepts (tests/pdf/test_cms.py compares them on mutated blobs)."""
    try:
        tag, start, _ = read_tlv(blob, 0, CmsError)
        if tag != 0x30:
            raise CmsError("not a DER SEQUENCE")
        otag, _, oend = read_tlv(blob, start, CmsError)
        if otag != 0x06:
            raise CmsError("ContentInfo without a content type")
        ctype = core.ObjectIdentifier.load(blob[start:oend]).dotted
        container = next((k for k, (s, _) in CONTAINERS.items() if s == ctype), ctype)
        etag, estart, eend = read_tlv(blob, oend, CmsError)
        if etag != 0xA0:
            raise CmsError("ContentInfo without [0] content")
        signed_data = blob[estart:eend]
        return _parse_plain(signed_data, container) or _parse_asn1crypto(signed_data, container)
    except CmsError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise CmsError(f"malformed CMS: {exc}") from None


def _parse_asn1crypto(signed_data: bytes, container: str) -> ParsedCms:
    sd = cms.SignedData.load(signed_data)
    infos = sd["signer_infos"]
    if len(infos) != 1:
        raise CmsError(f"{len(infos)} SignerInfos (expected 1)")
    si = infos[0]
    certs = [c.chosen.dump() for c in sd["certificates"]] if len(sd["certificates"]) else []
    signer_cert = _find_signer(si["sid"].dump(), tuple(certs))
    attrs = si["signed_attrs"]
    if not len(attrs):
        raise CmsError("no signed attributes")
    values = {a["type"].dotted: a["values"] for a in attrs}
    md = values.get(_MESSAGE_DIGEST)
    ct = values.get(_CONTENT_TYPE)
    st = values.get(_SIGNING_TIME)
    seal = values.get(SESEAL_ATTR_OID)
    unsigned = si["unsigned_attrs"]
    tokens = [a["values"] for a in unsigned if a["type"].dotted == SIGNATURE_TIME_STAMP_ATTR] \
        if not isinstance(unsigned, core.Void) else []
    return ParsedCms(
        container=container, signer_cert=signer_cert, certificates=certs,
        digest_algorithm=si["digest_algorithm"]["algorithm"].dotted,
        signature_algorithm=si["signature_algorithm"]["algorithm"].dotted,
        signed_attrs_der=signed_attrs_der(attrs), signature=si["signature"].native,
        message_digest=md[0].native if md else None,
        content_type=ct[0].dotted if ct else None,
        signing_time=st[0].native if st else None,
        seal_der=seal[0].dump() if seal else None,
        time_stamp_token=tokens[0][0].dump() if tokens and len(tokens[0]) else None,
    )


# --- the plain walk ---------------------------------------------------------------------------

_CONTENT_TYPE, _MESSAGE_DIGEST, _SIGNING_TIME = "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5"


class _Unexpected(Exception):
    """The walk met something it does not read: asn1crypto decides."""


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, TLV start, contents start, contents end) of each element in data[start:end], which they fill."""
    out, pos = [], start
    while pos < end:
        tag = data[pos]
        if tag & 0x1F == 0x1F:  # a high tag number: not read here
            raise _Unexpected
        tag, cstart, cend = read_tlv(data, pos, _Unexpected)
        if cend > end:
            raise _Unexpected
        out.append((tag, pos, cstart, cend))
        pos = cend
    return out


def _expect(items: list[tuple[int, int, int, int]], tags: tuple[int, ...]) -> None:
    if tuple(t for t, *_ in items) != tags:
        raise _Unexpected


def _dotted(data: bytes, start: int, end: int) -> str:
    """An OBJECT IDENTIFIER's contents as asn1crypto writes it (first arc 0, 1 or 2)."""
    if start >= end or data[end - 1] & 0x80:
        raise _Unexpected
    parts: list[int] = []
    value = 0
    for byte in data[start:end]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(v) for v in head + parts[1:])


def _algorithm(data: bytes, item: tuple[int, int, int, int]) -> str:
    inner = _elements(data, item[2], item[3])
    if not inner or inner[0][0] != 0x06:
        raise _Unexpected
    return _dotted(data, inner[0][2], inner[0][3])


def _time(data: bytes, item: tuple[int, int, int, int]) -> datetime:
    """UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ (asn1crypto's reading: UTC, YY < 50 → 20YY)."""
    tag, _, start, end = item
    text = data[start:end]
    digits = {0x17: 12, 0x18: 14}.get(tag)
    if digits is None or len(text) != digits + 1 or text[-1:] != b"Z" or not text[:digits].isdigit():
        raise _Unexpected
    if tag == 0x17:
        yy, rest = int(text[:2]), text[2:digits]
        year = 2000 + yy if yy < 50 else 1900 + yy
    else:
        year, rest = int(text[:4]), text[4:digits]
    if year < 1:
        raise _Unexpected
    try:
        return datetime(year, int(rest[0:2]), int(rest[2:4]), int(rest[4:6]), int(rest[6:8]), int(rest[8:10]),
                        tzinfo=UTC)
    except ValueError:
        raise _Unexpected from None


def _attributes(data: bytes, start: int, end: int) -> dict[str, list[tuple[int, int, int, int]]]:
    """type → the values of each Attribute (SEQUENCE {OID, SET OF value}); a later one of a type wins."""
    out = {}
    for tag, _, cstart, cend in _elements(data, start, end):
        if tag != 0x30:
            raise _Unexpected
        parts = _elements(data, cstart, cend)
        _expect(parts, (0x06, 0x31))
        out[_dotted(data, parts[0][2], parts[0][3])] = _elements(data, parts[1][2], parts[1][3])
    return out


def _first(values: list[tuple[int, int, int, int]] | None, tag: int | None = None):
    if not values:
        return None
    if tag is not None and values[0][0] != tag:
        raise _Unexpected
    return values[0]


def _parse_plain(sd: bytes, container: str) -> ParsedCms | None:
    """The SignedData as a DER walk, or None when it is laid out in a way the walk does not read."""
    try:
        tag, start, end = read_tlv(sd, 0, _Unexpected)
        if tag != 0x30:
            raise _Unexpected
        fields = _elements(sd, start, end)
        tags = tuple(t for t, *_ in fields)
        if tags not in ((0x02, 0x31, 0x30, 0x31), (0x02, 0x31, 0x30, 0xA0, 0x31)):
            raise _Unexpected
        certs_field = fields[3] if tags[3] == 0xA0 else None
        certs = []
        if certs_field is not None:
            for ctag, ts, _, ce in _elements(sd, certs_field[2], certs_field[3]):
                if ctag != 0x30:
                    raise _Unexpected
                certs.append(sd[ts:ce])
        infos = _elements(sd, fields[-1][2], fields[-1][3])
        if len(infos) != 1 or infos[0][0] != 0x30:
            raise _Unexpected
        si = _elements(sd, infos[0][2], infos[0][3])
        si_tags = tuple(t for t, *_ in si)
        if si_tags not in ((0x02, 0x30, 0x30, 0xA0, 0x30, 0x04), (0x02, 0x80, 0x30, 0xA0, 0x30, 0x04),
                           (0x02, 0x30, 0x30, 0xA0, 0x30, 0x04, 0xA1), (0x02, 0x80, 0x30, 0xA0, 0x30, 0x04, 0xA1)):
            raise _Unexpected
        sid, attrs_item = si[1], si[3]
        attrs = _attributes(sd, attrs_item[2], attrs_item[3])
        if not attrs:
            raise _Unexpected
        unsigned = _attributes(sd, si[6][2], si[6][3]) if len(si) == 7 else {}
        md, ct, st = _first(attrs.get(_MESSAGE_DIGEST), 0x04), _first(attrs.get(_CONTENT_TYPE), 0x06), \
            _first(attrs.get(_SIGNING_TIME))
        seal, token = _first(attrs.get(SESEAL_ATTR_OID), 0x30), _first(unsigned.get(SIGNATURE_TIME_STAMP_ATTR), 0x30)
        return ParsedCms(
            container=container, signer_cert=_find_signer(sd[sid[1]:sid[3]], tuple(certs)), certificates=certs,
            digest_algorithm=_algorithm(sd, si[2]), signature_algorithm=_algorithm(sd, si[4]),
            signed_attrs_der=b"\x31" + sd[attrs_item[1] + 1:attrs_item[3]], signature=sd[si[5][2]:si[5][3]],
            message_digest=sd[md[2]:md[3]] if md else None,
            content_type=_dotted(sd, ct[2], ct[3]) if ct else None,
            signing_time=_time(sd, st) if st else None,
            seal_der=sd[seal[1]:seal[3]] if seal else None,
            time_stamp_token=sd[token[1]:token[3]] if token else None,
        )
    except _Unexpected:
        return None


def _find_signer(sid_der: bytes, certs: tuple[bytes, ...]) -> bytes:
    """The certificate the SignerIdentifier names (the look-up is cached: a batch has few distinct signers)."""
    cert = signer_certificate(sid_der, certs)
    if cert is None:
        raise CmsError("the signer's certificate is not in the CMS")
    return cert
