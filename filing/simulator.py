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
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import random
import signal
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from filing import protocol as p

PLATFORM_NAME = "SealFlow national platform simulator"
PLATFORM_CREDIT_CODE = "11100000000000000X"
MAX_LIST_LIMIT = 1000


@dataclass
class Faults:
    """What the simulator does wrong on purpose. Rates are probabilities per request."""

    error_rate: float = 0.0  # answer 503
    latency_ms: int = 0  # sleep before answering
    outage: bool = False  # answer 503 to everything but /admin
    outage_until: float = 0.0  # epoch seconds; an outage window
    malformed_rate: float = 0.0  # answer 200 with a body that is not a receipt
    drop_after_commit_rate: float = 0.0  # store, then close the connection without a reply
    tamper_rate: float = 0.0  # alter a receipt after signing it
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            if name == "outage_until" and isinstance(value, str):
                value = datetime.fromisoformat(value).timestamp()
            if name in {"error_rate", "malformed_rate", "drop_after_commit_rate", "tamper_rate"}:
                value = float(value)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be within 0..1")
            elif name == "latency_ms":
                value = max(0, int(value))
            elif name == "outage":
                value = bool(value)
            elif name == "outage_until":
                value = float(value)
            elif name == "seed" and value is not None:
                value = int(value)
            setattr(self, name, value)

    def in_outage(self) -> bool:
        return self.outage or time.time() < self.outage_until


