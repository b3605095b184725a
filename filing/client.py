"""The client side of ``sealflow-filing/1``: send records, check receipts (回执), list for reconciliation.

:class:`PlatformClient` is the adapter the rest of SealFlow talks to; a province's own
protocol would be another class with the same ``send`` / ``send_batch`` / ``listing``.
Errors are typed so the dispatcher knows what to do with a record:

* :class:`PlatformRejected` — a 4xx with the platform's reason: the record goes dead-letter;
* :class:`PlatformUnavailable` — 5xx, timeouts, refused or dropped connections, unreadable
  replies: try again later (the platform may have stored it: a resend returns the original receipt);
* :class:`ReceiptInvalid` — a receipt whose signature or content does not match: try again later.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from filing import protocol as p
from filing.protocol import Receipt


class PlatformError(RuntimeError):
    """Base of the client's errors."""


class PlatformUnavailable(PlatformError):
    """The platform could not be reached or gave no usable answer; retry later."""


class PlatformRejected(PlatformError):
    """The platform refused the record (4xx) and said why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"platform refused the record ({status}): {reason}")
        self.status = status
        self.reason = reason


class ReceiptInvalid(PlatformError):
    """A receipt that is not signed by the pinned platform certificate or not for the record sent."""


@dataclass(frozen=True)
class BatchOutcome:
    """One record's result in a batch: a receipt, or the error to record."""

    record_id: str
    receipt: Receipt | None = None
    error: PlatformError | None = None
    status: int | None = None


class PlatformClient:
    """``PlatformClient(base_url, signer, platform_cert, timeout)`` over one pooled keep-alive connection pool.

    ``signer`` is the sending system's :class:`gmpki.keys.signer.Signer`; ``platform_cert`` the
    pinned DER certificate of the platform (receipts signed by anything else are refused).
    """

    def __init__(
        self,
        base_url: str,
        signer: Any,
        platform_cert: bytes,
        timeout: float = 30.0,
        system_id: str = "",
        max_connections: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        self.platform_cert = platform_cert
        self.system_id = system_id
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=httpx.HTTPTransport(retries=0),
        )

    def __repr__(self) -> str:
        return f"PlatformClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            return self._http.post(path, content=body, headers=headers)
        except httpx.HTTPError as exc:  # timeouts, refused, reset, dropped after commit
            raise PlatformUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(f"{path}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise PlatformUnavailable(f"platform answered {response.status_code}: {_reason(response)}")
        if response.status_code >= 400:
            raise PlatformRejected(response.status_code, _reason(response))

    def _check(self, envelope: Any, record: dict[str, Any], digest: str | None = None) -> Receipt:
        try:
            return p.check_receipt(envelope, self.platform_cert, record, digest)
        except p.ProtocolError as exc:
            raise ReceiptInvalid(f"record {record['record_id']}: {exc}") from exc

    def send(self, record: dict[str, Any]) -> Receipt:
        """File one record (the wire form, :func:`filing.protocol.record_body`); return its checked receipt."""
        body, headers = p.sign_request(record, self.signer, self.system_id)
        response = self._post("/v1/filings", body, headers)
        self._raise_for_status(response)
        try:
            envelope = response.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlatformUnavailable(f"record {record['record_id']}: unreadable reply ({exc})") from exc
        return self._check(envelope, record)

    def send_batch(self, records: Sequence[dict[str, Any]]) -> list[BatchOutcome]:
        """File several records in one request (``POST /v1/filings:batch``); one outcome per record.

        A failure of the whole request raises :class:`PlatformUnavailable` / :class:`PlatformRejected`.
        """
        body, headers, digests = p.sign_batch(list(records), self.signer, self.system_id)
        response = self._post("/v1/filings:batch", body, headers)
        self._raise_for_status(response)
        try:
            results = response.json()["results"]
            if not isinstance(results, list) or len(results) != len(records):
                raise ValueError("result count differs from record count")
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise PlatformUnavailable(f"batch of {len(records)}: unreadable reply ({exc})") from exc
        return [self._outcome(*item) for item in zip(records, results, digests, strict=True)]

    def _outcome(self, record: dict[str, Any], result: Any, digest: str) -> BatchOutcome:
        record_id = record["record_id"]
        if not isinstance(result, dict) or result.get("record_id") != record_id:
            return BatchOutcome(record_id, error=PlatformUnavailable("batch reply out of order"))
        status = result.get("status")
        if status in (200, 201):
            try:
                envelope = {"receipt": result.get("receipt"), "signature": result.get("signature")}
                return BatchOutcome(record_id, receipt=self._check(envelope, record, digest), status=status)
            except ReceiptInvalid as exc:
                return BatchOutcome(record_id, error=exc, status=status)
        reason = str(result.get("reason", "no reason given"))
        if isinstance(status, int) and 400 <= status < 500:
            return BatchOutcome(record_id, error=PlatformRejected(status, reason), status=status)
        return BatchOutcome(record_id, error=PlatformUnavailable(f"{status}: {reason}"), status=status)

    def health(self) -> dict[str, Any]:
        response = self._get("/v1/health")
        self._raise_for_status(response)
        return response.json()

    def listing(self, since: int = 0, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every filing the platform holds after ``since``, page by page (reconciliation, 对账)."""
        while True:
            response = self._get("/v1/filings", {"since": since, "limit": page_size})
            self._raise_for_status(response)
            try:
                page = response.json()
                items, nxt = page["items"], page.get("next")
            except (ValueError, KeyError, TypeError) as exc:
                raise PlatformUnavailable(f"unreadable listing page ({exc})") from exc
            yield from items
            if nxt is None:
                return
            since = int(nxt)


def fetch_platform_certificate(base_url: str, timeout: float = 10.0) -> bytes:
    """The platform's certificate (DER) as it publishes it — for pinning ONCE at setup (trust on first use).

    In production pin the certificate received from the platform's operator instead.
    """
    try:
        response = httpx.get(base_url.rstrip("/") + "/v1/platform-certificate", timeout=timeout)
    except httpx.HTTPError as exc:
        raise PlatformUnavailable(f"platform certificate: {exc}") from exc
    if response.status_code != 200:
        raise PlatformUnavailable(f"platform certificate: HTTP {response.status_code}")
    return p.pem_to_der(response.content)


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict):
            return str(body.get("reason") or body.get("error") or body)[:500]
    except (ValueError, UnicodeDecodeError):
        pass
    return response.text[:200] or response.reason_phrase


__all__ = [
    "BatchOutcome",
    "PlatformClient",
    "PlatformError",
    "PlatformRejected",
    "PlatformUnavailable",
    "Receipt",
    "ReceiptInvalid",
    "fetch_platform_certificate",
]
