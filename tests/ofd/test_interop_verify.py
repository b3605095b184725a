"""Other vendors' sealed OFD files verify as the interop README says; tampering is named."""

from __future__ import annotations

import pytest

from stamping.ofd.verify import verify_ofd

from .helpers import flip_byte


def failing(result) -> list[str]:
    return [f"{c.name}: {c.reason}" for s in result.signatures for c in s.checks if not c.ok]


def integrity_failures(result) -> list[str]:
    return [f"{c.name}: {c.reason}" for s in result.signatures for c in s.checks
            if not c.ok and c.kind == "integrity"]


@pytest.mark.parametrize("name", ["v4signed.ofd", "signedFile.ofd", "SESV4SignDoc.ofd"])
def test_foreign_seals_intact_not_trusted(interop_dir, name, kit):
    for trust in (None, kit.trust):
        result = verify_ofd((interop_dir / name).read_bytes(), name, trust)
        assert result.error is None
        assert result.signatures
        assert result.intact, integrity_failures(result)
        assert not result.trusted  # their test CA is not ours
        for sig in result.signatures:
            assert sig.es_id and sig.signed_at
            checks = {c.name: c for c in sig.checks}
            assert checks["references"].ok
            assert checks["signer_signature"].ok and checks["maker_signature"].ok


def test_sesv4signdoc_seal_esl(interop_dir):
    result = verify_ofd((interop_dir / "SESV4SignDoc.ofd").read_bytes(), "SESV4SignDoc.ofd", None)
    checks = {c.name: c for c in result.signatures[0].checks}
    assert checks["seal_esl"].ok, checks["seal_esl"].reason


SIGNED = {
    "v4signed.ofd": ["Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml", "Doc_0/Res/qr.png", "OFD.xml",
                     "Doc_0/Tpls/Tpl_0/Content.xml", "Doc_0/Signs/Sign_0/Signature.xml",
                     "Doc_0/Signs/Sign_0/SignedValue.dat"],
    "signedFile.ofd": ["Doc_0/Pages/Page_0/Content.xml", "Doc_0/Attachs/original_invoice.xml",
                       "Doc_0/Signs/Sign_0/Signature.xml", "Doc_0/Signs/Sign_0/SignedValue.dat"],
    "SESV4SignDoc.ofd": ["Doc_0/Pages/Page_0/Content.xml", "Doc_0/Signs/Sign_0/Seal.esl",
                         "Doc_0/Signs/Sign_0/Signature.xml", "Doc_0/Signs/Sign_0/SignedValue.dat"],
}


@pytest.mark.parametrize(("name", "member"), [(n, m) for n, ms in SIGNED.items() for m in ms])
def test_foreign_tampering_detected(interop_dir, name, member):
    data = flip_byte((interop_dir / name).read_bytes(), member, 0.6)
    result = verify_ofd(data, name, None)
    assert not result.intact
    if not member.endswith(("Signature.xml", "SignedValue.dat")):
        assert any("/" + member in f for f in integrity_failures(result)), failing(result)
