"""SM2/SM3 known answers and interop with OpenSSL's CLI and gmssl (pure Python, verify only)."""

import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem
from gmssl import sm2 as gm_sm2
from hypothesis import given, settings
from hypothesis import strategies as st

from gmpki.gm.sm2 import (
    SM2PrivateKey,
    SM2PublicKey,
    signature_der_to_raw,
    signature_raw_to_der,
)
from gmpki.gm.sm3 import sm3, sm3_file

D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
XA = "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
YA = "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
ZA = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
E = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640"
R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
MSG = b"message digest"


def test_sm3_abc() -> None:
    assert sm3(b"abc").hex().upper() == "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"


def test_sm3_file_streams(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000
    (tmp_path / "f").write_bytes(data)
    assert sm3_file(tmp_path / "f") == sm3(data)


def test_annex_a_vector() -> None:
    key = SM2PrivateKey.from_secret_scalar(D)
    public = key.public_key()
    assert public.point.hex().upper() == "04" + XA + YA
    assert public.z_digest().hex().upper() == ZA
    assert sm3(public.z_digest() + MSG).hex().upper() == E
    raw = bytes.fromhex(R + S)
    assert public.verify(raw, MSG)
    assert public.verify(signature_raw_to_der(raw), MSG)
    assert not public.verify(raw, MSG + b"!")
    assert not public.verify(raw, MSG, uid=b"ALICE123@YAHOO.COM")


def test_der_raw_round_trip() -> None:
    key = SM2PrivateKey.generate()
    sig = key.sign(b"x")
    assert signature_raw_to_der(signature_der_to_raw(sig)) == sig
    with pytest.raises(ValueError):
        signature_raw_to_der(b"short")


def test_key_import_export_round_trips() -> None:
    key = SM2PrivateKey.generate()
    again = SM2PrivateKey.from_pkcs8(key.to_pkcs8_pem())
    assert again.public_key() == key.public_key()
    assert SM2PrivateKey.from_pkcs8(key.to_pkcs8_der()).public_key() == key.public_key()
    assert SM2PublicKey.from_spki(key.public_key().to_spki_der()) == key.public_key()
    assert SM2PublicKey.from_spki(pem.armor("PUBLIC KEY", key.public_key().to_spki_der())) == key.public_key()
    with pytest.raises(ValueError):
        SM2PrivateKey.from_pkcs8(b"garbage")


def test_private_key_never_shows_its_secret() -> None:
    key = SM2PrivateKey.from_secret_scalar(D)
    secret_hex = f"{D:064x}"
    for text in (repr(key), str(key)):
        assert secret_hex not in text.lower() and str(D) not in text
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)


def _gmssl_verifies(public: SM2PublicKey, sig: bytes, data: bytes) -> bool:
    crypt = gm_sm2.CryptSM2(private_key=None, public_key="00")
    crypt.public_key = public.point[1:].hex()  # bypass its lstrip("04") defect on X starting with 0/4
    return crypt.verify_with_sm3(signature_der_to_raw(sig).hex(), data)


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=False)


