"""Certificates we issue, chain validation reasons, OpenSSL acceptance, interop certificates."""

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem, x509

from gmpki.gm.sm2 import SM2PrivateKey, SM2PublicKey
from gmpki.keys.signer import SoftwareSigner
from gmpki.pki.ca import DemoCA
from gmpki.pki.certs import CA_USAGE, Subject, issue_certificate
from gmpki.pki.trust import TrustStore


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> DemoCA:
    return DemoCA.create(tmp_path_factory.mktemp("ca") / "ca")


def test_demo_ca_is_idempotent_and_chains(ca: DemoCA) -> None:
    assert DemoCA.create(ca.directory).root_der == ca.root_der
    trust = ca.trust_store()
    assert trust.validate(ca.maker_cert_der).ok
    _, unit = ca.issue_unit_signer("示范市市场监督管理局", "11330100MB1234567X")
    result = trust.validate(unit, require_key_usage=["digital_signature", "non_repudiation"])
    assert result.ok, result.reason
    assert len(result.path) == 3


def test_subjects_carry_the_codes(ca: DemoCA) -> None:
    _, unit = ca.issue_unit_signer("示范公司", "91330100MA0000001X")
    _, person = ca.issue_person_signer("张伟", "11010519491231002X")
    unit_name = x509.Certificate.load(unit).subject.native
    assert unit_name["organization_identifier"] == "91330100MA0000001X"
    assert x509.Certificate.load(person).subject.native["serial_number"] == "11010519491231002X"
    cert = x509.Certificate.load(unit)
    assert cert.key_usage_value.native == {"digital_signature", "non_repudiation"}
    assert not cert.ca and cert.key_identifier and cert.authority_key_identifier


