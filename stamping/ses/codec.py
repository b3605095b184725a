"""Parse seal data (印章数据) and seal signatures (签章数据): GB/T 38540 V4, GM/T 0031 V1 and V5.

Untrusted input: any malformed structure raises :class:`SesFormatError` (never anything
else), input above :data:`MAX_INPUT` bytes is refused before parsing. Every signed
sub-structure keeps its ORIGINAL bytes (asn1crypto's ``dump()`` of a parsed, unmodified value
returns the bytes it was parsed from), so non-DER quirks in real files verify.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from asn1crypto import core

from gmpki.pki.der import tlv
from stamping.ses import asn1
from stamping.ses.model import ExtData, Seal, SesSignature

MAX_INPUT = 16 * 1024 * 1024  # a seal with a large picture is ~100 KB; 16 MB is generous
BEIJING = timezone(timedelta(hours=8), "CST")
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError,
                 UnicodeError, RecursionError)


class SesFormatError(ValueError):
    """The bytes are not a well-formed SESeal / SES_Signature of a supported version."""


def _check_input(der: bytes, what: str) -> bytes:
    if not isinstance(der, bytes | bytearray | memoryview):
        raise SesFormatError(f"{what}: expected bytes, got {type(der).__name__}")
    der = bytes(der)
    if not der:
        raise SesFormatError(f"{what}: empty input")
    if len(der) > MAX_INPUT:
        raise SesFormatError(f"{what}: {len(der)} bytes exceeds the limit of {MAX_INPUT} bytes")
    if der[0] != 0x30:
        raise SesFormatError(f"{what}: does not start with a DER SEQUENCE (first byte 0x{der[0]:02x})")
    return der


def _elements(der: bytes, what: str) -> asn1.Elements:
    try:
        elems = asn1.Elements.load(der, strict=True)
        len(elems)  # forces parsing of the element list
    except PARSE_ERRORS as exc:
        raise SesFormatError(f"{what}: malformed DER ({exc})") from None
    return elems


def _text(value: core.Asn1Value) -> str:
    return str(value.native)


def _bits(value: core.OctetBitString) -> bytes:
    return value.native or b""


def _ext_datas(value: core.Asn1Value | None) -> list[ExtData]:
    if value is None or isinstance(value, core.Void):
        return []
    return [ExtData(str(e["extn_id"].dotted), bool(e["critical"].native), e["extn_value"].native) for e in value]


def _picture(seal: Seal, pic: asn1.ESPictureInfo) -> None:
    seal.picture_type = _text(pic["type"])
    seal.picture_data = pic["data"].native
    seal.picture_width_mm = int(pic["width"].native)
    seal.picture_height_mm = int(pic["height"].native)


def _header_version(seal_der: bytes) -> tuple[int, int]:
    """(element count of the SESeal, header.version) — enough to pick the schema."""
    elems = _elements(seal_der, "SESeal")
    count = len(elems)
    if count not in (2, 4, 5):
        raise SesFormatError(f"SESeal: {count} elements; expected 2 (V1) or 4–5 (V4/V5)")
    info = asn1.Elements.load(elems[0].dump(), strict=True)
    header = asn1.SESHeader.load(info[0].dump(), strict=True)
    return count, int(header["version"].native)


def _parse_seal_v4(der: bytes, version: int) -> Seal:
    sesl = asn1.SESealV4.load(der, strict=True)
    info = sesl["eseal_info"]
    prop = info["property"]
    cert_list_type = int(prop["cert_list_type"].native)
    raw_list = prop["cert_list"].dump()
    certs: list[bytes] = []
    digests: list[tuple[str, bytes]] = []
    if cert_list_type == 1:
        certs = [c.native for c in asn1.CertList.load(raw_list, strict=True)]
    elif cert_list_type == 2:
        digests = [(_text(d["type"]), d["value"].native) for d in asn1.CertDigestList.load(raw_list, strict=True)]
    else:
        raise SesFormatError(f"SESeal: unknown certListType {cert_list_type} (expected 1 or 2)")
    ts = sesl["time_stamp"]
    seal = Seal(
        version=version, es_id=_text(info["es_id"]), vid=_text(info["header"]["vid"]),
        seal_type=int(prop["type"].native), name=_text(prop["name"]),
        cert_list_type=cert_list_type, cert_list=certs or [v for _, v in digests],
        create_date=prop["create_date"].native, valid_start=prop["valid_start"].native,
        valid_end=prop["valid_end"].native, picture_type="", picture_data=b"",
        picture_width_mm=0, picture_height_mm=0, maker_cert=sesl["cert"].native,
        sign_alg=sesl["sign_alg_id"].dotted, signed_value=_bits(sesl["signed_value"]),
        der=der, signed_bytes=info.dump(), cert_digests=digests,
        ext_datas=_ext_datas(info["ext_datas"]),
        time_stamp=None if isinstance(ts, core.Void) else ts.dump(),
        header_id=_text(info["header"]["id"]),
    )
    _picture(seal, info["picture"])
    return seal


def _parse_seal_v1(der: bytes) -> Seal:
    sesl = asn1.SESealV1.load(der, strict=True)
    info = sesl["eseal_info"]
    prop = info["property"]
    sign_info = sesl["sign_info"]
    # GM/T 0031-2014: the maker signs SEQUENCE { esealInfo, cert, signatureAlgorithm },
    # rebuilt here from the original element bytes.
    signed = tlv(0x30, info.dump() + sign_info["cert"].dump() + sign_info["signature_algorithm"].dump())
    seal = Seal(
        version=1, es_id=_text(info["es_id"]), vid=_text(info["header"]["vid"]),
        seal_type=int(prop["type"].native), name=_text(prop["name"]), cert_list_type=1,
        cert_list=[c.native for c in prop["cert_list"]], create_date=prop["create_date"].native,
        valid_start=prop["valid_start"].native, valid_end=prop["valid_end"].native,
        picture_type="", picture_data=b"", picture_width_mm=0, picture_height_mm=0,
        maker_cert=sign_info["cert"].native, sign_alg=sign_info["signature_algorithm"].dotted,
        signed_value=_bits(sign_info["sign_data"]), der=der, signed_bytes=signed,
        ext_datas=_ext_datas(info["ext_datas"]), header_id=_text(info["header"]["id"]),
    )
    _picture(seal, info["picture"])
    return seal


def _validate(seal: Seal) -> Seal:
    for name in ("create_date", "valid_start", "valid_end"):
        if not isinstance(getattr(seal, name), datetime):
            raise SesFormatError(f"SESeal: {name} is not a date")
    if seal.header_id != "ES":
        raise SesFormatError(f"SESeal: header ID is {seal.header_id!r}, expected 'ES'")
    return seal


def parse_seal(der: bytes) -> Seal:
    """Parse a DER SESeal (V1, V4 or V5); raises :class:`SesFormatError` when malformed.

    Each distinct SESeal is parsed once per process: a batch carries the same seal (with its
    picture) in every document, and its parse was a seventh of an OFD 验章. The memo is keyed by
    the exact DER bytes, so any other byte string is parsed afresh; every call gets its own copy."""
    return _copy(_parse_seal_once(_check_input(der, "SESeal")))


def _copy(seal: Seal) -> Seal:
    """A copy a caller may change without touching the memo (bytes, dates and ExtData are immutable)."""
    out = copy.copy(seal)
    out.cert_list, out.cert_digests, out.ext_datas = list(seal.cert_list), list(seal.cert_digests), list(seal.ext_datas)
    return out


@lru_cache(maxsize=64)
def _parse_seal_once(der: bytes) -> Seal:
    try:
        count, version = _header_version(der)
        if count == 2:
            if version not in (1, 2, 3):
                raise SesFormatError(f"SESeal: 2 elements (GM/T 0031-2014 layout) but header version {version}")
            return _validate(_parse_seal_v1(der))
        if version not in (4, 5):
            raise SesFormatError(f"SESeal: header version {version} not supported (expected 4 or 5)")
        if count == 5 and version == 4:
            raise SesFormatError("SESeal: a timestamp element is only defined from version 5")
        return _validate(_parse_seal_v4(der, version))
    except SesFormatError:
        raise
    except PARSE_ERRORS as exc:
        raise SesFormatError(f"SESeal: malformed ({exc})") from None


_TEXT_TIME_FORMATS = ("%Y%m%d%H%M%S%z", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M:%S",
                      "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S")


def parse_text_time(raw: bytes) -> datetime | str:
    """V1 timeInfo: a text time in a BIT STRING (or a DER GeneralizedTime in it). A time
    without a zone is read as Beijing time; text that is no known time is returned as is."""
    if raw[:1] == b"\x18":
        try:
            return core.GeneralizedTime.load(raw, strict=True).native
        except PARSE_ERRORS:
            pass
    text = raw.decode("utf-8", "replace").strip()
    cleaned = re.sub(r"\.\d+", "", text).replace("Z", "+0000")
    for fmt in _TEXT_TIME_FORMATS:
        try:
            value = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        return value if value.tzinfo else value.replace(tzinfo=BEIJING)
    return text


def _parse_signature_v4(der: bytes, elems: asn1.Elements) -> SesSignature:
    sig = asn1.SESSignatureV4.load(der, strict=True)
    tbs = sig["to_sign"]
    seal_der = tbs["eseal"].dump()
    seal = parse_seal(seal_der)
    version = int(tbs["version"].native)
    if version not in (4, 5):
        raise SesFormatError(f"SES_Signature: TBS_Sign version {version} not supported (expected 4 or 5)")
    ts = sig["time_stamp"]
    time_info = tbs["time_info"].native
    if not isinstance(time_info, datetime):
        raise SesFormatError("SES_Signature: timeInfo is not a date")
    return SesSignature(
        version=version, seal=seal, seal_der=seal_der, time_info=time_info,
        data_hash=_bits(tbs["data_hash"]), property_info=_text(tbs["property_info"]),
        signer_cert=sig["cert"].native, sign_alg=sig["signature_alg_id"].dotted,
        signature=_bits(sig["signature"]), der=der, signed_bytes=tbs.dump(),
        time_stamp=None if isinstance(ts, core.Void) else _bits(ts),
        ext_datas=_ext_datas(tbs["ext_datas"]),
    )


def _parse_signature_v1(der: bytes) -> SesSignature:
    sig = asn1.SESSignatureV1.load(der, strict=True)
    tbs = sig["to_sign"]
    seal_der = tbs["eseal"].dump()
    seal = parse_seal(seal_der)
    return SesSignature(
        version=int(tbs["version"].native), seal=seal, seal_der=seal_der,
        time_info=parse_text_time(_bits(tbs["time_info"])), data_hash=_bits(tbs["data_hash"]),
        property_info=_text(tbs["property_info"]), signer_cert=tbs["cert"].native,
        sign_alg=tbs["signature_algorithm"].dotted, signature=_bits(sig["signature"]),
        der=der, signed_bytes=tbs.dump(),
    )


def parse_signature(der: bytes) -> SesSignature:
    """Parse a DER SES_Signature (V1, V4 or V5); raises :class:`SesFormatError` when malformed."""
    der = _check_input(der, "SES_Signature")
    elems = _elements(der, "SES_Signature")
    try:
        if len(elems) == 2:
            return _parse_signature_v1(der)
        if len(elems) in (4, 5):
            return _parse_signature_v4(der, elems)
        raise SesFormatError(f"SES_Signature: {len(elems)} elements; expected 2 (V1) or 4–5 (V4/V5)")
    except SesFormatError:
        raise
    except PARSE_ERRORS as exc:
        raise SesFormatError(f"SES_Signature: malformed ({exc})") from None


def is_signature(der: bytes) -> bool:
    """True when the bytes look like an SES_Signature rather than an SESeal (TBS_Sign starts
    with an INTEGER; SES_SealInfo with the SEQUENCE of its header)."""
    try:
        elems = _elements(_check_input(der, "seal data"), "seal data")
        first = asn1.Elements.load(elems[0].dump(), strict=True)
        return first[0].dump()[:1] == b"\x02"
    except (SesFormatError, *PARSE_ERRORS):
        return False


__all__ = ["MAX_INPUT", "SesFormatError", "is_signature", "parse_seal", "parse_signature", "parse_text_time"]
