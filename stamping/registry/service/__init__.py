"""The seal registry's lifecycle (印章全生命周期): apply, review level by level, make, change,
renew, expire, revoke, report lost, resume; status lookups for 验章; signers and use records.

Each step runs in one database transaction that also writes its audit entry and, for making,
change, renewal, expiry, revocation, suspension and resumption, its filing record
(``filing.outbox.enqueue``): the three commit or roll back together.

:class:`SealRegistry` is one class put together from its topics, one module each:

=====================  ==================================================================
``base``               database, clock, transactions and races, look-ups, role checks
``keys``               key store, CA and the audit log's key (:class:`RegistryKeys`)
``identity_checks``    身份核验 against the identity registers
``administration``     first administrator, authentication, units, persons, users, roles
``applications``       申领 and 逐级审核
``making``             制作, 变更, 续期
``endings``            expiry, revocation, key destruction, loss, resumption
``use``                signers, use records, status lookups
``payloads``           filing and audit payloads
``queries``            export, listings, ``show``
=====================  ==================================================================

Design decisions:

* **Mixins over one base** rather than free functions: callers keep one object
  (``from stamping.registry.service import SealRegistry``) with the same methods as before, and each
  topic module reads on its own; the helpers of ``base`` are the registry's own, used by nothing
  outside it. Each module's docstring gives the decisions of its topic (why change makes a new esID,
  why each seal version has its own key, why expiry is a job…).
* **Who acts comes from authentication** (``authenticate``): every method takes the authenticated
  user name as ``actor``.
"""

from __future__ import annotations

from pathlib import Path

from kernel.settings import Settings
from stamping.registry.errors import RegistryError
from stamping.registry.service.administration import (
    MIN_CREDENTIAL,
    Administration,
    anyone_can_authenticate,
    credential_matches,
    credential_record,
)
from stamping.registry.service.applications import Applications
from stamping.registry.service.endings import Endings
from stamping.registry.service.making import Making
from stamping.registry.service.payloads import CertInfo, cert_info, filing_payload
from stamping.registry.service.queries import Queries
from stamping.registry.service.use import Use


class SealRegistry(Administration, Applications, Making, Endings, Use, Queries):
    """The seal registry over a SealFlow database (see the module docstring).

    ``SealRegistry(session_factory, settings, keystore=None, ca=None, *, clock=…, identity=None)``:
    ``keystore`` and ``ca`` default to the key store and the CA of ``settings`` (``<state>/keys``,
    ``<state>/ca``), opened when first needed: read-only uses such as :meth:`status_at` never touch them.
    """

    filing_payload = staticmethod(filing_payload)


def state_file(settings: Settings) -> Path:
    """Where ``bootstrap_demo`` leaves its summary (esIDs, users; never PINs)."""
    return settings.state_dir / "registry" / "demo.json"


__all__ = ["MIN_CREDENTIAL", "CertInfo", "RegistryError", "SealRegistry", "anyone_can_authenticate", "cert_info",
           "credential_matches", "credential_record", "state_file"]
