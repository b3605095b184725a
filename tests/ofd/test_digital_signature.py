"""Type=Sign OFD signatures (GB/T 35275 SignedData, no seal) are verified, not reported unsupported."""

from __future__ import annotations

import pytest

from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement

from .helpers import as_digital_signature, flip_byte, replace_member

ANCHOR = Placement(page=None, x_mm=None, y_mm=None, anchor_text="（盖章）", offset_mm=(0.0, 0.0), cross_page=False)
SIGNED_VALUE = "Doc_0/Signs/Sign_0/SignedValue.dat"


@pytest.fixture(scope="module")
def sealed(kit) -> bytes:
    return stamp_ofd(make_sample_certificate_ofd(sample_business_licence_fields(21), "business_licence"),
                     kit.seal_der, kit.signer, ANCHOR)


def checks(result) -> dict[str, tuple[bool, str]]:
    (sig,) = result.signatures
    return {c.name: (c.ok, c.reason) for c in sig.checks}


@pytest.mark.parametrize("shape", ["bare", "wrapped", "pkcs9"])
def test_a_digital_signature_verifies(kit, sealed, shape):
    data = as_digital_signature(sealed, kit.signer, shape=shape)
    result = verify_ofd(data, "signed.ofd", kit.trust)
    assert result.verdict == "valid", result.to_json()
    got = checks(result)
    assert got["signed_value"][0] and "GB/T 35275" in got["signed_value"][1]
    assert got["data_hash"][0] and got["signer_signature"][0] and got["signer_chain"][0]
    assert result.signatures[0].signer  # the certificate's name
    assert verify_ofd(data, "signed.ofd", None).verdict == "not_valid"  # no roots: not trusted


def test_ofdrw_agrees_on_the_digital_signatures(kit, sealed, tmp_path):
    """The test's Type=Sign files are what ofdrw itself accepts (its current validator wants the
    ContentInfo; the bare shape of older ofdrw versions is read by SealFlow only)."""
    from .test_ofdrw_accepts import ofdrw

    paths = []
    for shape in ("wrapped", "pkcs9"):
        paths.append(tmp_path / f"{shape}.ofd")
        paths[-1].write_bytes(as_digital_signature(sealed, kit.signer, shape=shape))
    for answer in ofdrw(paths).values():
        assert answer["ofdrw_valid"] is True and answer["containers"] == ["GBT35275"], answer


def test_a_tampered_page_or_signature_xml_fails(kit, sealed):
    data = as_digital_signature(sealed, kit.signer)
    page = verify_ofd(flip_byte(data, "Doc_0/Pages/Page_0/Content.xml"), "t.ofd", kit.trust)
    assert page.verdict == "not_valid" and not checks(page)["references"][0]
    sig_xml = verify_ofd(flip_byte(data, "Doc_0/Signs/Sign_0/Signature.xml", 0.9), "t.ofd", kit.trust)
    assert sig_xml.verdict == "not_valid" and not checks(sig_xml)["data_hash"][0]


def test_a_signature_by_another_key_under_our_certificate_fails(kit, sealed, tmp_path):
    from stamping.ofd.demo import make_demo_kit

    class Impostor:  # presents the genuine certificate, signs with its own key
        certificate = kit.signer.certificate
        sign = staticmethod(make_demo_kit(tmp_path).signer.sign)

    result = verify_ofd(as_digital_signature(sealed, Impostor()), "t.ofd", kit.trust)
    assert result.verdict == "not_valid"
    ok, reason = checks(result)["signer_signature"]
    assert not ok and "invalid" in reason


def test_garbage_signed_value_is_named(kit, sealed):
    data = replace_member(as_digital_signature(sealed, kit.signer), SIGNED_VALUE, b"\x30\x03\x02\x01\x01")
    ok, reason = checks(verify_ofd(data, "t.ofd", kit.trust))["signed_value"]
    assert not ok and "not a GB/T 35275 SignedData" in reason
