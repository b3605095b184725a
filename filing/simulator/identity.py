"""The platform simulator's own key and certificate, made once by a DemoCA and kept in its
identity folder (``platform-key.pem`` readable by its owner only, ``platform-cert.pem``).

Decision: clients pin the certificate from configuration (the embedded stack copies the file made
here; compose mounts the one the operator generated), never from the network on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filing import protocol as p
from filing.simulator.store import PLATFORM_CREDIT_CODE, PLATFORM_NAME
from kernel.files import write_atomic


def platform_identity(state_dir: Path, ca_dir: Path | None = None) -> tuple[Any, bytes]:
    """The simulator's signer and certificate (DER), made once and kept in ``state_dir``."""
    from gmpki.gm.sm2 import SM2PrivateKey
    from gmpki.keys.signer import SoftwareSigner

    key_path, cert_path = state_dir / "platform-key.pem", state_dir / "platform-cert.pem"
    if key_path.exists() and cert_path.exists():
        key = SM2PrivateKey.from_pkcs8(key_path.read_bytes())
        cert_der = p.pem_to_der(cert_path.read_bytes())
        return SoftwareSigner(key, cert_der), cert_der
    from gmpki.pki.ca import DemoCA

    ca = DemoCA.create(ca_dir or state_dir / "ca", name="Platform Simulator")
    key, cert_der = ca.issue_unit_signer(PLATFORM_NAME, PLATFORM_CREDIT_CODE)
    state_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(key_path, key.to_pkcs8_pem())
    write_atomic(cert_path, p.der_to_pem(cert_der), mode=0o644)  # the certificate is public
    return SoftwareSigner(key, cert_der), cert_der
