"""The ``Signer`` interface: whoever holds the key signs. A software key first; a crypto device
(密码机, UKey) or a remote signing service can stand in without touching callers."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gmpki.gm.sm2 import DEFAULT_UID, SM2PrivateKey


@runtime_checkable
class Signer(Protocol):
    @property
    def certificate(self) -> bytes:
        """DER X.509 certificate of the signing key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """DER SM2-with-SM3 signature over ``data`` (default user id)."""
        ...


class SoftwareSigner:
    """A Signer over an in-memory SM2 key. Its repr never shows the key."""

    __slots__ = ("_certificate", "_key", "_uid")

    def __init__(self, key: SM2PrivateKey, certificate: bytes, uid: bytes = DEFAULT_UID) -> None:
        self._key = key
        self._certificate = certificate
        self._uid = uid

    @property
    def certificate(self) -> bytes:
        return self._certificate

    @property
    def public_key(self):
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, self._uid)

    def __repr__(self) -> str:
        return f"SoftwareSigner(public={self._key.public_key().point[:9].hex()}…)"

    def __reduce__(self):
        raise TypeError("signers cannot be pickled")


class RecordingSigner:
    """A Signer that remembers the last signature it made (``last``): whoever records a seal's use
    (the batch, ``sealflow stamp``) names that signature in the audit log, by its SM3, so 验章 with
    the registry can tell SealFlow's signatures from others made with the same key."""

    __slots__ = ("_signer", "last")

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self.last: bytes | None = None

    @property
    def certificate(self) -> bytes:
        return self._signer.certificate

    def sign(self, data: bytes) -> bytes:
        self.last = self._signer.sign(data)
        return self.last

    def __repr__(self) -> str:
        return f"RecordingSigner({self._signer!r})"

    def __reduce__(self):
        raise TypeError("signers cannot be pickled")
