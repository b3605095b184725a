from datetime import UTC, datetime

import pymupdf
import pytest
from asn1crypto import cms, x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmpki.gm.sm3 import sm3
from gmpki.pki.der import attribute, oid_der, read_tlv, tlv
from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.cms import (
    SESEAL_ATTR_OID,
    CmsError,
    _parse_asn1crypto,
    _parse_plain,
    build_signed_attrs,
    build_signed_data,
    parse_signed_data,
)
from stamping.placement import Placement

AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_signed_attrs_are_der_set_of(kit):
    der = build_signed_attrs(b"\x11" * 32, AT, kit.seal_der, "pkcs7")
    parsed = cms.CMSAttributes.load(der)
    assert parsed.dump(force=True) == der  # asn1crypto re-encodes (and sorts) to the same DER
    types = [a["type"].dotted for a in parsed]
    assert set(types) == {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.5", "1.2.840.113549.1.9.4", SESEAL_ATTR_OID}
    late = build_signed_attrs(b"\x11" * 32, datetime(2051, 1, 1, tzinfo=UTC), None)
    assert b"\x18\x0f20510101000000Z" in late  # GeneralizedTime from 2050 on


def test_round_trip_with_padding(kit):
    attrs = build_signed_attrs(b"\x22" * 32, AT, kit.seal_der, "gbt35275")
    sig = kit.signer.sign(attrs)
    blob = build_signed_data(attrs, sig, kit.signer.certificate, "gbt35275") + b"\0" * 100
    info = parse_signed_data(blob)
    assert (info.container, info.message_digest, info.signing_time) == ("gbt35275", b"\x22" * 32, AT)
    assert info.signed_attrs_der == attrs and info.signature == sig and info.seal_der == kit.seal_der
    # Cross-check: asn1crypto reads our hand-written DER as a regular PKCS#7 SignedData.
    p7 = build_signed_data(attrs, sig, kit.signer.certificate, "pkcs7")
    ci = cms.ContentInfo.load(p7)
    assert ci["content_type"].native == "signed_data"
    assert ci["content"]["signer_infos"][0]["signature"].native == sig


@pytest.mark.parametrize("blob", [b"", b"\x30\x03\x02\x01\x01", b"\x04\x02ab", b"\x30\x82\xff\xff" + b"\0" * 10])
def test_garbage_is_cms_error(blob):
    with pytest.raises(CmsError):
        parse_signed_data(blob)


def test_plain_signature_without_seal_is_intact_but_not_valid(kit, sample_pdf):
    """A PDF signature with no seal attribute (a plain 数字签名) is checked but not accepted as a seal."""
    out = bytearray(stamp_pdf(sample_pdf, kit.seal_der, kit.signer, Placement.parse("anchor:（盖章）")))
    doc = pymupdf.open(stream=bytes(out), filetype="pdf")
    sig = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") == ("name", "/Sig"))
    a, b = [int(v) for v in doc.xref_get_key(sig, "ByteRange")[1].strip("[]").split()][1:3]
    attrs = build_signed_attrs(sm3(bytes(out[:a] + out[b:])), datetime.now(UTC), None)
    blob = build_signed_data(attrs, kit.signer.sign(attrs), kit.signer.certificate).hex().upper().encode()
    out[a + 1:b - 1] = blob.ljust(b - a - 2, b"0")
    result = verify_pdf(bytes(out), "plain.pdf", kit.trust)
    sig_result = result.signatures[0]
    assert result.intact and not result.valid
    checks = {c.name: c for c in sig_result.checks}
    assert not checks["seal"].ok and checks["signer_chain"].ok and checks["signer_signature"].ok


# --- the plain DER walk against asn1crypto -------------------------------------------------------

def _signed_data(blob: bytes) -> bytes:
    """The SignedData inside ContentInfo's [0] EXPLICIT, as parse_signed_data hands it on."""
    _, start, _ = read_tlv(blob, 0)
    _, _, oid_end = read_tlv(blob, start)
    _, inner, end = read_tlv(blob, oid_end)
    return blob[inner:end]


def _headers(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[int]:
    """Offsets of the tag and length bytes of every element, constructed ones walked into (depth ≤ 6)."""
    out, pos, end = [], start, len(data) if end is None else end
    while pos < end and depth <= 6:
        try:
            tag, cstart, cend = read_tlv(data, pos)
        except ValueError:
            break
        out.extend(range(pos, cstart))
        if tag & 0x20:
            out.extend(_headers(data, cstart, cend, depth + 1))
        pos = cend
    return out


def _outcome(parse, sd: bytes, container: str):
    try:
        return parse(sd, container)
    except (CmsError, ValueError, TypeError, KeyError, IndexError, OverflowError):
        return "refused"


@pytest.fixture(scope="module")
def cms_blobs(kit) -> list[tuple[bytes, str]]:
    token = kit.signer.certificate  # any DER element stands in for a time-stamp token here
    out = []
    for container, at, seal, stamp in [("pkcs7", AT, kit.seal_der, None), ("gbt35275", AT, kit.seal_der, token),
                                       ("pkcs7", datetime(2051, 2, 3, 4, 5, 6, tzinfo=UTC), None, token),
                                       ("pkcs7", datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), None, None)]:
        attrs = build_signed_attrs(b"\x33" * 32, at, seal, container)
        blob = build_signed_data(attrs, kit.signer.sign(attrs), kit.signer.certificate, container,
                                 extra_certs=(kit.signer.certificate,), time_stamp_token=stamp)
        out.append((_signed_data(blob), container))
    return out


def test_the_plain_walk_reads_our_cms_as_asn1crypto_does(cms_blobs):
    for sd, container in cms_blobs:
        plain = _parse_plain(sd, container)
        assert plain is not None  # our own CMS never needs asn1crypto
        assert plain == _parse_asn1crypto(sd, container)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_plain_walk_reads_a_changed_cms_as_asn1crypto_does_or_leaves_it(cms_blobs, data):
    """Bytes changed in the headers (tags, lengths) or anywhere: whatever the walk accepts, asn1crypto reads
    the same way; what it does not read, asn1crypto decides alone."""
    sd, container = data.draw(st.sampled_from(cms_blobs))
    changed = bytearray(sd)
    headers = _headers(sd)
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.sampled_from(headers) if data.draw(st.booleans()) else st.integers(0, len(sd) - 1))
        changed[pos] = data.draw(st.integers(0, 255))
    plain = _outcome(_parse_plain, bytes(changed), container)
    if plain is not None:
        assert plain == _outcome(_parse_asn1crypto, bytes(changed), container)


