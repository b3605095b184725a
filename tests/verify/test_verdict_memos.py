"""The 验章 memos (the seal parsed once, the seal maker's signature verified once, chains kept) cannot
be fooled: a forged document verified right after a good one with the same seal and certificates
still fails, and a good one verified after a forged one still passes."""

from __future__ import annotations

import pytest

from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.samples import make_sample_certificate_pdf
from stamping.placement import Placement
from stamping.ses.codec import parse_seal

AT = Placement(page=0, x_mm=60, y_mm=60)


def forged_seal(seal_der: bytes) -> bytes:
    """The same SESeal with one bit of its picture changed: same maker certificate, same maker
    signature value, same signer certificates — only the bytes the maker signed differ."""
    needle = parse_seal(seal_der).picture_data[200:240]
    pos = seal_der.index(needle) + 7
    return seal_der[:pos] + bytes([seal_der[pos] ^ 0x01]) + seal_der[pos + 1:]


def failed(result) -> set[str]:
    return {c.name for s in result.signatures for c in s.checks if not c.ok}


@pytest.fixture(scope="module")
def fake_seal(kit) -> bytes:
    return forged_seal(kit.seal_der)


def test_the_forged_seal_differs_only_in_what_the_maker_signed(kit, fake_seal):
    good, fake = parse_seal(kit.seal_der), parse_seal(fake_seal)
    assert (fake.maker_cert, fake.signed_value, fake.cert_list) == (good.maker_cert, good.signed_value, good.cert_list)
    assert fake.signed_bytes != good.signed_bytes


@pytest.mark.parametrize("fmt", ["ofd", "pdf"])
def test_a_forged_seal_after_a_good_one_fails_and_the_good_one_still_passes(kit, fake_seal, fmt):
    if fmt == "ofd":
        src = make_sample_certificate_ofd(sample_business_licence_fields(3), "business_licence")
        stamp, verify = stamp_ofd, verify_ofd
    else:
        src = make_sample_certificate_pdf(sample_business_licence_fields(3), "business_licence")
        stamp, verify = stamp_pdf, verify_pdf
    good = stamp(src, kit.seal_der, kit.signer, AT)
    fake = stamp(src, fake_seal, kit.signer, AT)  # the signer's own signature over it is genuine
    for _ in range(2):  # the second round is served from warm memos
        assert verify(good, "good", kit.trust).valid
        result = verify(fake, "fake", kit.trust)
        assert not result.valid and failed(result) == {"maker_signature"}, result.to_json()


def test_parsed_seals_are_copies_a_caller_may_change(kit):
    first = parse_seal(kit.seal_der)
    first.picture_data, first.name = b"changed", "changed"
    first.cert_list.append(b"not a certificate")
    again = parse_seal(kit.seal_der)
    assert again.picture_data != b"changed" and again.name != "changed"
    assert again.cert_list == [kit.signer.certificate]
