"""The TrustStore memo returns a cached success only inside the path's validity windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stamping.verdict.trust_cache import CachedTrustStore, cached


def test_cache_respects_time(kit):
    memo = cached(kit.trust)
    assert cached(kit.trust) is memo and isinstance(memo, CachedTrustStore)
    assert cached(None) is None
    cert = kit.signer.certificate
    now = datetime.now(UTC)
    first = memo.validate(cert, now)
    assert first.ok
    assert memo.validate(cert, now + timedelta(seconds=5)) is first  # served from the memo
    long_ago = memo.validate(cert, datetime(1990, 1, 1, tzinfo=UTC))
    assert not long_ago.ok and "not yet valid" in long_ago.reason
    far = memo.validate(cert, now + timedelta(days=365 * 60))
    assert not far.ok
    assert memo.roots == kit.trust.roots  # other attributes pass through