def test_openssl_accepts_our_chain(ca: DemoCA, tmp_path: Path) -> None:
    """Link by link: OpenSSL 3.0 applies ``-vfyopt distid`` only to the certificate being verified,
    so a whole 3-level SM2 chain in one call fails at depth 1 whatever the issuer did; each link,
    verified as the target with its issuer as the anchor, passes."""
    _, leaf = ca.issue_unit_signer("示范公司", "91330100MA0000001X")
    for name, der in (("leaf.pem", leaf), ("root.pem", ca.root_der), ("inter.pem", ca.intermediate_der)):
        (tmp_path / name).write_bytes(pem.armor("CERTIFICATE", der))
    for args in (["-CAfile", "root.pem", "inter.pem"], ["-partial_chain", "-CAfile", "inter.pem", "leaf.pem"]):
        result = subprocess.run(["openssl", "verify", "-vfyopt", "distid:1234567812345678", *args], cwd=tmp_path,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert f"{args[-1]}: OK" in result.stdout
    tampered = bytearray(leaf)
    tampered[-3] ^= 1
    (tmp_path / "bad.pem").write_bytes(pem.armor("CERTIFICATE", bytes(tampered)))
    result = subprocess.run(["openssl", "verify", "-vfyopt", "distid:1234567812345678", "-partial_chain",
                             "-CAfile", "inter.pem", "bad.pem"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0


def _root(name: str = "Test Root", path_length: int | None = None) -> tuple[SoftwareSigner, bytes]:
    key = SM2PrivateKey.generate()
    cert = issue_certificate(subject=Subject(name), public_key=key.public_key(), issuer=None,
                             self_signer=SoftwareSigner(key, b""), ca=True, path_length=path_length,
                             key_usage=CA_USAGE)
    return SoftwareSigner(key, cert), cert


def test_failure_reasons(ca: DemoCA) -> None:
    trust = ca.trust_store()
    now = datetime.now(UTC)
    _, leaf = ca.issue_unit_signer("示范公司", "91330100MA0000001X", not_before=now - timedelta(days=1),
                                   not_after=now + timedelta(days=10))
    assert "had expired" in trust.validate(leaf, at=now + timedelta(days=11)).reason
    assert "not yet valid" in trust.validate(leaf, at=now - timedelta(days=2)).reason
    tampered = bytearray(leaf)
    tampered[-5] ^= 0x01
    assert "does not verify" in trust.validate(bytes(tampered)).reason
    unknown = TrustStore([]).validate(leaf)
    assert not unknown.ok and not unknown.issuer_found and "not among the trusted roots" in unknown.reason
    assert "lacks key usage key_cert_sign" in trust.validate(leaf, require_key_usage=["key_cert_sign"]).reason
    cert = x509.Certificate.load(leaf)
    ecdsa = x509.Certificate({"tbs_certificate": cert["tbs_certificate"],
                              "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                              "signature_value": cert["signature_value"].native}).dump()
    assert "not SM2-with-SM3" in trust.validate(ecdsa).reason
    for garbage in (leaf[: len(leaf) // 2], b"\x30\x03\x02\x01\x01", b"not DER at all"):
        broken = trust.validate(garbage)
        assert not broken.ok and broken.issuer_found and "cannot be parsed" in broken.reason
    _, stranger = _root("Stranger Root")
    alone = trust.validate(stranger)
    assert not alone.issuer_found and "self-signed certificate 'Common Name: Stranger Root" in alone.reason


def test_not_a_ca_and_path_length() -> None:
    root_signer, root = _root(path_length=0)
    mid_key = SM2PrivateKey.generate()
    mid = issue_certificate(subject=Subject("Mid CA"), public_key=mid_key.public_key(), issuer=root_signer,
                            ca=True, path_length=0, key_usage=CA_USAGE)
    sub_key = SM2PrivateKey.generate()
    sub = issue_certificate(subject=Subject("Sub CA"), public_key=sub_key.public_key(),
                            issuer=SoftwareSigner(mid_key, mid), ca=True, path_length=0, key_usage=CA_USAGE)
    leaf_key = SM2PrivateKey.generate()
    leaf = issue_certificate(subject=Subject("Leaf"), public_key=leaf_key.public_key(),
                             issuer=SoftwareSigner(sub_key, sub))
    trust = TrustStore([root], [mid, sub])
    assert trust.validate(mid).ok
    assert "path length constraint 0" in trust.validate(leaf).reason
    not_ca = issue_certificate(subject=Subject("Not a CA"), public_key=mid_key.public_key(), issuer=root_signer)
    leaf2 = issue_certificate(subject=Subject("Leaf2"), public_key=leaf_key.public_key(),
                              issuer=SoftwareSigner(mid_key, not_ca))
    assert "is not a CA" in TrustStore([root], [not_ca]).validate(leaf2).reason


def _interop_certs(interop_dir: Path) -> list[bytes]:
    """The maker and signer certificates inside other vendors' seals, signatures and signed OFDs."""
    import zipfile

    from stamping.ses.codec import parse_seal, parse_signature

    found = []
    for path in sorted(interop_dir.glob("*.esl")):
        found.append(parse_seal(path.read_bytes()).maker_cert)
    blobs = [p.read_bytes() for p in sorted(interop_dir.glob("*.dat"))]
    for path in sorted(interop_dir.glob("*.ofd")):
        with zipfile.ZipFile(path) as zf:
            blobs += [zf.read(n) for n in zf.namelist() if n.endswith("SignedValue.dat")]
    for blob in blobs:
        sig = parse_signature(blob)
        found += [sig.signer_cert, sig.seal.maker_cert]
    return found


def test_interop_certificates_parse_and_are_untrusted_not_broken(interop_dir: Path) -> None:
    """No issuer of these vendors' test certificates is in the file set (checked: every issuer
    name is a test CA we lack), so each must parse, carry an SM2 key, and come out as
    "issuer not found" — never as a bad signature — and validate once pinned as trusted."""
    certs = _interop_certs(interop_dir)
    assert len(certs) >= 10
    subjects = {x509.Certificate.load(c).subject.dump() for c in certs}
    for der in certs:
        cert = x509.Certificate.load(der)
        assert cert.issuer.dump() not in subjects  # if this changes, check those signatures here
        assert cert.public_key.curve == ("named", "sm2p256v1")
        assert cert["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
        SM2PublicKey.from_certificate(der)
        result = TrustStore([]).validate(der, at=cert.not_valid_before + timedelta(seconds=1))
        assert not result.ok and not result.issuer_found, result.reason
        assert "is not among the trusted roots" in result.reason
        pinned = TrustStore([der]).validate(der, at=cert.not_valid_before + timedelta(seconds=1))
        assert pinned.ok, pinned.reason


def test_interop_signatures_verify_with_our_sm2(interop_dir: Path) -> None:
    """Signatures made by other implementations (seal makers, signers) verify with our binding,
    and fail once one byte of what they signed changes."""
    from stamping.ses.codec import parse_seal, parse_signature

    cases = []
    for path in sorted(interop_dir.glob("*.esl")):
        seal = parse_seal(path.read_bytes())
        cases.append((seal.maker_cert, seal.signed_value, seal.signed_bytes))
    for path in sorted(interop_dir.glob("*.dat")):
        sig = parse_signature(path.read_bytes())
        cases.append((sig.signer_cert, sig.signature, sig.signed_bytes))
    assert len(cases) == 5
    for cert, signature, signed in cases:
        key = SM2PublicKey.from_certificate(cert)
        assert key.verify(signature, signed)
        assert not key.verify(signature, signed[:-1] + bytes([signed[-1] ^ 1]))
