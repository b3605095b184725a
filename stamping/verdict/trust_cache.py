"""A memo in front of a TrustStore: 验章 of a batch sees the same few certificates thousands of times.

A successful chain depends on the signing time only through the validity windows of the path's
certificates, so a cached success is reused for any time inside all of them; anything else
(a failure, a time outside the windows) is validated afresh. Entries are per trust store.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509

_MAX_ENTRIES = 4096


def _window(path: list[bytes]) -> tuple[datetime, datetime] | None:
    start, end = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    try:
        for der in path:
            validity = x509.Certificate.load(der)["tbs_certificate"]["validity"]
            start = max(start, validity["not_before"].native)
            end = min(end, validity["not_after"].native)
    except (ValueError, TypeError, KeyError):
        return None
    return (start, end) if start <= end else None


class CachedTrustStore:
    """Same interface as :class:`gmpki.pki.trust.TrustStore` (validate + attributes)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._cache: dict[tuple, tuple[Any, tuple[datetime, datetime]]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def validate(self, cert_der: bytes, at: datetime | None = None, extra_intermediates: Sequence[bytes] = (),
                 require_key_usage: Sequence[str] = ()) -> Any:
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        key = (bytes(cert_der), tuple(bytes(d) for d in extra_intermediates), tuple(require_key_usage))
        hit = self._cache.get(key)
        if hit is not None and hit[1][0] <= when <= hit[1][1]:
            return hit[0]
        result = self._inner.validate(cert_der, when, extra_intermediates, require_key_usage)
        if result.ok and (window := _window(result.path)) is not None:
            with self._lock:
                if len(self._cache) >= _MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = (result, window)
        return result


_WRAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached(trust: Any) -> Any:
    """The process-wide memo for ``trust`` (None stays None)."""
    if trust is None or isinstance(trust, CachedTrustStore):
        return trust
    try:
        wrapper = _WRAPPED.get(trust)
        if wrapper is None:
            wrapper = _WRAPPED[trust] = CachedTrustStore(trust)
        return wrapper
    except TypeError:  # not weak-referenceable: no memo
        return CachedTrustStore(trust)
