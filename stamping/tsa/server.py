"""The embedded time-stamp authority (时间戳服务): an RFC 3161 TSA over HTTP, SM2/SM3 tokens.

Run: ``python -m stamping.tsa.server --host 127.0.0.1 --port 18610 --dir var/tsa [--ca var/ca]``.
``sealflow stack up`` starts it like the platform simulator; in production SealFlow talks to the
provincial TSA instead (``SEALFLOW_TSA_URL``) and this program is not run.

- ``POST /`` (or ``/tsa``) with ``Content-Type: application/timestamp-query`` and a DER
  TimeStampReq → ``200 application/timestamp-reply`` with a DER TimeStampResp (granted, or a
  rejection naming badAlg / badDataFormat / unacceptedPolicy); other content types → 415.
- ``GET /health`` → ``{"ok": true, ...}``; ``GET /tsa-certificate`` → the TSA certificate (PEM).

Identity: on first start the TSA makes an SM2 key (``tsa-key.pem``, 0600) and has the project CA
(``--ca``, the DemoCA of the embedded stack, default ``<dir>/../ca``) issue its certificate with a
critical extendedKeyUsage of id-kp-timeStamping; both are kept in ``--dir`` and reused. Tokens
carry the TSA and issuing-CA certificates, so a verifier needs only the root. genTime comes
from this machine's clock (a real TSA synchronises with the national time service).
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import pem

from gmpki.pki.timestamp import TimestampAuthority
from kernel.files import write_atomic
from kernel.serving import send_body, serve_until_stopped

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REQUEST_BYTES = 16 * 1024
TSA_NAME = "SealFlow Time-Stamp Authority"


def tsa_identity(directory: Path, ca_dir: Path) -> TimestampAuthority:
    """The TSA's signer from ``directory``, made once with a certificate from the CA in ``ca_dir``."""
    from gmpki.gm.sm2 import SM2PrivateKey
    from gmpki.keys.signer import SoftwareSigner
    from gmpki.pki.ca import DemoCA

    key_path, cert_path, chain_path = (directory / "tsa-key.pem", directory / "tsa-cert.pem",
                                       directory / "tsa-chain.pem")
    if not (key_path.exists() and cert_path.exists() and chain_path.exists()):
        ca = DemoCA.create(ca_dir)
        key, cert = ca.issue_tsa(TSA_NAME)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(key_path, key.to_pkcs8_pem())
        chain_path.write_bytes(pem.armor("CERTIFICATE", ca.intermediate_der))
        cert_path.write_bytes(pem.armor("CERTIFICATE", cert))
    if key_path.stat().st_mode & 0o077:
        raise SystemExit(f"{key_path}: the TSA key is readable by others; chmod 600 it")
    key = SM2PrivateKey.from_pkcs8(key_path.read_bytes())
    cert = pem.unarmor(cert_path.read_bytes())[2]
    chain = [der for _, _, der in pem.unarmor(chain_path.read_bytes(), multiple=True)]
    return TimestampAuthority(SoftwareSigner(key, cert), chain)


class Handler(BaseHTTPRequestHandler):
    server: TsaServer
    protocol_version = "HTTP/1.1"  # keep-alive: a batch reuses its connections
    # Headers and body go out as two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms per token on a kept-alive connection).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        send_body(self, status, body, content_type)

    def _text(self, status: int, text: str) -> None:
        self._reply(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/health":
            body = json.dumps({"ok": True, "tsa": TSA_NAME, "policy": self.server.authority.policy}).encode()
            return self._reply(200, body, "application/json")
        if path == "/tsa-certificate":
            return self._reply(200, pem.armor("CERTIFICATE", self.server.authority.certificate),
                               "application/x-pem-file")
        return self._text(404, "not found; POST an application/timestamp-query to /")

    def do_POST(self) -> None:
        if self.path.split("?")[0].rstrip("/") not in ("", "/tsa"):
            return self._text(404, "not found; POST an application/timestamp-query to /")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length") or "-1")
        except ValueError:
            length = -1
        if not 0 < length <= MAX_REQUEST_BYTES:
            self.close_connection = True
            return self._text(413 if length > MAX_REQUEST_BYTES else 411, "a TimeStampReq with a Content-Length "
                              f"of 1..{MAX_REQUEST_BYTES} bytes is expected")
        body = self.rfile.read(length)
        if ctype != QUERY_TYPE:
            return self._text(415, f"Content-Type must be {QUERY_TYPE}")
        self._reply(200, self.server.authority.respond(body), REPLY_TYPE)


class TsaServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], authority: TimestampAuthority, verbose: bool = False) -> None:
        self.authority = authority
        self.verbose = verbose
        super().__init__(address, Handler)


def make_server(host: str, port: int, directory: Path, ca_dir: Path | None = None, verbose: bool = False) -> TsaServer:
    return TsaServer((host, port), tsa_identity(directory, ca_dir or directory.parent / "ca"), verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stamping.tsa.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18610)
    parser.add_argument("--dir", type=Path, required=True, help="where the TSA key and certificate are kept")
    parser.add_argument("--ca", type=Path, help="the DemoCA directory that issues the TSA certificate "
                                                "(default: <dir>/../ca)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.dir, args.ca, args.verbose)
    serve_until_stopped(server, "time-stamp authority", args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
