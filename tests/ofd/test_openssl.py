"""OpenSSL (an independent SM2 implementation) verifies the signatures inside our sealed OFD."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from stamping.ofd.package import OfdPackage
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement
from stamping.ses.codec import parse_signature

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def _openssl_verify(tmp_path, cert_der: bytes, data: bytes, signature: bytes) -> bool:
    (tmp_path / "cert.der").write_bytes(cert_der)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig").write_bytes(signature)
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", tmp_path / "cert.der", "-pubkey", "-noout",
                    "-out", tmp_path / "pub.pem"], check=True, capture_output=True)
    done = subprocess.run(["openssl", "dgst", "-sm3", "-verify", tmp_path / "pub.pem", "-signature",
                           tmp_path / "sig", "-sigopt", "distid:1234567812345678", tmp_path / "data"],
                          capture_output=True, text=True)
    return done.returncode == 0 and "Verified OK" in done.stdout


def test_openssl_verifies_signer_and_maker_signatures(kit, tmp_path):
    src = make_sample_certificate_ofd(sample_business_licence_fields(5), "business_licence")
    out = stamp_ofd(src, kit.seal_der, kit.signer, Placement(page=None, anchor_text="（盖章）"))
    ses = parse_signature(OfdPackage(out).read("Doc_0/Signs/Sign_0/SignedValue.dat"))
    assert _openssl_verify(tmp_path, ses.signer_cert, ses.signed_bytes, ses.signature)
    seal = ses.seal
    assert _openssl_verify(tmp_path, seal.maker_cert, seal.signed_bytes, seal.signed_value)
    tampered = bytearray(ses.signed_bytes)
    tampered[-5] ^= 1
    assert not _openssl_verify(tmp_path, ses.signer_cert, bytes(tampered), ses.signature)
