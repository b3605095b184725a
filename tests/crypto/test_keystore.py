"""The key store: PINs, lockout, KEK handling, tamper detection, no secrets in text."""

import json
import logging
import os
import traceback
from pathlib import Path

import pytest

from gmpki.gm.sm2 import SM2PrivateKey
from gmpki.keys.store import KeyLocked, KeyStore, KeyStoreError, WrongPin
from gmpki.pki.ca import DemoCA
from kernel.keys import key_store
from kernel.settings import Settings

PIN = "".join(str(d) for d in (2, 4, 6, 8, 1, 0))  # built at run time: never a literal in tracebacks


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return key_store(Settings(home=tmp_path, kek="11" * 32))


def _with_cert(store: KeyStore, tmp_path: Path, key_id: str = "k1") -> SM2PrivateKey:
    ca = DemoCA.create(tmp_path / "ca")
    key, cert = ca.issue_unit_signer("示范公司", "91330100MA0000001X")
    store.create(key_id, PIN, key)
    store.set_certificate(key_id, cert)
    return key


def test_sign_with_the_right_pin(store: KeyStore, tmp_path: Path) -> None:
    key = _with_cert(store, tmp_path)
    signer = store.signer("k1", PIN)
    assert key.public_key().verify(signer.sign(b"doc"), b"doc")


def test_five_wrong_pins_lock_until_admin_unlock(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    for remaining in (4, 3, 2, 1):
        with pytest.raises(WrongPin) as err:
            store.signer("k1", "000000")
        assert err.value.remaining == remaining
    with pytest.raises(KeyLocked):
        store.signer("k1", "000000")
    with pytest.raises(KeyLocked):
        store.signer("k1", PIN)  # even the right PIN, until an administrator unlocks
    from gmpki.keys.store import AdminCredentialRefused, set_admin_credential

    admin = tmp_path / "ca-admin"
    with pytest.raises(AdminCredentialRefused, match="no CA administrator credential"):
        store.admin_unlock("k1", admin, "anything-at-all")
    set_admin_credential(admin, "ca-admin-credential-1")
    with pytest.raises(AdminCredentialRefused, match="wrong"):
        store.admin_unlock("k1", admin, "ca-admin-credential-2")
    assert store.is_locked("k1")
    store.admin_unlock("k1", admin, "ca-admin-credential-1")
    assert store.signer("k1", PIN)


def test_right_pin_resets_the_counter(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    for _ in range(4):
        with pytest.raises(WrongPin):
            store.signer("k1", "000000")
    store.signer("k1", PIN)
    with pytest.raises(WrongPin) as err:
        store.signer("k1", "000000")
    assert err.value.remaining == 4


def test_secrets_never_in_text(store: KeyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = _with_cert(store, tmp_path)
    secret = key.to_pkcs8_der().hex()
    caplog.set_level(logging.DEBUG)
    signer = store.signer("k1", PIN)
    logging.getLogger("sealflow").info("signer %r store %r key %s", signer, store, key)
    wrong = "-".join(("wrong", "pin", "7"))
    try:
        store.signer("k1", wrong)
    except WrongPin:
        tb = traceback.format_exc()
    texts = [repr(signer), str(signer), repr(store), repr(key), str(key), caplog.text, tb]
    for text in texts:
        assert PIN not in text and wrong not in text and secret not in text
    on_disk = next((tmp_path / "keys").glob("k1.json")).read_text()
    assert secret not in on_disk and PIN not in on_disk


def test_tampered_key_file_is_refused(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    path = next((tmp_path / "keys").glob("k1.json"))
    record = json.loads(path.read_text())
    blob = bytearray(record["blob"].encode())
    blob[20] = ord("A") if blob[20] != ord("A") else ord("B")
    record["blob"] = blob.decode()
    path.write_text(json.dumps(record))
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        store.signer("k1", PIN)


def test_wrong_kek_is_refused(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    other = key_store(Settings(home=tmp_path, kek="22" * 32))
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        other.signer("k1", PIN)


def test_kek_file_created_0600_and_loose_permissions_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    key_store(settings).create("k2", PIN)
    kek = settings.resolved_kek_file
    assert (kek.stat().st_mode & 0o777) == 0o600
    os.chmod(kek, 0o644)
    with pytest.raises(KeyStoreError, match="readable by others"):
        key_store(settings)


def test_certificate_must_match_the_key(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    store.create("k3", PIN)
    with pytest.raises(KeyStoreError, match="does not belong"):
        store.set_certificate("k3", store.certificate("k1"))


def test_key_file_moved_to_another_id_does_not_decrypt(store: KeyStore, tmp_path: Path) -> None:
    _with_cert(store, tmp_path)
    keys = tmp_path / "keys"
    (keys / "k9.json").write_bytes((keys / "k1.json").read_bytes())
    with pytest.raises(KeyStoreError, match="cannot be decrypted"):
        store.signer("k9", PIN)
