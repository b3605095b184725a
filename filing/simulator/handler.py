"""The platform simulator over HTTP: the ``sealflow-filing/1`` routes (file one, file a batch,
list, health, the platform certificate) and the loopback-only admin routes (faults, stats).

Decisions: every request is answered with a JSON reason (401 bad signature, 422 invalid record,
409 conflict, 411/413 on the body's length); faults are applied before a request is handled and,
for dropped or damaged replies, after its records are committed — as a real platform can fail.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from filing import protocol as p
from filing.simulator.platform import Platform
from kernel.serving import send_body

MAX_LIST_LIMIT = 1000


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing ---
    def _reply(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        send_body(self, status, body, content_type)

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
