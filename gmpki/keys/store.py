"""The software key store: SM2 private keys SM4-GCM encrypted at rest, each unlocked by its PIN (口令).

Two layers protect a key file: the PIN (through scrypt, a slow KDF) and the key-encryption key
(KEK) from configuration — an env value or a 0600 file. Five wrong PINs in a row lock the key
until an administrator unlocks it. Neither keys nor PINs ever appear in repr, logs or errors.

Plain arguments only (a key directory, KEK bytes, a PIN file's path): which directory and which KEK an
installation uses is the foundation's business (``kernel.keys``), so this module imports nothing of
SealFlow's but the GM primitives.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from gmpki.gm.sm2 import SM2PrivateKey, SM2PublicKey
from gmpki.gm.sm3 import sm3
from gmpki.gm.sm4 import DecryptionFailed, decrypt_gcm, encrypt_gcm
from gmpki.keys.signer import Signer, SoftwareSigner
from gmpki.private_files import exclusive_lock, make_private_dirs, write_private

MAX_WRONG_PINS = 5
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class KeyStoreError(Exception):
    """A key store problem; the message never holds key material or PINs."""


class KeyNotFound(KeyStoreError):
    pass


class WrongPin(KeyStoreError):
    def __init__(self, key_id: str, remaining: int) -> None:
        super().__init__(f"wrong PIN for key {key_id}: {remaining} attempts left before it locks")
        self.remaining = remaining


class ServicePinMismatch(KeyStoreError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"wrong PIN for service key {key_id}: it does not open with the PIN this installation "
                         f"resolves for it (SEALFLOW_*_KEY_PIN or the PIN file under the state directory's "
                         f"pins/): use the same settings wherever the key is used; no wrong-PIN try was counted")


class KeyLocked(KeyStoreError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"key {key_id} is locked after {MAX_WRONG_PINS} wrong PINs; an administrator must "
                         f"unlock it (sealflow ca unlock-key {key_id})")


def read_kek_material(configured: str, kek_file: Path) -> bytes:
    """The KEK material: ``configured`` (hex) when set, else the 0600 file ``kek_file`` (made if absent).
    It is what escrow splits; :func:`derive_kek` turns it into the SM4 key."""
    if configured:
        raw = configured.strip()
    else:
        if not kek_file.exists():
            with suppress(FileExistsError):  # two processes' first start: the first one's KEK stands
                write_private(kek_file, secrets.token_hex(32).encode(), exclusive=True)
        mode = stat.S_IMODE(kek_file.stat().st_mode)
        if mode & 0o077:
            raise KeyStoreError(f"KEK file {kek_file} is readable by others (mode {mode:o}); chmod 600 it")
        raw = kek_file.read_text().strip()
    try:
        material = bytes.fromhex(raw)
    except ValueError:
        raise KeyStoreError("the KEK must be hexadecimal") from None
    if len(material) < 16:
        raise KeyStoreError("the KEK must hold at least 16 bytes (32 hex digits)")
    return material


def derive_kek(material: bytes) -> bytes:
    """The 16-byte SM4 key-encryption key derived from the KEK material."""
    return sm3(b"sealflow-kek-v1" + material)[:16]


def _pin_key(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, dklen=16, maxmem=64 * 1024 * 1024, **SCRYPT)


class KeyStore:
    """Keys in ``<state>/keys/<key_id>.json``; see the module docstring for the protection."""

    def __init__(self, directory: Path, kek: bytes) -> None:
        """``kek``: the 16-byte SM4 key from :func:`derive_kek`."""
        if len(kek) != 16:
            raise KeyStoreError("the key store needs the 16-byte derived KEK (see derive_kek)")
        self._dir = directory
        self._kek = kek

    def __repr__(self) -> str:
        return f"KeyStore({self._dir})"

    def _path(self, key_id: str) -> Path:
        if not _KEY_ID.match(key_id):
            raise KeyStoreError(f"invalid key id {key_id!r}")
        return self._dir / f"{key_id.replace(':', '_')}.json"

    @contextmanager
    def _locked(self, key_id: str) -> Iterator[Path]:
        path = self._path(key_id)
        make_private_dirs(self._dir)
        with exclusive_lock(self._dir / ".lock"):
            yield path

    def _read(self, path: Path, key_id: str) -> dict:
        if not path.exists():
            raise KeyNotFound(f"no key {key_id} in the key store")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:  # like the KEK file: an open key file may have been copied; refuse, do not repair
            raise KeyStoreError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
        return json.loads(path.read_text())

    def _write(self, path: Path, record: dict) -> None:
        write_private(path, json.dumps(record).encode())

    def exists(self, key_id: str) -> bool:
        return self._path(key_id).exists()

    def create(self, key_id: str, pin: str, key: SM2PrivateKey | None = None) -> SM2PublicKey:
        if len(pin) < 6:
            raise KeyStoreError("a PIN needs at least 6 characters")
        key = key or SM2PrivateKey.generate()
        salt = secrets.token_bytes(16)
        aad = key_id.encode()
        inner = encrypt_gcm(_pin_key(pin, salt), key.to_pkcs8_der(), aad)
        record = {
            "version": 1, "key_id": key_id, "kdf": {"name": "scrypt", **SCRYPT, "salt": salt.hex()},
            "blob": base64.b64encode(encrypt_gcm(self._kek, inner, aad)).decode(),
            "public_key": base64.b64encode(key.public_key().to_spki_der()).decode(),
            "certificate": None, "wrong_pins": 0, "locked": False,
        }
        with self._locked(key_id) as path:
            if path.exists():
                raise KeyStoreError(f"key {key_id} already exists")
            self._write(path, record)
        return key.public_key()

    def public_key(self, key_id: str) -> SM2PublicKey:
        record = self._read(self._path(key_id), key_id)
        return SM2PublicKey.from_spki(base64.b64decode(record["public_key"]))

    def certificate(self, key_id: str) -> bytes | None:
        record = self._read(self._path(key_id), key_id)
        return base64.b64decode(record["certificate"]) if record.get("certificate") else None

    def set_certificate(self, key_id: str, cert_der: bytes) -> None:
        if SM2PublicKey.from_certificate(cert_der) != self.public_key(key_id):
            raise KeyStoreError(f"the certificate does not belong to key {key_id}")
        with self._locked(key_id) as path:
            record = self._read(path, key_id)
            record["certificate"] = base64.b64encode(cert_der).decode()
            self._write(path, record)

    def _unlock(self, key_id: str, pin: str, count_wrong: bool = True) -> SM2PrivateKey:
        aad = key_id.encode()
        with self._locked(key_id) as path:
            record = self._read(path, key_id)
            if record.get("locked"):
                raise KeyLocked(key_id)
            try:
                inner = decrypt_gcm(self._kek, base64.b64decode(record["blob"]), aad)
            except DecryptionFailed:
                raise KeyStoreError(f"key {key_id} cannot be decrypted with this KEK (wrong KEK or altered file)"
                                    ) from None
            salt = bytes.fromhex(record["kdf"]["salt"])
            try:
                der = decrypt_gcm(_pin_key(pin, salt), inner, aad)
            except DecryptionFailed:
                if not count_wrong:  # a service key: nobody types its PIN, see service_signer()
                    raise ServicePinMismatch(key_id) from None
                record["wrong_pins"] = int(record.get("wrong_pins", 0)) + 1
                record["locked"] = record["wrong_pins"] >= MAX_WRONG_PINS
                self._write(path, record)
                if record["locked"]:
                    raise KeyLocked(key_id) from None
                raise WrongPin(key_id, MAX_WRONG_PINS - record["wrong_pins"]) from None
            if record.get("wrong_pins"):
                record["wrong_pins"] = 0
                self._write(path, record)
        return SM2PrivateKey.from_pkcs8(der)

    def signer(self, key_id: str, pin: str) -> Signer:
        key = self._unlock(key_id, pin)
        cert = self.certificate(key_id)
        if cert is None:
            raise KeyStoreError(f"key {key_id} has no certificate yet")
        return SoftwareSigner(key, cert)

    def service_signer(self, key_id: str, pin: str) -> Signer:
        """The signer of a key nobody types the PIN of (a service key): a PIN that does not open it
        raises :class:`ServicePinMismatch` and counts no wrong-PIN try, so no caller can lock it."""
        key = self._unlock(key_id, pin, count_wrong=False)
        cert = self.certificate(key_id)
        if cert is None:
            raise KeyStoreError(f"key {key_id} has no certificate yet")
        return SoftwareSigner(key, cert)

    def private_key(self, key_id: str, pin: str) -> SM2PrivateKey:
        """The unlocked key itself, for issuing certificates before one exists (CA bootstrap)."""
        return self._unlock(key_id, pin)

    def admin_unlock(self, key_id: str, credential_dir: Path, credential: str) -> None:
        """Unlock a key locked after wrong PINs: only with the CA administrator's credential (kept
        in ``credential_dir``, the CA's directory)."""
        check_admin_credential(credential_dir, credential)
        with self._locked(key_id) as path:
            record = self._read(path, key_id)
            record["wrong_pins"], record["locked"] = 0, False
            self._write(path, record)

    def destroy(self, key_id: str) -> bool:
        """销毁: overwrite the key file with random bytes, flush it to disk and remove it (and any
        half-written temporary). Returns whether there was a key. The public key and certificate
        live on in the certificates the registry keeps, so earlier signatures still verify."""
        with self._locked(key_id) as path:
            found = path.exists()
            # the key, and any temporary a crash left (this writer's ``.name.*.part``, older ``.tmp``)
            for victim in (path, path.with_suffix(".tmp"), *path.parent.glob(f".{path.name}.*.part")):
                shred(victim)
        return found

    def is_locked(self, key_id: str) -> bool:
        return bool(self._read(self._path(key_id), key_id).get("locked"))


