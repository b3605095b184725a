"""Who we are to the platform, and who the platform is to us.

* The sending system's SM2 key lives in the key store (:class:`gmpki.keys.store.KeyStore`) as
  ``Settings.filing_key_id`` with PIN ``Settings.filing_key_pin``; in the embedded stack its
  certificate comes from the DemoCA (:func:`setup_system_identity`). In production, import the
  key and the certificate the platform's operator issued.
* The platform's certificate is pinned in a file (``Settings.platform_cert``, default
  ``<home>/filing/platform-cert.pem``) from configuration, never fetched on first use: in
  production the certificate received from the platform's operator (``sealflow filing setup
  --platform-cert FILE``); on the embedded stack the simulator's certificate file, which the stack
  made itself on this machine; in compose a mounted config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filing.client import PlatformClient
from filing.protocol import der_to_pem, pem_to_der
from kernel.files import write_atomic
from kernel.settings import Settings

SYSTEM_NAME = "SealFlow filing system"
SYSTEM_CREDIT_CODE = "91450000000000000X"


class FilingNotConfigured(RuntimeError):
    """The sending key or the pinned platform certificate is missing; says what to run."""


def platform_cert_path(settings: Settings) -> Path:
    if settings.platform_cert:
        return Path(settings.platform_cert)
    return settings.state_dir / "filing" / "platform-cert.pem"


def load_platform_certificate(settings: Settings) -> bytes:
    path = platform_cert_path(settings)
    if not path.is_file():
        raise FilingNotConfigured(f"{path}: no pinned platform certificate; run `sealflow filing setup`")
    return pem_to_der(path.read_bytes())


def pin_platform_certificate(settings: Settings, source: Path | None = None) -> bytes:
    """Pin the platform certificate from ``source`` (a PEM or DER file from configuration); once
    pinned, return the pinned one unchanged. Never from the network: a certificate fetched from the
    endpoint it should authenticate proves nothing (trust on first use)."""
    path = platform_cert_path(settings)
    if path.is_file():
        return pem_to_der(path.read_bytes())
    if source is None:
        raise FilingNotConfigured(f"{path}: no pinned platform certificate; put the certificate received from the "
                                  "platform's operator there, or run `sealflow filing setup --platform-cert FILE`")
    try:
        der = pem_to_der(Path(source).read_bytes())
    except (OSError, ValueError) as exc:
        raise FilingNotConfigured(f"{source}: cannot read the platform certificate ({exc})") from None
    write_atomic(path, der_to_pem(der))
    return der


def setup_system_identity(settings: Settings, ca_dir: Path | None = None) -> bytes:
    """Create the sending system's key and DemoCA certificate if missing; return the certificate (DER)."""
    from gmpki.pki.ca import DemoCA
    from kernel.keys import installation_ca, key_store, service_signer

    pin = _pin(settings)
    store = key_store(settings)
    if store.exists(settings.filing_key_id):
        return service_signer(store, settings, settings.filing_key_id, pin).certificate
    ca = DemoCA.create(ca_dir) if ca_dir else installation_ca(settings)
    key, cert_der = ca.issue_unit_signer(SYSTEM_NAME, SYSTEM_CREDIT_CODE)
    store.create(settings.filing_key_id, pin, key=key)
    store.set_certificate(settings.filing_key_id, cert_der)
    return cert_der


def _pin(settings: Settings) -> str:
    """The PIN of the sending system's key: the configured one, else the generated 0600 one (the one
    service-key rule of ``kernel.keys.service_pin``; the KEK still protects the key)."""
    from kernel.keys import service_pin

    return service_pin(settings, settings.filing_key_id, settings.filing_key_pin)


def system_signer(settings: Settings, pin: str | None = None) -> Any:
    from gmpki.keys.store import KeyStoreError
    from kernel.keys import key_store, service_signer

    store = key_store(settings)
    if not store.exists(settings.filing_key_id):
        if settings.platform_url:
            raise FilingNotConfigured(f"no key {settings.filing_key_id!r} in the key store; "
                                      "run `sealflow filing setup`")
        setup_system_identity(settings)  # embedded stack: a demo identity from the demo CA on first use
    try:
        # The one service-key path: a PIN that does not open the key never counts a wrong-PIN try.
        return service_signer(store, settings, settings.filing_key_id, pin if pin is not None else _pin(settings))
    except KeyStoreError as exc:  # wrong PIN, locked key: the message names the key, never the PIN
        raise FilingNotConfigured(f"{exc} (SEALFLOW_FILING_KEY_PIN or the connection's password)") from exc


def make_client(settings: Settings, base_url: str | None = None, timeout: float = 30.0) -> PlatformClient:
    """A client from settings: endpoint, our key, the pinned platform certificate."""
    return PlatformClient(
        base_url or settings.resolved_platform_url,
        system_signer(settings),
        load_platform_certificate(settings),
        timeout=timeout,
        system_id=settings.filing_system_id,
    )
