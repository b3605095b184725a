"""A national-platform simulator (国家政务服务平台备案接口模拟器) speaking ``sealflow-filing/1``.

Run: ``python -m filing.simulator --host 127.0.0.1 --port 18600 --db var/platform/platform.db
--trust ROOT.pem`` […] [``--ca DIR``] [``--identity-dir DIR``] [fault flags]. Senders must present a
certificate that chains to a ``--trust`` root (401 otherwise): the simulator refuses to start
without one, unless ``--accept-any-sender`` says out loud that any self-signed sender will do
(protocol tests only; neither the embedded stack nor compose uses it). It checks request signatures (401), refuses
invalid records (422 with a reason) and reused record ids with another body (409), stores what
it accepts durably in SQLite, answers with receipts signed by its own SM2 key, and answers a
resend with the original receipt byte for byte.

Its key and certificate live in ``--identity-dir`` (default: next to the database;
``platform-key.pem``, ``platform-cert.pem``), made on first start by a DemoCA (``--ca DIR``, or one
of its own in ``<db dir>/ca``) unless given. The certificate is published at
``GET /v1/platform-certificate`` for information only: clients pin it from configuration (the
embedded stack copies the file it made; compose mounts the one the operator generated), never
from the network on first use.

Faults, for tests and demos, set by flags at start or at runtime with ``POST /admin/faults``
``{error_rate, latency_ms, outage, outage_until, malformed_rate, drop_after_commit_rate,
tamper_rate, seed}`` (``GET /admin/faults`` shows them; ``GET /admin/stats`` counts what is
stored). The admin endpoints are for a simulator on a loopback address only (``--no-admin``
turns them off).

It is a program, run with ``python -m``: no module of the domain imports it (the layers test checks).
One module per seam; this package re-exports their public names:

==============  ===================================================================
``faults``      :class:`Faults`, the faults it commits on purpose
``store``       :class:`PlatformStore`, the durable SQLite store of filings and receipts
``platform``    :class:`Platform`, its behaviour apart from HTTP (sender trust, signatures, fault draws)
``handler``     :class:`Handler` and :class:`SimulatorServer`, the HTTP routes
``identity``    :func:`platform_identity`, its key and certificate
``cli``         :func:`make_server` and :func:`main`; ``__main__`` runs it
==============  ===================================================================
"""

from __future__ import annotations

from filing.simulator.cli import DESCRIPTION, main, make_server
from filing.simulator.faults import Faults
from filing.simulator.handler import MAX_LIST_LIMIT, Handler, SimulatorServer
from filing.simulator.identity import platform_identity
from filing.simulator.platform import Platform
from filing.simulator.store import PLATFORM_CREDIT_CODE, PLATFORM_NAME, PlatformStore

__all__ = [
    "DESCRIPTION",
    "MAX_LIST_LIMIT",
    "PLATFORM_CREDIT_CODE",
    "PLATFORM_NAME",
    "Faults",
    "Handler",
    "Platform",
    "PlatformStore",
    "SimulatorServer",
    "main",
    "make_server",
    "platform_identity",
]
