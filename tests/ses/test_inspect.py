"""``describe`` / ``format_text``: what a seal or signature holds, for ``sealflow seal inspect``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stamping.ses.codec import SesFormatError
from stamping.ses.inspect import describe, format_text, picture_of, read_seal_file


def test_describe_v1_seal(interop_bytes: dict[str, bytes]) -> None:
    desc = describe(interop_bytes["UserV1.esl"])
    assert desc["kind"] == "seal"
    seal = desc["seal"]
    assert (seal["version"], seal["es_id"], seal["name"]) == (1, "40C8CDD24DEF43388B86E62CCE1D6832", "OFDRW测试用印章")
    assert seal["picture"] == {"type": "PNG", "size": 15693, "width_mm": 40, "height_mm": 40}
    assert "Test Certificate" in seal["maker_certificate"]["subject"]
    assert len(seal["signer_certificates"]) == 1
    json.dumps(desc)  # plain data
    text = format_text(desc)
    assert "Seal (SESeal) version 1" in text and "OFDRW测试用印章" in text and "40 x 40 mm" in text


def test_describe_signature(interop_bytes: dict[str, bytes]) -> None:
    desc = describe(interop_bytes["v4signed.ofd:Doc_0/Signs/Sign_0/SignedValue.dat"])
    assert desc["kind"] == "signature" and desc["version"] == 4
    assert desc["property_info"] == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert desc["seal"]["extensions"] == [{"oid": "1.2.156.10197.6.7.2.2.1", "critical": False, "value": "322e31"}]
    text = format_text(desc)
    assert text.startswith("Seal signature (SES_Signature) version 4")
    assert "国家税务总局" in text and "picture:     ofd" in text


def test_describe_refuses_garbage() -> None:
    with pytest.raises(SesFormatError):
        describe(b"\x30\x03\x01\x01\xff")


def test_read_and_picture(interop_dir: Path) -> None:
    data = read_seal_file(interop_dir / "SignedValueV5.dat")
    kind, picture = picture_of(data)
    assert kind == "PNG" and picture.startswith(b"\x89PNG")