class PlatformStore:
    """The simulator's durable store: one SQLite file, one writer at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS filings (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                record_id TEXT NOT NULL UNIQUE,
                record_sm3 TEXT NOT NULL,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                subject_seq INTEGER NOT NULL,
                record TEXT NOT NULL,
                sender_cert_sm3 TEXT NOT NULL,
                receipt_id TEXT NOT NULL,
                received_at TEXT NOT NULL,
                receipt BLOB NOT NULL
            )"""
        )
        self.lock = threading.Lock()

    def store(
        self, items: list[tuple[dict[str, Any], bytes, str]], sender_cert_sm3: str, signer: Any
    ) -> list[tuple[int, bytes]]:
        """Store each (record, canonical bytes, record_sm3) unless there; per item (status, receipt or reason).

        One transaction for all items: they are all stored, or none.
        """
        results: list[tuple[int, bytes]] = []
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for record, canon, digest in items:
                    row = self._db.execute(
                        "SELECT record_sm3, receipt FROM filings WHERE record_id = ?", (record["record_id"],)
                    ).fetchone()
                    if row is not None:
                        if row[0] == digest:
                            results.append((200, bytes(row[1])))
                        else:
                            results.append((409, b"record_id already filed with a different body"))
                        continue
                    results.append((201, self._insert(record, canon, digest, sender_cert_sm3, signer)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return results

    def _insert(self, record: dict[str, Any], canon: bytes, digest: str, sender_cert_sm3: str, signer: Any) -> bytes:
        receipt_id = "RC" + uuid.uuid4().hex
        received_at = datetime.now(UTC).isoformat()
        body = {
            "receipt_id": receipt_id,
            "record_id": record["record_id"],
            "received_at": received_at,
            "record_sm3": digest,
            "platform": PLATFORM_NAME,
        }
        receipt = p.canonical(p.make_receipt(body, signer))
        self._db.execute(
            "INSERT INTO filings (record_id, record_sm3, kind, subject, subject_seq, record, sender_cert_sm3,"
            " receipt_id, received_at, receipt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["record_id"],
                digest,
                record["kind"],
                record["subject"],
                record["subject_seq"],
                canon.decode("utf-8"),
                sender_cert_sm3,
                receipt_id,
                received_at,
                receipt,
            ),
        )
        return receipt

    def listing(self, since: int, limit: int) -> dict[str, Any]:
        with self.lock:
            rows = self._db.execute(
                "SELECT seq, record_id, kind, subject, subject_seq, record_sm3, receipt_id, received_at FROM filings"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit),
            ).fetchall()
        keys = ("seq", "record_id", "kind", "subject", "subject_seq", "record_sm3", "receipt_id", "received_at")
        items = [dict(zip(keys, row, strict=True)) for row in rows]
        return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}

    def stats(self) -> dict[str, Any]:
        """What is stored, and anything filed twice: a record id held more than once, or one record of a
        subject (its kind, subject and sequence number) held under two record ids."""
        with self.lock:
            total, distinct = self._db.execute("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM filings").fetchone()
            (per_id,) = self._db.execute(
                "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM filings GROUP BY record_id)").fetchone()
            (twice,) = self._db.execute(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM filings"
                " GROUP BY kind, subject, subject_seq HAVING COUNT(*) > 1)").fetchone()
            contents = self._db.execute("SELECT kind, subject, record FROM filings").fetchall()
        # The same event filed under a second record id (e.g. re-queued after a restore): same kind,
        # subject and payload. Each extra copy counts once.
        seen: dict[str, int] = {}
        for kind, subject, record in contents:
            payload = json.dumps(json.loads(record).get("payload"), sort_keys=True, ensure_ascii=False)
            key = f"{kind}\x00{subject}\x00{payload}"
            seen[key] = seen.get(key, 0) + 1
        same_content = sum(n - 1 for n in seen.values())
        return {"records": total, "distinct_record_ids": distinct, "max_records_per_id": per_id,
                "same_content_twice": same_content, "same_subject_seq_twice": twice}

    def close(self) -> None:
        with self.lock:
            self._db.close()


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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing ---
    def _reply(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._reply(status, json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8"))

    def _error(self, status: int, error: str, reason: str) -> None:
        self._json(status, {"error": error, "reason": reason})

    def _read_body(self, limit: int) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._error(411, "length_required", "Content-Length is required")
            return None
        size = int(length)
        if size > limit:
            self.close_connection = True
            self._error(413, "too_large", f"body of {size} bytes exceeds {limit}")
            return None
        return self.rfile.read(size)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _faulty(self) -> bool:
        """Apply latency, outage and random errors; True when a fault reply was sent."""
        platform = self.server.platform
        faults = platform.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.in_outage():
            self._error(503, "outage", "platform is down (simulated outage)")
            return True
        if platform.roll(faults.error_rate):
            self._error(503, "unavailable", "simulated error")
            return True
        return False

    # --- routes ---
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/admin/") and self.server.admin:
            if url.path == "/admin/faults":
                return self._json(200, asdict(self.server.platform.faults))
            if url.path == "/admin/stats":
                return self._json(200, self.server.platform.store.stats())
        if url.path == "/v1/platform-certificate":
            return self._reply(200, self.server.cert_pem, "application/x-pem-file")
        if self._faulty():
            return None
        if url.path == "/v1/health":
            return self._json(200, {"status": "ok", "protocol": p.PROTOCOL})
        if url.path == "/v1/filings":
            query = parse_qs(url.query)
            try:
                since = int(query.get("since", ["0"])[0])
                limit = min(MAX_LIST_LIMIT, max(1, int(query.get("limit", ["500"])[0])))
            except ValueError:
                return self._error(400, "bad_query", "since and limit must be integers")
            return self._json(200, self.server.platform.store.listing(since, limit))
        return self._error(404, "not_found", url.path)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/admin/faults" and self.server.admin:
            body = self._read_body(64 * 1024)
            if body is None:
                return None
            try:
                self.server.platform.set_faults(json.loads(body or b"{}"))
            except (ValueError, TypeError) as exc:
                return self._error(400, "bad_faults", str(exc))
            return self._json(200, asdict(self.server.platform.faults))
        if url.path == "/v1/filings":
            body = self._read_body(p.MAX_BODY_BYTES)
            if body is None or self._faulty():
                return None
            return self._file_one(body)
        if url.path == "/v1/filings:batch":
            body = self._read_body(p.MAX_BATCH_BODY_BYTES)
            if body is None or self._faulty():
                return None
            return self._file_batch(body)
        return self._error(404, "not_found", url.path)

    def _sender(self) -> bytes:
        cert_b64 = self.headers.get(p.HEADER_CERT)
        if not cert_b64:
            raise p.SignatureInvalid(f"missing {p.HEADER_CERT}")
        cert = p.unb64(cert_b64, p.HEADER_CERT)
        self.server.platform.check_sender(cert)
        return cert

    def _parse_record(self, raw: Any) -> tuple[dict[str, Any], bytes]:
        record = p.validate_record(raw)
        try:
            return record, p.canonical(record)
        except p.ProtocolError as exc:
            raise p.RecordInvalid(str(exc)) from exc

    def _file_one(self, body: bytes) -> None:
        platform = self.server.platform
        try:
            cert = self._sender()
            signature = p.unb64(self.headers.get(p.HEADER_SIGNATURE, ""), p.HEADER_SIGNATURE)
            try:
                raw = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise p.RecordInvalid(f"body is not JSON: {exc}") from exc
            record, canon = self._parse_record(raw)
            platform.verify(cert, signature, canon)
        except p.SignatureInvalid as exc:
            return self._error(401, "bad_signature", str(exc))
        except p.RecordInvalid as exc:
            return self._error(422, "invalid_record", str(exc))
        except p.ProtocolError as exc:
            return self._error(400, "bad_request", str(exc))
        [(status, out)] = platform.store.store([(record, canon, p.sm3_hex(canon))], p.sm3_hex(cert), platform.signer)
        if status == 409:
            return self._error(409, "conflict", out.decode())
        return self._after_commit(status, out)

    def _after_commit(self, status: int, receipt: bytes) -> None:
        platform = self.server.platform
        if platform.roll(platform.faults.drop_after_commit_rate):
            return self._drop()
        if platform.roll(platform.faults.malformed_rate):
            return self._reply(200, b'{"receipt": ' + receipt[: len(receipt) // 2])
        if platform.roll(platform.faults.tamper_rate):
            receipt = receipt.replace(b'"received_at":"', b'"received_at":"1', 1)
        return self._reply(status, receipt)

    def _file_batch(self, body: bytes) -> None:
        platform = self.server.platform
        try:
            cert = self._sender()
            envelope = json.loads(body)
            items = envelope["records"]
            if not isinstance(items, list) or not 0 < len(items) <= p.MAX_BATCH_RECORDS:
                raise p.ProtocolError(f"records must be a list of 1..{p.MAX_BATCH_RECORDS}")
        except p.SignatureInvalid as exc:
            return self._error(401, "bad_signature", str(exc))
        except (p.ProtocolError, ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            return self._error(400, "bad_request", f"batch body: {exc}")
        results: list[dict[str, Any] | None] = []
        accepted: list[tuple[dict[str, Any], bytes, str]] = []
        slots: list[int] = []
        for i, item in enumerate(items):
            record_id = item.get("record", {}).get("record_id") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict) or not isinstance(item.get("signature"), str):
                    raise p.RecordInvalid("item must be {record, signature}")
                record, canon = self._parse_record(item.get("record"))
                platform.verify(cert, p.unb64(item["signature"], "signature"), canon)
            except p.SignatureInvalid as exc:
                results.append({"record_id": record_id, "status": 401, "reason": str(exc)})
                continue
            except p.ProtocolError as exc:
                results.append({"record_id": record_id, "status": 422, "reason": str(exc)})
                continue
            results.append(None)
            accepted.append((record, canon, p.sm3_hex(canon)))
            slots.append(i)
        stored = platform.store.store(accepted, p.sm3_hex(cert), platform.signer) if accepted else []
        for slot, (record, _, _), (status, out) in zip(slots, accepted, stored, strict=True):
            if status == 409:
                results[slot] = {"record_id": record["record_id"], "status": 409, "reason": out.decode()}
            else:
                result: dict[str, Any] = {"record_id": record["record_id"], "status": status}
                result.update(json.loads(out))
                results[slot] = result
        if platform.roll(platform.faults.drop_after_commit_rate):
            return self._drop()
        if platform.roll(platform.faults.malformed_rate):
            return self._reply(200, b'{"results": [')
        out_body = p.canonical({"results": results})
        if platform.roll(platform.faults.tamper_rate):
            out_body = out_body.replace(b'"received_at":"', b'"received_at":"1', 1)
        return self._reply(200, out_body)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], platform: Platform, cert_pem: bytes, admin: bool, verbose: bool):
        self.platform = platform
        self.cert_pem = cert_pem
        self.admin = admin
        self.verbose = verbose
        super().__init__(address, Handler)


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
    _write_private(key_path, key.to_pkcs8_pem())
    _write_atomic(cert_path, p.der_to_pem(cert_der))
    return SoftwareSigner(key, cert_der), cert_der


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def _write_private(path: Path, data: bytes) -> None:
    import os

    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


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
    parser = argparse.ArgumentParser(prog="python -m filing.simulator", description=__doc__.splitlines()[0])
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
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` dumps every thread's stack to stderr
    print(f"filing simulator listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.platform.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
