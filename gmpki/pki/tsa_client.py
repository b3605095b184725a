"""The HTTP client of a time-stamp authority (RFC 3161 §3.4: application/timestamp-query over HTTP).

``TsaClient(url).timestamp(signature_value)`` sends SM3(signature value) with a fresh nonce and
returns the token once the reply is checked to answer this very request (same imprint, same
nonce). Whether the TSA is *trusted* is not decided here: verification does that with the trust
roots (:func:`gmpki.pki.timestamp.verify_token`).

Decisions:
- one kept-alive connection per thread (``http.client``; urllib3 measured ~10 ms more per token
  here): a batch asks for one token per signature, and a new TCP connection each time would
  cost more than the token itself;
- a few quick retries on connection errors and 502/503/504 (the TSA restarting), never on a
  refusal (a TimeStampResp with status rejection);
- errors say which URL failed and what to run; the configured URL is the provincial TSA in
  production and the embedded stack's ``stamping.tsa.server`` otherwise (``Settings.tsa_url``).

:class:`Timestamper` is what the stampers take; :class:`gmpki.pki.timestamp.TimestampAuthority`
satisfies it too (an in-process TSA, for tools that hold the TSA key themselves).
"""

from __future__ import annotations

import http.client
import secrets
import threading
import time
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from gmpki.pki.timestamp import SM3, TimestampError, imprint_of, request_der, token_from_response

__all__ = ["QUERY_TYPE", "REPLY_TYPE", "Timestamper", "TsaClient", "TsaUnavailable"]

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REPLY_BYTES = 256 * 1024


@runtime_checkable
class Timestamper(Protocol):
    def timestamp(self, signature_value: bytes) -> bytes:
        """A DER TimeStampToken over SM3(``signature_value``)."""
        ...


class TsaUnavailable(TimestampError):
    """The TSA could not be reached or answered garbage; the message names the URL."""


class TsaClient:
    """A Timestamper over HTTP, thread-safe, with one kept-alive connection per thread."""

    def __init__(self, url: str, timeout: float = 10.0, retries: int = 2) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"TSA URL {url!r} must be http(s)://host[:port]/path")
        self.url = url
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._retries = max(0, retries)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[http.client.HTTPConnection] = []
        self.requests = 0
        self.max_token_bytes = 0  # the largest token seen: PDF stamping sizes its /Contents reserve by it

    def __repr__(self) -> str:
        return f"TsaClient({self.url!r})"

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _post(self, body: bytes) -> tuple[int, str, bytes]:
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(0.2 * attempt)
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers={"Content-Type": QUERY_TYPE})
                reply = conn.getresponse()
                data = reply.read(MAX_REPLY_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                # A kept-alive connection the server closed, a restart, a refused connect: a fresh
                # connection and a short wait, a few times.
                self._drop()
                last = exc
                continue
            if reply.will_close:
                self._drop()
            if reply.status in (502, 503, 504) and attempt < self._retries:
                continue
            return reply.status, (reply.getheader("Content-Type") or ""), data
        raise TsaUnavailable(f"time-stamp authority {self.url} cannot be reached ({type(last).__name__}: {last}); "
                             "start the embedded stack (`sealflow stack up`) or set SEALFLOW_TSA_URL")

    def timestamp(self, signature_value: bytes) -> bytes:
        imprint = imprint_of(signature_value, SM3)
        nonce = secrets.randbits(63)
        status, ctype, data = self._post(request_der(imprint, nonce, SM3, cert_req=True))
        with self._lock:
            self.requests += 1
        if status != 200:
            raise TsaUnavailable(f"time-stamp authority {self.url} answered HTTP {status}")
        ctype = ctype.split(";")[0].strip().lower()
        if ctype != REPLY_TYPE:
            raise TsaUnavailable(f"time-stamp authority {self.url} answered {ctype or 'no content type'}, "
                                 f"not {REPLY_TYPE}")
        if len(data) > MAX_REPLY_BYTES:
            raise TsaUnavailable(f"time-stamp authority {self.url} sent more than {MAX_REPLY_BYTES} bytes")
        token = token_from_response(data, imprint, nonce, SM3)
        with self._lock:
            self.max_token_bytes = max(self.max_token_bytes, len(token))
        return token

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
