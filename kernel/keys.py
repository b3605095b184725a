"""The installation's keys and trust: its key store (where, under which KEK), its service keys and its
trust anchors, from ``Settings``.

``gmpki`` holds the key store itself and takes plain arguments (a directory, a KEK); this module is the
one place that says which directory and which KEK an installation uses, and how a service key — the
archiving unit's, the filing system's, the audit log's, the backups' — is opened: with a PIN nobody
types (configured, else generated 0600 under the state directory), never counting a wrong-PIN try.
Every caller goes through :func:`key_store` and :func:`service_signer`, so the two can never disagree.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gmpki.gm.sm2 import SM2PublicKey
from gmpki.keys.signer import Signer
from gmpki.keys.store import KeyStore, KeyStoreError, derive_kek, generated_pin, read_kek_material
from gmpki.pki.trust import TrustStore
from kernel.settings import Settings

if TYPE_CHECKING:
    from gmpki.pki.ca import DemoCA


def kek_material(settings: Settings) -> bytes:
    """The KEK as configured (``SEALFLOW_KEK`` or the 0600 KEK file, made if absent): what escrow splits."""
    return read_kek_material(settings.kek, settings.resolved_kek_file)


def load_kek(settings: Settings) -> bytes:
    """The 16-byte SM4 key-encryption key derived from the configured KEK material."""
    return derive_kek(kek_material(settings))


def key_store(settings: Settings) -> KeyStore:
    """The installation's key store: ``<state>/keys`` under the configured KEK."""
    return KeyStore(settings.keystore_dir, load_kek(settings))


def custody_path(settings: Settings, es_id: str) -> Path:
    """Where batch custody keeps a seal's PIN (SM4-GCM under the KEK) for approved batches."""
    return settings.state_dir / "custody" / f"{base64.urlsafe_b64encode(es_id.encode()).decode()}.json"


def service_pin(settings: Settings, key_id: str, configured: str = "") -> str:
    """The PIN of a system's own key (archiving unit, filing system…): the configured one, else one
    generated on first use and kept 0600 in the state directory (the KEK still protects the key)."""
    return configured or generated_pin(settings.state_dir / "pins" / f"{key_id}.pin")


def service_key_ids(settings: Settings) -> set[str]:
    """The system's own keys (archiving unit, filing system, audit log, backups): no person holds their PIN."""
    return {settings.archive_key_id, settings.filing_key_id, settings.audit_key_id, settings.backup_key_id}


def service_signer(store: KeyStore, settings: Settings, key_id: str, configured_pin: str = "") -> Signer:
    """The signer of a service key: the ONE way DAGs and CLI open the archiving unit's, the filing
    system's, the audit log's and the backups' keys (issue 14, item 2).

    The PIN is never typed: it is resolved by :func:`service_pin` (configured, else the generated
    0600 file). A PIN that does not open the key means two places resolve it differently — a
    configuration error, raised as ``ServicePinMismatch`` without counting a wrong-PIN try, so
    no caller can ever lock a service key. Only the service key ids are opened this way: it is no
    oracle for seal or signer keys, whose PINs people type and whose tries stay counted.
    """
    if key_id not in service_key_ids(settings):
        raise KeyStoreError(f"{key_id} is not one of this installation's service keys")
    return store.service_signer(key_id, service_pin(settings, key_id, configured_pin))


def ensure_service_signer(settings: Settings, key_id: str, configured_pin: str,
                          issue_certificate: Callable[[SM2PublicKey], bytes]) -> Signer:
    """The signer of a service key, creating the key and its certificate on first use.

    ``issue_certificate(public_key) -> DER`` issues the certificate (e.g. the demo CA's ``issue``).
    """
    store = key_store(settings)
    if not store.exists(key_id):
        public = store.create(key_id, service_pin(settings, key_id, configured_pin))
        store.set_certificate(key_id, issue_certificate(public))
    return service_signer(store, settings, key_id, configured_pin)


class CANotInstalled(RuntimeError):
    """No CA in ``<state>/ca`` on an install that is not the embedded stack: SealFlow does not make one."""


def installation_ca(settings: Settings) -> DemoCA:
    """The installation's seal-making CA: the one in ``<state>/ca``.

    SealFlow ships no client for a licensed CA, so every installation (the demo, the embedded stack, the
    compose deployment) issues from this local CA; this function is the one place that says so — the
    registry, the archiving unit's, filing system's and backups' keys all get their CA here — so a
    licensed CA replaces it in one place.

    Only the embedded stack (``settings.embedded``: demo, tests, one machine) makes the demo CA on first
    use. Any other install must have set its CA up on purpose (``sealflow ca init``, compose's
    airflow-init): a CA made silently on first use would certify seals with keys nobody chose to trust,
    so a missing one is :class:`CANotInstalled`, saying what to run."""
    from gmpki.pki.ca import MAKER, DemoCA

    directory = settings.state_dir / "ca"
    if settings.embedded:
        return DemoCA.create(directory)
    if not (directory / f"{MAKER}.pem").exists():
        raise CANotInstalled(f"no CA in {directory}: this install is not the embedded stack (SEALFLOW_S3_ENDPOINT "
                             "is set), so SealFlow does not make one on first use; run `sealflow ca init` to set "
                             "the installation's CA up (docs/crypto-and-keys.md)")
    return DemoCA.load(directory)


def installation_trust(settings: Settings, ca: DemoCA | None = None) -> TrustStore | None:
    """The installation's trust anchors, built one way for every 验章: the CA's root and issuing CA —
    ``ca`` (a registry's own) or else the installation CA when ``<state>/ca`` holds one — plus the roots and
    intermediates of ``SEALFLOW_TRUST_ROOTS``; None when there is neither. Never creates a CA."""
    roots: list[bytes] = []
    intermediates: list[bytes] = []
    ca_dir = settings.state_dir / "ca"
    if ca is None and (ca_dir / "seal-maker.pem").exists():
        from gmpki.pki.ca import DemoCA

        ca = DemoCA.load(ca_dir)
    if ca is not None:
        roots.append(ca.root_der)
        intermediates.append(ca.intermediate_der)
    if settings.trust_roots:
        configured = TrustStore.from_paths(settings.trust_roots)
        roots += configured.roots
        intermediates += configured.intermediates
    return TrustStore(roots, intermediates) if roots else None
