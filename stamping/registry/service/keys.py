"""The registry's key wiring: its key store, the CA that certifies seal signers and makes seals, and
the audit log's own key.

Decisions:

* **Given, else the installation's, and only when first needed**: a composition root may pass a key
  store and a CA; otherwise they come from ``kernel.keys`` (``<state>/keys``, ``<state>/ca``) on
  first use, so read-only uses such as status lookups never open the key store or touch a CA.
* **No demo CA in production**: ``kernel.keys.installation_ca`` makes one only on the embedded
  stack; elsewhere a missing CA refuses the step (:class:`CANotConfigured`, "run `sealflow ca init`").
* **A collaborator, not part of the lifecycle**: :class:`RegistryKeys` knows nothing of seals; the
  registry asks it for a key store, a CA and the audit signer.
* **The audit key is a service key** (``kernel.keys.service_signer``): its PIN is never typed and a
  mismatch never counts as a wrong-PIN try; the key and its certificate are made on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernel.settings import Settings
from stamping.registry.errors import CANotConfigured

if TYPE_CHECKING:
    from gmpki.gm.sm2 import SM2PublicKey
    from gmpki.keys.signer import Signer
    from gmpki.keys.store import KeyStore
    from gmpki.pki.ca import DemoCA


class RegistryKeys:
    """The key store, CA and audit signer of one registry (see the module docstring)."""

    def __init__(self, settings: Settings, keystore: KeyStore | None = None, ca: DemoCA | None = None) -> None:
        self.settings = settings
        self._keystore = keystore
        self._ca = ca

    @property
    def keystore(self) -> KeyStore:
        if self._keystore is None:
            from kernel.keys import key_store

            self._keystore = key_store(self.settings)
        return self._keystore

    @property
    def ca(self) -> DemoCA:
        if self._ca is None:
            from kernel.keys import CANotInstalled, installation_ca  # given by the composition root, else ours

            try:
                self._ca = installation_ca(self.settings)
            except CANotInstalled as exc:  # production without a CA: refused like any registry step
                raise CANotConfigured(str(exc)) from None
        return self._ca

    def audit_pin(self) -> str:
        from kernel.keys import service_pin

        return service_pin(self.settings, self.settings.audit_key_id, self.settings.audit_key_pin)

    def audit_signer(self) -> Signer:
        """The audit key's signer; the key (and its certificate from the CA) is created on first use."""
        from gmpki.pki.certs import Subject

        key_id, pin = self.settings.audit_key_id, self.audit_pin()
        if not self.keystore.exists(key_id):
            public = self.keystore.create(key_id, pin)
            self.keystore.set_certificate(key_id, self.ca.issue(Subject("SealFlow audit log", organization="SealFlow"),
                                                                public))
        from kernel.keys import service_signer  # the one service-key path (no wrong-PIN tries)

        return service_signer(self.keystore, self.settings, key_id, pin)

    def audit_public_key(self) -> SM2PublicKey:
        """The audit key's public key (creating the key on first use)."""
        self.audit_signer()
        return self.keystore.public_key(self.settings.audit_key_id)
