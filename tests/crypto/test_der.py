"""The one hand-written DER of SealFlow (``gmpki.pki.der``): what it writes is what asn1crypto writes,
what it reads it reads back, and it finds a SignerInfo's certificate and names its holder."""

from __future__ import annotations

import pytest
from asn1crypto import cms, core, x509

from gmpki.pki.ca import DemoCA
from gmpki.pki.der import attribute, der_length, display_name, oid_der, read_tlv, signer_certificate, tlv


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DemoCA:
    return DemoCA.create(tmp_path_factory.mktemp("der-ca") / "ca")


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 65535, 65536])
def test_an_octet_string_of_any_length_is_written_as_asn1crypto_writes_it(size: int) -> None:
    content = b"\x5a" * size
    assert tlv(0x04, content) == core.OctetString(content).dump()
    assert read_tlv(tlv(0x04, content), 0) == (0x04, len(der_length(size)) + 1, len(der_length(size)) + 1 + size)


def test_an_attribute_is_a_cms_attribute() -> None:
    der = attribute("1.2.840.113549.1.9.4", core.OctetString(b"digest").dump())
    parsed = cms.CMSAttribute.load(der)
    assert parsed["type"].native == "message_digest" and parsed["values"][0].native == b"digest"
    assert oid_der("1.2.840.113549.1.9.4") == core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()


@pytest.mark.parametrize("blob", [b"\x30", b"\x30\x05ab", b"\x30\x80", b"\x30\x85\x00\x00\x00\x00\x01"])
def test_truncated_or_non_der_lengths_raise_the_callers_error(blob: bytes) -> None:
    class Mine(ValueError):
        pass

    with pytest.raises(Mine, match="DER"):
        read_tlv(blob, 0, Mine)


def test_the_signer_certificate_is_found_by_issuer_and_serial_or_by_key_id(ca: DemoCA) -> None:
    _, unit = ca.issue_unit_signer("示范公司", "91330100MA0000001X")
    cert = x509.Certificate.load(unit)
    by_ias = cms.SignerIdentifier({"issuer_and_serial_number": {"issuer": cert.issuer,
                                                                "serial_number": cert.serial_number}})
    by_ski = cms.SignerIdentifier({"subject_key_identifier": cert.key_identifier})
    certs = (ca.maker_cert_der, unit)
    assert signer_certificate(by_ias.dump(), certs) == unit
    assert signer_certificate(by_ski.dump(), certs) == unit
    assert signer_certificate(by_ias.dump(), (ca.maker_cert_der,)) is None


def test_a_holder_is_named_by_common_name_and_unreadable_bytes_by_nothing(ca: DemoCA) -> None:
    _, unit = ca.issue_unit_signer("示范公司", "91330100MA0000001X")
    assert display_name(unit) == "示范公司"
    assert display_name(b"not a certificate") == ""
