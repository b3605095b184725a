from datetime import UTC, datetime

import pymupdf
import pytest
from asn1crypto import cms

from gmpki.gm.sm3 import sm3
from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.cms import (
    SESEAL_ATTR_OID,
    CmsError,
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
