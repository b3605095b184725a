"""Chain validation of SM2 certificates against configured trusted roots.

Every failure has its own reason: an issuer we do not know (intact but not trusted), a signature
that does not verify, a certificate outside its validity at the given time, an issuer that is not
a CA or lacks keyCertSign, a path length exceeded, a leaf without the key usage asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from asn1crypto import pem, x509

import gmpki.pki  # noqa: F401  (registers GM OIDs with asn1crypto)
from gmpki.gm.oids import SM2_WITH_SM3
from gmpki.gm.sm2 import SM2PublicKey

MAX_DEPTH = 8
SM2_SIGNATURE_OIDS = {SM2_WITH_SM3}


@dataclass
class ChainResult:
    ok: bool
    reason: str
    path: list[bytes] = field(default_factory=list)
    issuer_found: bool = True


@dataclass(frozen=True)
class _Cert:
    der: bytes
    cert: x509.Certificate

    @property
    def name(self) -> str:
        return self.cert.subject.human_friendly

    @property
    def self_issued(self) -> bool:
        return _names_equal(self.cert.subject.dump(), self.cert.issuer.dump())


@lru_cache(maxsize=512)
def _load(der: bytes) -> _Cert:
    # Memoized: _Cert is immutable and a batch validates the same few certificates again and again.
    cert = x509.Certificate.load(der)
    _ = cert["tbs_certificate"]["subject"]  # force the parse now, so a broken certificate fails here
    return _Cert(der, cert)


def read_certificates(data: bytes) -> list[bytes]:
    """Every certificate of a PEM bundle or a single DER certificate."""
    if pem.detect(data):
        return [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
    return [data]


def signature_verifies(cert: x509.Certificate, issuer_der: bytes) -> bool:
    return _signature_verifies(cert.dump(), issuer_der)


@lru_cache(maxsize=1024)
def _names_equal(a_der: bytes, b_der: bytes) -> bool:
    """X.500 name equality (RFC 5280 matching), memoized: asn1crypto's LDAP string prep is slow."""
    return a_der == b_der or x509.Name.load(a_der) == x509.Name.load(b_der)


@lru_cache(maxsize=1024)
def _signature_verifies(cert_der: bytes, issuer_der: bytes) -> bool:
    # Memoized (a pure function of the two certificates): 验章 of a batch meets the same chain in
    # every file, and the SM2 checks of the chain were most of the time of a PDF verification.
    cert = x509.Certificate.load(cert_der)
    algo = cert["signature_algorithm"]["algorithm"].dotted
    if algo not in SM2_SIGNATURE_OIDS:
        return False
    try:
        key = SM2PublicKey.from_certificate(issuer_der)
    except ValueError:
        return False
    return key.verify(bytes(cert["signature_value"].native), cert["tbs_certificate"].dump())


def _validity_reason(c: _Cert, at: datetime) -> str | None:
    validity = c.cert["tbs_certificate"]["validity"]
    start, end = validity["not_before"].native, validity["not_after"].native
    if at < start:
        return f"certificate '{c.name}' is not yet valid at {at.isoformat()} (valid from {start.isoformat()})"
    if at > end:
        return f"certificate '{c.name}' had expired at {at.isoformat()} (valid until {end.isoformat()})"
    return None


