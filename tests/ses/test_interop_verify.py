"""Every seal and signature from other implementations verifies over its original bytes."""

from __future__ import annotations

from datetime import datetime

import pytest

from gmpki.gm.sm3 import sm3
from stamping.ses.codec import is_signature, parse_seal, parse_signature
from stamping.verdict.result import SignatureResult
from stamping.verdict.seal_checks import check_seal, check_ses_signature


def _checks(result: SignatureResult) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.reason) for c in result.checks}


def test_every_interop_signature_verifies(interop_bytes: dict[str, bytes]) -> None:
    seen = 0
    for name, data in interop_bytes.items():
        if not name.endswith("SignedValue.dat") and not name.endswith(".dat"):
            continue
        sig = parse_signature(data)
        # inside an OFD: dataHash = SM3(Signature.xml); the bare test signatures hash 32 zero bytes
        expected = sm3(interop_bytes[name.replace("SignedValue.dat", "Signature.xml")]) if ":" in name else bytes(32)
        result = SignatureResult()
        check_ses_signature(result, sig, expected, None, None)
        checks = _checks(result)
        for check in ("data_hash", "signer_signature", "maker_signature", "signer_in_cert_list"):
            assert checks[check][0], (name, check, checks[check])
        assert result.intact, (name, result.to_json())
        assert not result.trusted  # we do not have their CAs
        assert checks["signer_chain"] == (False, "no trusted roots configured")
        assert result.seal_name and result.es_id and result.signer and result.signed_at
        seen += 1
    assert seen == 5


@pytest.mark.parametrize("name", ["UserV1.esl", "UserV4.esl", "UserV5.esl"])
def test_every_interop_seal_maker_signature_verifies(interop_bytes: dict[str, bytes], name: str) -> None:
    seal = parse_seal(interop_bytes[name])
    result = SignatureResult()
    check_seal(result, seal, seal.cert_list[0], seal.valid_start, None, None)
    checks = _checks(result)
    assert checks["maker_signature"][0], checks["maker_signature"]
    assert checks["signer_in_cert_list"][0]
    assert checks["seal_validity_at_signing"][0]
    assert "SES_SealInfo" in checks["maker_signature"][1]


def test_v1_seal_signed_differently(interop_bytes: dict[str, bytes]) -> None:
    """GM/T 0031-2014: the maker signs SEQUENCE{esealInfo, cert, alg}; over SES_SealInfo alone it fails."""
    from stamping.verdict.seal_checks import verify_sm2

    seal = parse_seal(interop_bytes["UserV1.esl"])
    assert verify_sm2(seal.maker_cert, seal.signed_value, seal.signed_bytes)[0]
    info_only = seal.signed_bytes[4:4 + 4 + int.from_bytes(seal.signed_bytes[6:8], "big")]
    assert not verify_sm2(seal.maker_cert, seal.signed_value, info_only)[0]


def test_tampered_interop_seal_fails_maker_check(interop_bytes: dict[str, bytes]) -> None:
    data = bytearray(interop_bytes["UserV4.esl"])
    pos = bytes(data).index("测试用印章".encode())
    data[pos] ^= 0x01
    seal = parse_seal(bytes(data))
    result = SignatureResult()
    check_seal(result, seal, seal.cert_list[0], seal.valid_start, None, None)
    ok, reason = _checks(result)["maker_signature"]
    assert not ok and "invalid" in reason


def test_tax_seal_picture_is_not_converted(interop_bytes: dict[str, bytes]) -> None:
    sig = parse_signature(interop_bytes["v4signed.ofd:Doc_0/Signs/Sign_0/SignedValue.dat"])
    result = SignatureResult()
    check_ses_signature(result, sig, None, None, None)
    assert result.seal_picture_png is None  # picture type "ofd"
    assert isinstance(sig.time_info, datetime)
    assert all(is_signature(d) for n, d in interop_bytes.items() if n.endswith(".dat"))
