"""A local demo CA: root → issuing (intermediate) CA → seal-maker and signer certificates.

Everything lives in one directory: certificates as PEM, the CA keys in a key store there
(SM4-GCM under the directory's own 0600 KEK file, unlocked by a random PIN kept 0600 beside it).
It stands in for a licensed CA in the embedded stack, the tests and the demo — never production.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import pem

from gmpki.gm.sm2 import SM2PrivateKey
from gmpki.keys.signer import Signer, SoftwareSigner
from gmpki.keys.store import KeyStore, derive_kek, read_kek_material
from gmpki.pki.certs import CA_USAGE, SIGNER_USAGE, Subject, issue_certificate
from gmpki.pki.trust import TrustStore
from gmpki.private_files import write_private

ROOT, INTERMEDIATE, MAKER = "ca-root", "ca-intermediate", "seal-maker"


def _own_key_store(directory: Path) -> KeyStore:
    """The CA's key store: ``keys/`` under the directory's own 0600 KEK file (made on first use)."""
    return KeyStore(directory / "keys", derive_kek(read_kek_material("", directory / "kek.hex")))


class DemoCA:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._store = _own_key_store(directory)
        self._pin = (directory / "ca.pin").read_text().strip()
        self._signers: dict[str, Signer] = {}
        self.root_der = self._cert(ROOT)
        self.intermediate_der = self._cert(INTERMEDIATE)
        self.maker_cert_der = self._cert(MAKER)

    def __repr__(self) -> str:
        return f"DemoCA({self.directory})"

    def _cert(self, name: str) -> bytes:
        return pem.unarmor((self.directory / f"{name}.pem").read_bytes())[2]

    @classmethod
    def load(cls, directory: Path) -> DemoCA:
        if not (directory / f"{MAKER}.pem").exists():
            raise FileNotFoundError(f"no demo CA in {directory}: run `sealflow ca init`")
        return cls(directory)

    @classmethod
    def create(cls, directory: Path, name: str = "SealFlow Demo") -> DemoCA:
        """Make the CA in ``directory``, or load it when it is already there (idempotent)."""
        if (directory / f"{MAKER}.pem").exists():
            return cls(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pin = secrets.token_urlsafe(18)
        write_private(directory / "ca.pin", pin.encode())
        store = _own_key_store(directory)
        now = datetime.now(UTC) - timedelta(days=1)
        keys = {n: SM2PrivateKey.generate() for n in (ROOT, INTERMEDIATE, MAKER)}
        root_self = SoftwareSigner(keys[ROOT], b"")
        root = issue_certificate(subject=Subject(f"{name} Root CA", organization=name),
                                 public_key=keys[ROOT].public_key(), issuer=None, self_signer=root_self,
                                 not_before=now, not_after=now + timedelta(days=3650 * 2),
                                 ca=True, path_length=1, key_usage=CA_USAGE)
        inter = issue_certificate(subject=Subject(f"{name} Issuing CA", organization=name),
                                  public_key=keys[INTERMEDIATE].public_key(), issuer=SoftwareSigner(keys[ROOT], root),
                                  not_before=now, not_after=now + timedelta(days=3650 * 2 - 1), ca=True, path_length=0,
                                  key_usage=CA_USAGE)
        maker = issue_certificate(subject=Subject(f"{name} 电子印章制作中心", organization=name),
                                  public_key=keys[MAKER].public_key(), issuer=SoftwareSigner(keys[INTERMEDIATE], inter),
                                  not_before=now, not_after=now + timedelta(days=3650), key_usage=SIGNER_USAGE)
        for key_name, cert in ((ROOT, root), (INTERMEDIATE, inter), (MAKER, maker)):
            if not store.exists(key_name):
                store.create(key_name, pin, keys[key_name])
            store.set_certificate(key_name, cert)
            (directory / f"{key_name}.pem").write_bytes(pem.armor("CERTIFICATE", cert))
        return cls(directory)

    def trust_store(self) -> TrustStore:
        return TrustStore([self.root_der], [self.intermediate_der])

    def maker_signer(self) -> Signer:
        return self._signer(MAKER)

    def _issuing_signer(self) -> Signer:
        return self._signer(INTERMEDIATE)

    def _signer(self, key_id: str) -> Signer:
        # Unlocked once per DemoCA object: each unlock costs a scrypt run (~35 ms), and tests and
        # demos issue many certificates in a row.
        signer = self._signers.get(key_id)
        if signer is None:
            signer = self._signers[key_id] = self._store.signer(key_id, self._pin)
        return signer

    def issue(self, subject: Subject, public_key, not_before: datetime | None = None,
              not_after: datetime | None = None) -> bytes:
        return issue_certificate(subject=subject, public_key=public_key, issuer=self._issuing_signer(),
                                 not_before=not_before, not_after=not_after, key_usage=SIGNER_USAGE)

    def issue_unit_signer(self, unit_name: str, credit_code: str, not_before: datetime | None = None,
                          not_after: datetime | None = None) -> tuple[SM2PrivateKey, bytes]:
        key = SM2PrivateKey.generate()
        subject = Subject(unit_name, organization=unit_name, organization_identifier=credit_code)
        return key, self.issue(subject, key.public_key(), not_before, not_after)

    def issue_tsa(self, name: str, not_before: datetime | None = None,
                  not_after: datetime | None = None) -> tuple[SM2PrivateKey, bytes]:
        """A time-stamp authority's key and certificate: digitalSignature + nonRepudiation, and a
        critical extendedKeyUsage of id-kp-timeStamping only (RFC 3161 §2.3)."""
        key = SM2PrivateKey.generate()
        cert = issue_certificate(subject=Subject(name, organization=name), public_key=key.public_key(),
                                 issuer=self._issuing_signer(), not_before=not_before, not_after=not_after,
                                 key_usage=SIGNER_USAGE, extended_key_usage=("1.3.6.1.5.5.7.3.8",))
        return key, cert

    def issue_person_signer(self, name: str, id_number: str, not_before: datetime | None = None,
                            not_after: datetime | None = None) -> tuple[SM2PrivateKey, bytes]:
        key = SM2PrivateKey.generate()
        return key, self.issue(Subject(name, serial_number=id_number), key.public_key(), not_before, not_after)