def shred(path: Path) -> None:
    """Overwrite a file with random bytes (same size), fsync, then unlink it; nothing if absent.
    (On copy-on-write or journalling file systems the old blocks may survive: the KEK still
    protects them, and production keys belong in an HSM whose destroy is final.)"""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    with open(path, "r+b") as fh:
        fh.write(secrets.token_bytes(max(size, 1)))
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()


class AdminCredentialRefused(KeyStoreError):
    """The CA administrator's credential is missing or wrong; the key stays as it was."""


ADMIN_CREDENTIAL_FILE = "admin.cred"


def _admin_hash(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode("utf-8"), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT)


def set_admin_credential(directory: Path, pin: str, current: str | None = None) -> None:
    """Record the CA administrator's credential (管理员口令) in ``directory`` (the CA's): a salted
    scrypt hash in a 0600 file. Replacing one needs the ``current`` credential."""
    if len(pin) < 12:
        raise KeyStoreError("the CA administrator's credential needs at least 12 characters")
    path = directory / ADMIN_CREDENTIAL_FILE
    if path.exists():
        check_admin_credential(directory, current or "")
    salt = secrets.token_bytes(16)
    digest = _admin_hash(pin, salt)
    record = {"salt": base64.b64encode(salt).decode(), "scrypt": base64.b64encode(digest).decode()}
    write_private(path, json.dumps(record).encode())


def check_admin_credential(directory: Path, pin: str) -> None:
    """Raise :class:`AdminCredentialRefused` unless ``pin`` is the CA administrator's credential."""
    path = directory / ADMIN_CREDENTIAL_FILE
    if not path.is_file():
        raise AdminCredentialRefused(f"no CA administrator credential in {directory}; the CA administrator sets "
                                     "one with `sealflow ca init --admin-pin-env VAR`")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AdminCredentialRefused(f"{path} is readable by others (mode {mode:o}); chmod 600 it and set a new "
                                     "credential")
    record = json.loads(path.read_text())
    expected = base64.b64decode(record["scrypt"])
    if not pin or not secrets.compare_digest(_admin_hash(pin, base64.b64decode(record["salt"])), expected):
        raise AdminCredentialRefused("the CA administrator's credential is wrong; nothing was changed")


def generated_pin(path: Path) -> str:
    """The PIN kept in the 0600 file ``path``, made (random) on first use: for keys no person holds."""
    if not path.exists():
        with suppress(FileExistsError):
            write_private(path, secrets.token_urlsafe(18).encode(), exclusive=True)
    return path.read_text().strip()