@settings(max_examples=25, deadline=None)
@given(message=st.binary(min_size=0, max_size=2048))
def test_our_signatures_verify_with_openssl_and_gmssl(tmp_path_factory: pytest.TempPathFactory,
                                                      message: bytes) -> None:
    tmp = tmp_path_factory.mktemp("sm2")
    key = SM2PrivateKey.generate()
    sig = key.sign(message)
    (tmp / "pub.pem").write_bytes(pem.armor("PUBLIC KEY", key.public_key().to_spki_der()))
    (tmp / "msg").write_bytes(message)
    (tmp / "sig").write_bytes(sig)
    result = _openssl("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", "distid:1234567812345678",
                      "-signature", "sig", "msg", cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert _gmssl_verifies(key.public_key(), sig, message)


@settings(max_examples=10, deadline=None)
@given(message=st.binary(min_size=1, max_size=512))
def test_openssl_signatures_verify_with_ours(tmp_path_factory: pytest.TempPathFactory, message: bytes) -> None:
    tmp = tmp_path_factory.mktemp("sm2o")
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", "key.pem", cwd=tmp).returncode == 0
    assert _openssl("pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem", cwd=tmp).returncode == 0
    (tmp / "msg").write_bytes(message)
    signed = _openssl("dgst", "-sm3", "-sign", "key.pem", "-sigopt", "distid:1234567812345678",
                      "-out", "sig", "msg", cwd=tmp)
    assert signed.returncode == 0, signed.stderr
    public = SM2PublicKey.from_spki((tmp / "pub.pem").read_bytes())
    sig = (tmp / "sig").read_bytes()
    assert public.verify(sig, message)
    assert SM2PrivateKey.from_pkcs8((tmp / "key.pem").read_bytes()).public_key() == public


@settings(max_examples=25, deadline=None)
@given(message=st.binary(min_size=1, max_size=256), bit=st.integers(min_value=0))
def test_any_flipped_bit_fails(message: bytes, bit: int) -> None:
    key = SM2PrivateKey.generate()
    sig = key.sign(message)
    raw = bytearray(signature_der_to_raw(sig))
    pos = bit % (len(raw) * 8)
    raw[pos // 8] ^= 1 << (pos % 8)
    assert not key.public_key().verify(bytes(raw), message)
    changed = bytearray(message)
    pos = bit % (len(changed) * 8)
    changed[pos // 8] ^= 1 << (pos % 8)
    assert not key.public_key().verify(sig, bytes(changed))
    assert key.public_key().verify(sig, message)


@pytest.mark.parametrize("cipher", ["aes-256-cbc", "sm4-cbc"])
def test_encrypted_pkcs8_from_openssl(tmp_path: Path, cipher: str) -> None:
    password = "-".join(("pw", cipher))
    assert _openssl("genpkey", "-algorithm", "SM2", "-out", "key.pem", cwd=tmp_path).returncode == 0
    made = _openssl("pkcs8", "-topk8", "-in", "key.pem", "-v2", cipher, "-passout", f"pass:{password}",
                    "-out", "enc.pem", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    plain = SM2PrivateKey.from_pkcs8((tmp_path / "key.pem").read_bytes())
    enc = (tmp_path / "enc.pem").read_bytes()
    assert SM2PrivateKey.from_pkcs8(enc, password.encode()).public_key() == plain.public_key()
    with pytest.raises(ValueError, match="wrong password") as err:
        SM2PrivateKey.from_pkcs8(enc, b"not-the-password")
    assert "not-the-password" not in str(err.value)


def test_non_sm2_keys_are_refused(tmp_path: Path) -> None:
    assert _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "p256.pem",
                    cwd=tmp_path).returncode == 0
    with pytest.raises(ValueError, match="not an SM2 key"):
        SM2PrivateKey.from_pkcs8((tmp_path / "p256.pem").read_bytes())
    with pytest.raises(ValueError):
        SM2PublicKey.from_point(b"\x04" + b"\x01" * 64)  # not on the curve
    assert _openssl("pkey", "-in", "p256.pem", "-pubout", "-out", "p256pub.pem", cwd=tmp_path).returncode == 0
    with pytest.raises(ValueError, match=r"not an SM2 public key .*curve 1\.2\.840\.10045\.3\.1\.7"):
        SM2PublicKey.from_spki((tmp_path / "p256pub.pem").read_bytes())


def test_one_key_signs_and_verifies_from_many_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = SM2PrivateKey.generate()
    public = key.public_key()

    def work(i: int) -> bool:
        msg = i.to_bytes(4, "big") * 10
        sigs = [key.sign(msg) for _ in range(50)]
        return all(public.verify(s, msg) and not public.verify(s, msg + b"x") for s in sigs)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, range(16)))


@settings(max_examples=25, deadline=None)
@given(r=st.integers(min_value=1, max_value=2**256 - 1), s=st.integers(min_value=1, max_value=2**256 - 1))
def test_der_codec_matches_asn1crypto(r: int, s: int) -> None:
    from asn1crypto import core

    class Ecdsa(core.Sequence):
        _fields = [("r", core.Integer), ("s", core.Integer)]

    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der = signature_raw_to_der(raw)
    assert der == Ecdsa({"r": r, "s": s}).dump()
    assert signature_der_to_raw(der) == raw


@pytest.mark.parametrize("bad", [
    b"", b"\x30\x06\x02\x01\x00\x02\x01\x01",  # r = 0
    b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # non-minimal INTEGER
    b"\x30\x06\x02\x01\x81\x02\x01\x01",  # negative
    b"\x30\x06\x02\x01\x01\x02\x01\x01\x00",  # trailing byte
    b"\x31\x06\x02\x01\x01\x02\x01\x01",  # SET, not SEQUENCE
])
def test_non_der_signatures_are_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        signature_der_to_raw(bad)
    assert not SM2PrivateKey.generate().public_key().verify(bad, b"m")


def test_public_keys_copy_and_pickle_safely() -> None:
    import copy
    import pickle

    key = SM2PrivateKey.generate()
    public = key.public_key()
    sig = key.sign(b"m")
    for clone in (pickle.loads(pickle.dumps(public)), copy.copy(public), copy.deepcopy(public)):
        assert clone == public and clone.verify(sig, b"m")
    with pytest.raises(TypeError):
        copy.deepcopy(key)


def test_messages_sharing_a_long_beginning_sign_and_verify_as_any_other(tmp_path: Path) -> None:
    """Each key keeps the SM3 state of the beginning its long messages share (an SES TBS_Sign starts with
    the whole seal): OpenSSL still verifies what we sign, and a bit flipped inside that beginning or after
    it fails while the state is warm."""
    import os

    key = SM2PrivateKey.generate()
    seal = os.urandom(14_000)
    messages = [b"\x30\x82\x37\x00\x02\x01\x04" + seal + os.urandom(300) for _ in range(4)]
    messages.append(messages[0][:9000])  # a long message that ends inside the shared beginning
    (tmp_path / "pub.pem").write_bytes(pem.armor("PUBLIC KEY", key.public_key().to_spki_der()))
    for i, message in enumerate(messages):
        sig = key.sign(message)
        (tmp_path / f"msg{i}").write_bytes(message)
        (tmp_path / f"sig{i}").write_bytes(sig)
        result = _openssl("dgst", "-sm3", "-verify", "pub.pem", "-sigopt", "distid:1234567812345678",
                          "-signature", f"sig{i}", f"msg{i}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert key.public_key().verify(sig, message)
        for pos in (7, 5_000, len(message) - 1):  # in the seal, in the kept beginning, at the end
            changed = bytearray(message)
            changed[pos] ^= 0x01
            assert not key.public_key().verify(sig, bytes(changed))
            assert key.public_key().verify(sig, message)