def _crafted(kit, attributes: list[bytes], *, signer_infos: int = 1, sid: bytes | None = None,
             certificates: bytes | None = None, unsigned: bytes = b"") -> bytes:
    """A SignedData written element by element, to hold what our writer never writes."""
    cert = x509.Certificate.load(kit.signer.certificate)
    ias = cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}).dump()
    sm3_alg = tlv(0x30, oid_der("1.2.156.10197.1.401") + b"\x05\x00")
    info = tlv(0x30, tlv(0x02, b"\x01") + (sid or ias) + sm3_alg + tlv(0xA0, b"".join(attributes))
               + tlv(0x30, oid_der("1.2.156.10197.1.501")) + tlv(0x04, b"\x30\x06\x02\x01\x01\x02\x01\x01") + unsigned)
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x31, sm3_alg) + tlv(0x30, oid_der("1.2.840.113549.1.7.1"))
               + tlv(0xA0, kit.signer.certificate if certificates is None else certificates)
               + tlv(0x31, info * signer_infos))


MD, CT, ST = "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.5"


def test_the_plain_walk_agrees_with_asn1crypto_on_what_our_writer_never_writes(kit):
    digest, data_type = attribute(MD, tlv(0x04, b"\x44" * 32)), attribute(CT, oid_der("1.2.840.113549.1.7.1"))
    ski = x509.Certificate.load(kit.signer.certificate).key_identifier

    def at(value: bytes, tag: int = 0x17) -> bytes:
        return attribute(ST, tlv(tag, value))

    read_alike = {  # the walk reads these, and must read them as asn1crypto does
        "a later attribute of a type wins": _crafted(kit, [attribute(MD, tlv(0x04, b"\x01" * 32)), digest, data_type]),
        "UTCTime 1955": _crafted(kit, [digest, at(b"550101000000Z")]),
        "UTCTime 2049": _crafted(kit, [digest, at(b"491231235959Z")]),
        "GeneralizedTime": _crafted(kit, [digest, at(b"20610102030405Z", 0x18)]),
        "subject key identifier": _crafted(kit, [digest, data_type], sid=tlv(0x80, ski)),
        "two values, the first counts": _crafted(kit, [attribute(MD, tlv(0x04, b"\x02" * 32)
                                                                 + tlv(0x04, b"\x03" * 32))]),
        "an empty time-stamp attribute": _crafted(kit, [digest], unsigned=tlv(0xA1, tlv(0x30, oid_der(
            "1.2.840.113549.1.9.16.2.14") + tlv(0x31, b"")))),
    }
    left_alone = {  # the walk leaves these to asn1crypto
        "two SignerInfos": _crafted(kit, [digest], signer_infos=2),
        "no SignerInfo": _crafted(kit, [digest], signer_infos=0),
        "no signed attributes": _crafted(kit, []),
        "an attribute certificate": _crafted(kit, [digest], certificates=kit.signer.certificate + tlv(0xA1, b"")),
        "messageDigest not an OCTET STRING": _crafted(kit, [attribute(MD, tlv(0x02, b"\x01"))]),
        "UTCTime without seconds": _crafted(kit, [digest, at(b"5501010000Z")]),
        "UTCTime with an offset": _crafted(kit, [digest, at(b"550101000000+0800")]),
        "fractions of a second": _crafted(kit, [digest, at(b"20260101000000.5Z", 0x18)]),
        "an attribute with three elements": _crafted(kit, [digest, tlv(0x30, oid_der(CT) + tlv(0x31, b"")
                                                                    + tlv(0x05, b""))]),
    }
    for what, sd in read_alike.items():
        plain = _parse_plain(sd, "pkcs7")
        assert plain is not None, what
        assert plain == _outcome(_parse_asn1crypto, sd, "pkcs7"), what
    for what, sd in left_alone.items():
        assert _parse_plain(sd, "pkcs7") is None, what
