"""Parsing seal data: interop files of V1, V4, V5 and the structures they carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stamping.ses.codec import MAX_INPUT, SesFormatError, is_signature, parse_seal, parse_signature, parse_text_time

from .conftest import SEAL_FILES, SIGNATURE_FILES


def test_every_interop_esl_and_dat_parses(interop_bytes: dict[str, bytes]) -> None:
    names = [n for n in interop_bytes if n.endswith((".esl", ".dat"))]
    assert set(SEAL_FILES + SIGNATURE_FILES) <= set(names)
    for name in names:
        data = interop_bytes[name]
        if is_signature(data):
            sig = parse_signature(data)
            assert sig.der == data
            assert sig.seal.der == sig.seal_der
            assert sig.seal_der in data
        else:
            seal = parse_seal(data)
            assert seal.der == data


@pytest.mark.parametrize(("name", "version", "vid"), [
    ("UserV1.esl", 1, "OFDR&WTest"), ("UserV4.esl", 4, "OFDR&WTest"), ("UserV5.esl", 5, "OFDR&WTestV5")])
def test_seal_fields(interop_bytes: dict[str, bytes], name: str, version: int, vid: str) -> None:
    seal = parse_seal(interop_bytes[name])
    assert (seal.version, seal.vid, seal.header_id) == (version, vid, "ES")
    assert seal.picture_type == "PNG"
    assert seal.picture_data.startswith(b"\x89PNG")
    assert (seal.picture_width_mm, seal.picture_height_mm) == (40, 40)
    assert seal.cert_list_type == 1 and len(seal.cert_list) == 1 and seal.cert_list[0][:1] == b"\x30"
    assert seal.sign_alg == "1.2.156.10197.1.501"
    assert seal.valid_start < seal.valid_end
    assert seal.valid_start.tzinfo is not None
    assert "测试用印章" in seal.name


def test_v4_signed_bytes_are_the_original_sealinfo(interop_bytes: dict[str, bytes]) -> None:
    data = interop_bytes["UserV4.esl"]
    seal = parse_seal(data)
    # SES_SealInfo is the first element of SESeal: header 30 82 LL LL at offset 4
    length = int.from_bytes(data[6:8], "big")
    assert seal.signed_bytes == data[4:8 + length]


def test_v1_signed_bytes_are_sealinfo_cert_and_algorithm(interop_bytes: dict[str, bytes]) -> None:
    data = interop_bytes["UserV1.esl"]
    seal = parse_seal(data)
    assert seal.version == 1
    assert seal.signed_bytes[:2] == b"\x30\x82"
    body = seal.signed_bytes[4:]
    assert int.from_bytes(seal.signed_bytes[2:4], "big") == len(body)
    assert body.startswith(data[4:4 + 4 + int.from_bytes(data[6:8], "big")])
    assert body.endswith(bytes.fromhex("06082a811ccf55018375"))  # SM2-with-SM3
    assert seal.maker_cert in body


def test_signature_fields(interop_bytes: dict[str, bytes]) -> None:
    for name, version in (("SignedValueV4.dat", 4), ("SignedValueV5.dat", 5)):
        sig = parse_signature(interop_bytes[name])
        assert sig.version == version and sig.seal.version == version
        assert sig.data_hash == bytes(32)
        assert sig.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
        assert isinstance(sig.time_info, datetime)
        assert sig.signer_cert in sig.seal.cert_list
        assert sig.signed_bytes in sig.der
        assert sig.signature[:1] == b"\x30"


def test_tax_seal_keeps_explicit_critical_false(interop_bytes: dict[str, bytes]) -> None:
    """The tax seal writes `critical FALSE` explicitly (not DER): the signed bytes must keep it."""
    sig = parse_signature(interop_bytes["v4signed.ofd:Doc_0/Signs/Sign_0/SignedValue.dat"])
    seal = sig.seal
    assert seal.picture_type == "ofd"
    assert [(e.oid, e.critical, e.value) for e in seal.ext_datas] == [("1.2.156.10197.6.7.2.2.1", False, b"2.1")]
    assert bytes.fromhex("0101 00".replace(" ", "")) in seal.signed_bytes  # BOOLEAN FALSE, as found
    assert seal.signed_bytes in sig.seal_der


def test_ofdrw_seal_esl_equals_seal_in_signature(interop_bytes: dict[str, bytes]) -> None:
    esl = interop_bytes["SESV4SignDoc.ofd:Doc_0/Signs/Sign_0/Seal.esl"]
    sig = parse_signature(interop_bytes["SESV4SignDoc.ofd:Doc_0/Signs/Sign_0/SignedValue.dat"])
    assert sig.seal_der == esl


def test_seal_is_not_a_signature(interop_bytes: dict[str, bytes]) -> None:
    assert not is_signature(interop_bytes["UserV4.esl"])
    assert is_signature(interop_bytes["SignedValueV4.dat"])
    with pytest.raises(SesFormatError):
        parse_signature(interop_bytes["UserV4.esl"])
    with pytest.raises(SesFormatError):
        parse_seal(interop_bytes["SignedValueV4.dat"])


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x30\x00", b"\x30\x03\x02\x01\x04", b"hello", b"\x30\x80\x00\x00"])
def test_garbage_is_a_format_error(data: bytes) -> None:
    with pytest.raises(SesFormatError):
        parse_seal(data)
    with pytest.raises(SesFormatError):
        parse_signature(data)


def test_oversized_input_refused_before_parsing() -> None:
    with pytest.raises(SesFormatError, match="exceeds the limit"):
        parse_seal(b"\x30" + b"\x00" * MAX_INPUT)


def test_trailing_bytes_refused(interop_bytes: dict[str, bytes]) -> None:
    with pytest.raises(SesFormatError):
        parse_seal(interop_bytes["UserV4.esl"] + b"\x00")


def test_wrong_header_version_refused(interop_bytes: dict[str, bytes]) -> None:
    data = bytearray(interop_bytes["UserV4.esl"])
    assert data[14:17] == b"\x02\x01\x04"
    data[16] = 7
    with pytest.raises(SesFormatError, match="version 7"):
        parse_seal(bytes(data))


@pytest.mark.parametrize(("raw", "expected"), [
    (b"20200422101807", datetime(2020, 4, 22, 2, 18, 7, tzinfo=UTC)),
    (b"20200422021807Z", datetime(2020, 4, 22, 2, 18, 7, tzinfo=UTC)),
    (b"2020-04-22 10:18:07", datetime(2020, 4, 22, 2, 18, 7, tzinfo=UTC)),
    (b"\x18\x0f20200422021807Z", datetime(2020, 4, 22, 2, 18, 7, tzinfo=UTC)),
])
def test_v1_text_time(raw: bytes, expected: datetime) -> None:
    assert parse_text_time(raw) == expected


def test_v1_unreadable_text_time_kept_as_text() -> None:
    assert parse_text_time(b"yesterday") == "yesterday"
