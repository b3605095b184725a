"""``python -m filing.simulator``: the command line, and :func:`make_server` that puts a simulator
together (identity, trust roots, store, faults) for it and for tests.

Decision: the simulator refuses to start without a ``--trust`` root for sender certificates unless
``--accept-any-sender`` says so out loud (protocol tests only); SIGTERM shuts it down cleanly and
SIGUSR1 dumps every thread's stack.
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
from dataclasses import fields
from pathlib import Path

from filing import protocol as p
from filing.simulator.faults import Faults
from filing.simulator.handler import SimulatorServer
from filing.simulator.identity import platform_identity
from filing.simulator.platform import Platform
from filing.simulator.store import PlatformStore
from kernel.serving import serve_until_stopped

DESCRIPTION = "A national-platform simulator (国家政务服务平台备案接口模拟器) speaking ``sealflow-filing/1``."


def make_server(
    host: str,
    port: int,
    db: Path,
    trust: list[str] | None = None,
    ca_dir: Path | None = None,
    faults: Faults | None = None,
    admin: bool = True,
    verbose: bool = False,
    *,
    accept_any_sender: bool = False,
    identity_dir: Path | None = None,
) -> SimulatorServer:
    if not trust and not accept_any_sender:
        raise ValueError("no --trust root for sender certificates: give the root CA that issues the sending "
                         "systems' certificates (--trust ROOT.pem), or --accept-any-sender for protocol tests")
    signer, cert_der = platform_identity(identity_dir or db.parent, ca_dir)
    trust_store = None
    if trust:
        from gmpki.pki.trust import TrustStore

        trust_store = TrustStore.from_paths(trust)
    platform = Platform(PlatformStore(db), signer, faults or Faults(), trust_store)
    return SimulatorServer((host, port), platform, p.der_to_pem(cert_der), admin, verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m filing.simulator", description=DESCRIPTION)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18600)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file; key and certificate go next to it")
    parser.add_argument("--trust", action="append", default=[], help="root certificate senders must chain to "
                                                                      "(required unless --accept-any-sender)")
    parser.add_argument("--accept-any-sender", action="store_true",
                        help="accept any sender certificate, even self-signed (protocol tests only)")
    parser.add_argument("--identity-dir", type=Path, help="where platform-key.pem and platform-cert.pem are "
                                                          "(default: next to --db)")
    parser.add_argument("--ca", type=Path, help="DemoCA directory that issues the platform certificate")
    parser.add_argument("--no-admin", action="store_true", help="turn off /admin endpoints")
    parser.add_argument("--verbose", action="store_true")
    for f in fields(Faults):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "outage":
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=int if f.name in {"latency_ms", "seed"} else float, default=f.default)
    args = parser.parse_args(argv)
    faults = Faults()
    faults.update({f.name: getattr(args, f.name) for f in fields(Faults)})
    try:
        server = make_server(args.host, args.port, args.db, args.trust, args.ca, faults, not args.no_admin,
                             args.verbose, accept_any_sender=args.accept_any_sender, identity_dir=args.identity_dir)
    except ValueError as exc:
        parser.error(str(exc))
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` dumps every thread's stack to stderr
    try:
        serve_until_stopped(server, "filing simulator", args.host)
    finally:
        server.platform.store.close()
    return 0
