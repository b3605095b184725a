"""The platform simulator's behaviour, independent of the HTTP plumbing: who may send (the
``--trust`` roots), whether a request signature verifies, and when a fault strikes.

Decision: the random draws of fault injection come from one seeded generator behind a lock, so a
``seed`` makes a faulty run repeatable; they are not security.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from typing import Any

from filing import protocol as p
from filing.simulator.faults import Faults
from filing.simulator.store import PlatformStore


class Platform:
    """The simulator's behaviour, independent of the HTTP plumbing."""

    def __init__(self, store: PlatformStore, signer: Any, faults: Faults, trust: Any | None = None) -> None:
        self.store = store
        self.signer = signer
        self.faults = faults
        self.trust = trust
        self.random = random.Random(faults.seed)  # fault injection, not security
        self._random_lock = threading.Lock()
        self._trusted: dict[bytes, bool] = {}

    def set_faults(self, changes: dict[str, Any]) -> None:
        self.faults.update(changes)
        if "seed" in changes:
            with self._random_lock:
                self.random = random.Random(self.faults.seed)

    def roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._random_lock:
            return self.random.random() < rate

    def check_sender(self, cert_der: bytes) -> None:
        """Refuse a sender certificate that does not chain to the ``--trust`` roots (the server was
        started with ``--accept-any-sender`` when there are none)."""
        if self.trust is None:
            return
        ok = self._trusted.get(cert_der)
        if ok is None:
            result = self.trust.validate(cert_der, datetime.now(UTC))
            ok = self._trusted[cert_der] = bool(result.ok)
        if not ok:
            raise p.SignatureInvalid("sender certificate is not trusted")

    def verify(self, cert_der: bytes, signature: bytes, data: bytes) -> None:
        try:
            key = p.public_key(cert_der)
        except Exception as exc:  # any parser failure means the certificate is refused
            raise p.SignatureInvalid("unreadable sender certificate") from exc
        if not key.verify(signature, data):
            raise p.SignatureInvalid("request signature does not verify")