class TrustStore:
    """Trusted roots (and known intermediates) to validate SM2 certificate chains against."""

    def __init__(self, roots: Sequence[bytes], intermediates: Sequence[bytes] = ()) -> None:
        self._roots = [_load(der) for der in roots]
        self._intermediates = [_load(der) for der in intermediates]
        self._root_ders = {c.der for c in self._roots}

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> TrustStore:
        roots: list[bytes] = []
        intermediates: list[bytes] = []
        for path in paths:
            for der in read_certificates(Path(path).read_bytes()):
                cert = x509.Certificate.load(der)
                (roots if cert.self_issued else intermediates).append(der)
        return cls(roots, intermediates)

    @property
    def roots(self) -> list[bytes]:
        return [c.der for c in self._roots]

    @property
    def intermediates(self) -> list[bytes]:
        """The known intermediate CA certificates (DER): what travels with a package to verify offline."""
        return [c.der for c in self._intermediates]

    def _issuers(self, child: _Cert, pool: list[_Cert]) -> list[_Cert]:
        aki = child.cert.authority_key_identifier
        issuer_der = child.cert.issuer.dump()
        found = [c for c in pool if c.der != child.der and _names_equal(c.cert.subject.dump(), issuer_der)]
        if aki:
            exact = [c for c in found if c.cert.key_identifier in (None, aki)]
            found = exact or found
        return found

    def validate(self, cert_der: bytes, at: datetime | None = None, extra_intermediates: Sequence[bytes] = (),
                 require_key_usage: Sequence[str] = ()) -> ChainResult:
        """Never raises on a malformed certificate: that is a failed (broken, not untrusted) result."""
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        try:
            return self._validate(cert_der, at, extra_intermediates, require_key_usage)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            # asn1crypto parses lazily: a damaged extension or date surfaces only when read.
            return ChainResult(False, f"certificate cannot be parsed: {exc}", [], issuer_found=True)

    def _validate(self, cert_der: bytes, at: datetime, extra_intermediates: Sequence[bytes],
                  require_key_usage: Sequence[str]) -> ChainResult:
        leaf = _load(cert_der)
        pool = self._roots + self._intermediates + [_load(d) for d in extra_intermediates]
        path = [leaf]
        current = leaf
        ca_below = 0  # CA certificates (not self-issued) between the current issuer and the leaf
        while current.der not in self._root_ders:
            if len(path) > MAX_DEPTH:
                return ChainResult(False, f"chain longer than {MAX_DEPTH} certificates", [c.der for c in path])
            candidates = self._issuers(current, pool)
            if not candidates:
                if current.self_issued:
                    reason = f"self-signed certificate '{current.name}' is not a trusted root"
                else:
                    reason = (f"issuer '{current.cert.issuer.human_friendly}' of '{current.name}' is not among "
                              "the trusted roots or known intermediates")
                return ChainResult(False, reason, [c.der for c in path], issuer_found=False)
            issuer = next((c for c in candidates if signature_verifies(current.cert, c.der)), None)
            if issuer is None:
                algo = current.cert["signature_algorithm"]["algorithm"].dotted
                if algo not in SM2_SIGNATURE_OIDS:
                    reason = f"'{current.name}' is signed with {algo}, not SM2-with-SM3 ({SM2_WITH_SM3})"
                else:
                    reason = f"signature on '{current.name}' by '{candidates[0].name}' does not verify"
                return ChainResult(False, reason, [c.der for c in path])
            if not issuer.cert.ca:
                return ChainResult(False, f"issuer '{issuer.name}' is not a CA (basicConstraints cA is not set)",
                                   [c.der for c in path])
            usage = issuer.cert.key_usage_value
            if usage is not None and "key_cert_sign" not in usage.native:
                return ChainResult(False, f"issuer '{issuer.name}' may not sign certificates (no keyCertSign)",
                                   [c.der for c in path])
            max_path = issuer.cert.max_path_length
            if max_path is not None and ca_below > max_path:
                return ChainResult(False, f"path length constraint {max_path} of '{issuer.name}' exceeded",
                                   [c.der for c in path])
            if current is not leaf and not current.self_issued:
                ca_below += 1
            path.append(issuer)
            current = issuer
            if issuer.der in self._root_ders:
                break
        if current.self_issued and not signature_verifies(current.cert, current.der):
            return ChainResult(False, f"root '{current.name}' self-signature does not verify", [c.der for c in path])
        for c in path:
            if reason := _validity_reason(c, at):
                return ChainResult(False, reason, [c.der for c in path])
        if require_key_usage:
            usage = leaf.cert.key_usage_value
            have = set(usage.native) if usage is not None else set()
            missing = [u for u in require_key_usage if u not in have]
            if missing:
                return ChainResult(False, f"certificate '{leaf.name}' lacks key usage {', '.join(missing)}",
                                   [c.der for c in path])
        return ChainResult(True, f"chains to trusted root '{current.name}'", [c.der for c in path])
