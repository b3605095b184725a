"""KEK escrow (密钥托管): split the key-encryption key into n shares, any k of which rebuild it.

Why: the KEK never goes into a backup (a backup must be useless to whoever steals it), so losing the
machine that holds it would make every key in the key store unreadable. The custodians each keep one
share; k of them together restore a home from a backup (the disaster-recovery drill does exactly that).

Decisions:
- Shamir's scheme over the prime field GF(2^521 - 1): a Mersenne prime wider than any KEK we accept
  (≤ 64 bytes), so the secret is one field element and no splitting into blocks is needed. pycryptodome
  ships Shamir only for 16-byte secrets over GF(2^128); our KEKs are 32 bytes, so the small
  implementation here is tested with known-answer vectors instead (tests/crypto/test_escrow.py).
- Coefficients come from ``secrets``; x coordinates are 1..n. Fewer than k shares reveal nothing.
- A share is one line of text a custodian can print or type: ``sealflow-kek-share/1`` + threshold + x +
  the KEK's fingerprint + y, with an SM3 check of the line so a mistyped share is refused by itself.
  The fingerprint (SM3 of the KEK under a label, 8 bytes) lets ``combine`` prove that the right KEK came
  back — with a wrong or foreign share it refuses instead of writing a wrong KEK.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gmpki.gm.sm3 import sm3

PRIME = 2**521 - 1
MAX_SECRET_BYTES = 64
PREFIX = "sealflow-kek-share/1"


class EscrowError(Exception):
    """A share or a split request is wrong; the message never holds secret material."""


@dataclass(frozen=True)
class Share:
    """One custodian's share: the point (x, y) of the polynomial, the threshold and the KEK's fingerprint."""

    threshold: int
    x: int
    y: int
    fingerprint: str
    length: int

    def encode(self) -> str:
        body = f"{PREFIX}:{self.threshold}:{self.x}:{self.length}:{self.fingerprint}:{self.y:x}"
        return f"{body}:{sm3(body.encode()).hex()[:8]}"

    @classmethod
    def decode(cls, text: str) -> Share:
        parts = text.strip().split(":")
        if len(parts) != 7 or parts[0] != PREFIX:
            raise EscrowError(f"not a SealFlow KEK share (expected a line starting with {PREFIX}:)")
        body, check = ":".join(parts[:6]), parts[6]
        if sm3(body.encode()).hex()[:8] != check.lower():
            raise EscrowError(f"share {parts[2]} fails its check digits: it was mistyped or altered")
        try:
            threshold, x, length, y = int(parts[1]), int(parts[2]), int(parts[3]), int(parts[5], 16)
        except ValueError:
            raise EscrowError("a share's numbers are not numbers") from None
        if not (1 <= x < PRIME and 0 <= y < PRIME and threshold >= 2 and 0 < length <= MAX_SECRET_BYTES):
            raise EscrowError(f"share {x} is out of range")
        return cls(threshold, x, y, parts[4], length)


def fingerprint(secret: bytes) -> str:
    """8 bytes of SM3 under a label: enough to recognise the KEK, useless to guess it."""
    return sm3(b"sealflow-kek-fingerprint-v1" + secret).hex()[:16]


def _evaluate(coefficients: list[int], x: int, prime: int) -> int:
    y = 0
    for c in reversed(coefficients):  # Horner's rule
        y = (y * x + c) % prime
    return y


def split_integer(secret: int, n: int, k: int, coefficients: list[int] | None = None,
                  prime: int = PRIME) -> list[tuple[int, int]]:
    """The n points (x, f(x)) of f(x) = secret + c1·x + … + c(k-1)·x^(k-1) mod prime.

    ``coefficients`` is for known-answer tests only; otherwise they are drawn at random.
    """
    if not 2 <= k <= n:
        raise EscrowError(f"the threshold must be between 2 and the number of shares (asked {k} of {n})")
    if n >= prime:
        raise EscrowError("too many shares for the field")
    if not 0 <= secret < prime:
        raise EscrowError("the secret does not fit the field")
    coeffs = [secret, *(coefficients if coefficients is not None else
                        [secrets.randbelow(prime - 1) + 1 for _ in range(k - 1)])]
    if len(coeffs) != k:
        raise EscrowError("k - 1 coefficients are needed")
    return [(x, _evaluate(coeffs, x, prime)) for x in range(1, n + 1)]


def interpolate(points: list[tuple[int, int]], at: int = 0, prime: int = PRIME) -> int:
    """Lagrange interpolation of the polynomial through distinct ``points``, evaluated at ``at``."""
    xs = [x for x, _ in points]
    if len(set(xs)) != len(xs):
        raise EscrowError("the same share was given twice")
    value = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                num = num * (at - xj) % prime
                den = den * (xi - xj) % prime
        value = (value + yi * num * pow(den, -1, prime)) % prime
    return value


def split(secret: bytes, n: int, k: int) -> list[Share]:
    """Split the KEK material into n shares with threshold k."""
    if not 0 < len(secret) <= MAX_SECRET_BYTES:
        raise EscrowError(f"a KEK of 1 to {MAX_SECRET_BYTES} bytes can be escrowed (got {len(secret)})")
    points = split_integer(int.from_bytes(secret, "big"), n, k)
    fp = fingerprint(secret)
    return [Share(k, x, y, fp, len(secret)) for x, y in points]


def combine(shares: list[Share]) -> bytes:
    """Rebuild the KEK from at least ``threshold`` shares of one split; refuse anything else."""
    if not shares:
        raise EscrowError("no shares given")
    first = shares[0]
    if any((s.threshold, s.fingerprint, s.length) != (first.threshold, first.fingerprint, first.length)
           for s in shares):
        raise EscrowError("the shares come from different splits (their fingerprints differ)")
    if len(shares) < first.threshold:
        raise EscrowError(f"{first.threshold} shares are needed, {len(shares)} given")
    points = [(s.x, s.y) for s in shares]
    base = points[: first.threshold]
    value = interpolate(base)
    # Shares beyond the threshold must lie on the same polynomial: a wrong extra share is named, not ignored.
    for x, y in points[first.threshold:]:
        if x in {bx for bx, _ in base} or interpolate(base, x) != y:
            raise EscrowError(f"share {x} does not agree with the others: it is wrong or given twice")
    if value.bit_length() > 8 * first.length:
        raise EscrowError("the shares do not rebuild a KEK: one of them is wrong")
    secret = value.to_bytes(first.length, "big")
    if fingerprint(secret) != first.fingerprint:
        raise EscrowError("the shares do not rebuild the KEK they were split from: one of them is wrong")
    return secret
