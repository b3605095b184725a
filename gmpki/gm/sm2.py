"""SM2 signatures (GB/T 32918) with SM3 and a distinguishing identifier.

A narrow API over OpenSSL: keys are opaque objects; ``sign`` returns DER ``SEQUENCE{r, s}``;
``verify`` takes DER or raw ``r||s`` and answers True/False, never raising on a bad signature.
The message digest e = SM3(Z_A || M) is computed here (Z_A from the user id and the public key,
cached per key), and OpenSSL signs e with a nonce from its own CSPRNG.

Hashing once what every message of a batch begins with: an SES TBS_Sign starts with the whole
SESeal (its picture, ~14 KB), the same in every document a seal signs or a verifier checks, and
hashing it was a seventh of signing one. Each key keeps the SM3 state after Z_A and the longest
beginning (≥ 4 KiB) its last two long messages shared (:class:`_SharedPrefix`); a message that
starts with exactly those bytes continues from that state. The digest is the same number by
construction (SM3 is computed left to right), so nothing about what is signed or checked changes.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

from asn1crypto import keys, pem

from gmpki.gm import _libcrypto as _c
from gmpki.gm._libcrypto import SM2Unavailable
from gmpki.gm.oids import EC_PUBLIC_KEY, SM2_CURVE, register_with_asn1crypto
from gmpki.gm.sm3 import new_sm3

__all__ = [
    "DEFAULT_UID",
    "SM2PrivateKey",
    "SM2PublicKey",
    "SM2Unavailable",
    "signature_der_to_raw",
    "signature_raw_to_der",
]

DEFAULT_UID = b"1234567812345678"
register_with_asn1crypto()

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
_CURVE_BYTES = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))


class _SharedPrefix:
    """SM3(Z_A || prefix) as a hashlib state for the longest beginning two long messages shared.

    Looked at only for messages of ``MIN_MESSAGE`` bytes or more. The state object is never updated
    (every use continues from a copy), and what is kept is swapped as one tuple, so threads may share
    a key. A message that does not start with the kept bytes is hashed in full, as before."""

    MIN_MESSAGE = 8192
    MIN_PREFIX = 4096
    _STEP = 1024

    def __init__(self) -> None:
        self._kept: tuple[bytes, bytes, Any] | None = None  # (uid, prefix, state after Z || prefix)
        self._last: tuple[bytes, bytes] | None = None  # (uid, the last long message)

    def digest(self, z: bytes, uid: bytes, data: bytes) -> bytes:
        kept = self._kept
        if kept is not None and kept[0] == uid and data.startswith(kept[1]):
            h = kept[2].copy()
            h.update(memoryview(data)[len(kept[1]):])
            return h.digest()
        last, self._last = self._last, (uid, data)
        shared = self._common_length(last[1], data) if last is not None and last[0] == uid else 0
        h = new_sm3(z)
        if shared < self.MIN_PREFIX:
            h.update(data)
            return h.digest()
        prefix = data[:shared]
        h.update(prefix)
        self._kept = (uid, prefix, h.copy())
        h.update(memoryview(data)[shared:])
        return h.digest()

    @classmethod
    def _common_length(cls, a: bytes, b: bytes) -> int:
        """How many leading bytes ``a`` and ``b`` share, in whole steps (a lower bound is enough)."""
        n, step, i = min(len(a), len(b)), cls._STEP, 0
        while i + step <= n and a[i:i + step] == b[i:i + step]:
            i += step
        return i


def _der_int(value: bytes, pos: int) -> tuple[int, int]:
    """One strict DER INTEGER (positive, minimal, ≤ 33 bytes) at ``pos`` → (value, next pos)."""
    if pos + 2 > len(value) or value[pos] != 0x02:
        raise ValueError("SM2 signature: INTEGER expected")
    length = value[pos + 1]
    body = value[pos + 2: pos + 2 + length]
    if not 0 < length <= 33 or len(body) != length:
        raise ValueError("SM2 signature: bad INTEGER length")
    if body[0] & 0x80 or (length > 1 and body[0] == 0 and not body[1] & 0x80):
        raise ValueError("SM2 signature: INTEGER not minimal DER or negative")
    return int.from_bytes(body, "big"), pos + 2 + length


def _parse_der(sig: bytes) -> tuple[int, int]:
    # By hand, strictly: the asn1crypto round trip was 5% of a verification.
    if len(sig) < 8 or sig[0] != 0x30 or sig[1] != len(sig) - 2:
        raise ValueError("SM2 signature: not a DER SEQUENCE of the right length")
    r, pos = _der_int(sig, 2)
    s, pos = _der_int(sig, pos)
    if pos != len(sig):
        raise ValueError("SM2 signature: trailing bytes")
    if not (0 < r < 2**256 and 0 < s < 2**256):
        raise ValueError("SM2 signature values out of range")
    return r, s


def _der_int_bytes(value: int) -> bytes:
    body = value.to_bytes(32, "big").lstrip(b"\0") or b"\0"
    if body[0] & 0x80:
        body = b"\0" + body
    return bytes((0x02, len(body))) + body


def signature_der_to_raw(sig: bytes) -> bytes:
    """DER ``SEQUENCE{r, s}`` → 64-byte ``r||s``."""
    r, s = _parse_der(sig)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signature_raw_to_der(raw: bytes) -> bytes:
    """64-byte ``r||s`` → DER ``SEQUENCE{r, s}``."""
    if len(raw) != 64:
        raise ValueError("a raw SM2 signature has 64 bytes")
    body = _der_int_bytes(int.from_bytes(raw[:32], "big")) + _der_int_bytes(int.from_bytes(raw[32:], "big"))
    return bytes((0x30, len(body))) + body


def _z_digest(point: bytes, uid: bytes) -> bytes:
    entl = (len(uid) * 8).to_bytes(2, "big")
    return new_sm3(entl + uid + _CURVE_BYTES + point[1:]).digest()


# DER SubjectPublicKeyInfo header for id-ecPublicKey on sm2p256v1 with a 65-byte point; the point
# follows. A constant: building it with asn1crypto took longer than an SM2 verification.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")


def _spki_der(point: bytes) -> bytes:
    return _SPKI_PREFIX + point


@lru_cache(maxsize=1024)
def _public_from_point(point: bytes) -> SM2PublicKey:
    # Memoized: decoding a key in OpenSSL 3 costs about one verification, and a batch meets the
    # same few signer and CA keys in every file. Keys are immutable and safe to share across threads.
    return SM2PublicKey(_c.load_der(_c.LIB.d2i_PUBKEY, _spki_der(point)), point)


@lru_cache(maxsize=512)
def _public_from_certificate(cert_der: bytes) -> SM2PublicKey:
    from asn1crypto import x509

    try:
        cert = x509.Certificate.load(cert_der, strict=False)
        spki = cert["tbs_certificate"]["subject_public_key_info"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an X.509 certificate: {exc}") from None
    return SM2PublicKey._from_info(spki)


class _Key:
    """An EVP_PKEY owned by this object, with a pool of signing/verifying contexts.

    A context serves one call at a time: each call takes one from the pool (or makes one) and
    puts it back, so threads never share a context, and ``__del__`` frees every context made,
    whichever thread made it. ``list.pop``/``append`` are atomic under the GIL.
    """

    def __init__(self, pkey: int) -> None:
        if not _c.LIB.EVP_PKEY_is_a(pkey, b"SM2"):
            _c.LIB.EVP_PKEY_free(pkey)
            raise ValueError("not an SM2 key (the curve must be sm2p256v1, 1.2.156.10197.1.301)")
        self._pkey = pkey
        self._pool: list[int] = []
        self._z: dict[bytes, bytes] = {}
        self._shared = _SharedPrefix()

    def _take_ctx(self) -> int:
        try:
            return self._pool.pop()
        except IndexError:
            ctx = _c.LIB.EVP_PKEY_CTX_new_from_pkey(None, self._pkey, None)
            if not ctx:
                raise SM2Unavailable("OpenSSL could not make an SM2 context") from None
            return ctx

    def _digest(self, point: bytes, data: bytes, uid: bytes) -> bytes:
        z = self._z.get(uid)
        if z is None:
            z = self._z[uid] = _z_digest(point, uid)
        if len(data) >= _SharedPrefix.MIN_MESSAGE:
            return self._shared.digest(z, uid, bytes(data))
        h = new_sm3(z)
        h.update(data)
        return h.digest()

    def __del__(self) -> None:
        pkey = getattr(self, "_pkey", None)
        lib = getattr(_c, "LIB", None) if _c is not None else None
        if pkey and lib is not None:  # at interpreter shutdown the module may already be gone
            for ctx in getattr(self, "_pool", ()):
                lib.EVP_PKEY_CTX_free(ctx)
            self._pool = []
            lib.EVP_PKEY_free(pkey)
            self._pkey = None


class SM2PublicKey(_Key):
    """An SM2 public key: verify signatures, export SubjectPublicKeyInfo."""

    def __init__(self, pkey: int, point: bytes) -> None:
        super().__init__(pkey)
        self._point = point

    @classmethod
    def from_point(cls, point: bytes) -> SM2PublicKey:
        if len(point) != 65 or point[0] != 4:
            raise ValueError("an SM2 public point is 65 bytes: 04 || X || Y")
        return _public_from_point(bytes(point))

    @classmethod
    def from_spki(cls, data: bytes) -> SM2PublicKey:
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        try:
            info = keys.PublicKeyInfo.load(data, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a SubjectPublicKeyInfo: {exc}") from None
        return cls._from_info(info)

    @classmethod
    def _from_info(cls, info: keys.PublicKeyInfo) -> SM2PublicKey:
        try:
            algorithm = info["algorithm"]["algorithm"].dotted
            params = info["algorithm"]["parameters"]
            curve = params.chosen.dotted if algorithm == EC_PUBLIC_KEY and params.name == "named" else None
            point = bytes(info["public_key"].contents)[1:]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an SM2 public key: {exc}") from None
        # Some older issuers put the curve OID itself in the algorithm field (GM/T 0015 drafts).
        if curve != SM2_CURVE and algorithm != SM2_CURVE:
            raise ValueError(f"not an SM2 public key (algorithm {algorithm}, curve {curve or 'not named'})")
        return cls.from_point(point)

    @classmethod
    def from_certificate(cls, cert_der: bytes) -> SM2PublicKey:
        return _public_from_certificate(bytes(cert_der))

    @property
    def point(self) -> bytes:
        return self._point

    def to_spki_der(self) -> bytes:
        return _spki_der(self._point)

    def z_digest(self, uid: bytes = DEFAULT_UID) -> bytes:
        """Z_A of GB/T 32918.2 for this key and user id."""
        return _z_digest(self._point, uid)

    def verify(self, signature: bytes, data: bytes, uid: bytes = DEFAULT_UID) -> bool:
        try:
            der = signature_raw_to_der(signature) if len(signature) == 64 else bytes(signature)
            _parse_der(der)  # strict DER and range check before OpenSSL sees it
        except ValueError:
            return False
        e = self._digest(self._point, data, uid)
        ctx = self._take_ctx()
        try:
            ok = _c.LIB.EVP_PKEY_verify_init(ctx) == 1 and _c.LIB.EVP_PKEY_verify(ctx, der, len(der), e, 32) == 1
            if not ok:
                _c.LIB.ERR_clear_error()
            return ok
        finally:
            self._pool.append(ctx)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and other._point == self._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"SM2PublicKey({self._point[:9].hex()}…)"

    def __reduce__(self):
        # Rebuilt from the point: copying the object's state would copy the EVP_PKEY pointer, and two
        # owners of one pointer free it twice.
        return (SM2PublicKey.from_point, (self._point,))


class SM2PrivateKey(_Key):
    """An SM2 private key. Its secret never appears in repr, str or exceptions."""

    def __init__(self, pkey: int) -> None:
        super().__init__(pkey)
        spki = _c.take_der(_c.LIB.i2d_PUBKEY, pkey)
        self._public = SM2PublicKey.from_spki(spki)

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        ctx = _c.LIB.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
        try:
            pkey = ctypes.c_void_p()
            if _c.LIB.EVP_PKEY_keygen_init(ctx) != 1 or _c.LIB.EVP_PKEY_generate(ctx, ctypes.byref(pkey)) != 1:
                _c.LIB.ERR_clear_error()
                raise SM2Unavailable("OpenSSL could not generate an SM2 key")
        finally:
            _c.LIB.EVP_PKEY_CTX_free(ctx)
        return cls(pkey.value)

    @classmethod
    def from_pkcs8(cls, data: bytes, password: bytes | None = None) -> SM2PrivateKey:
        """A PKCS#8 (or SEC1) private key, PEM or DER; encrypted PKCS#8 when ``password`` is given."""
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        try:
            if password is not None:
                pkey = _c.load_encrypted_pkcs8(bytes(data), bytes(password))
            else:
                pkey = _c.load_der(_c.LIB.d2i_AutoPrivateKey, bytes(data))
        except ValueError:
            hint = " (wrong password?)" if password is not None else ""
            raise ValueError(f"not an SM2 private key in PKCS#8 or SEC1 DER{hint}") from None
        return cls(pkey)

    @classmethod
    def from_secret_scalar(cls, d: int) -> SM2PrivateKey:
        if not 0 < d < N - 1:
            raise ValueError("SM2 private scalar out of range")
        sec1 = keys.ECPrivateKey({
            "version": "ecPrivkeyVer1", "private_key": d,
            "parameters": keys.ECDomainParameters("named", SM2_CURVE),
        }).dump()
        return cls(_c.load_der(_c.LIB.d2i_AutoPrivateKey, sec1))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def to_pkcs8_der(self) -> bytes:
        sec1 = _c.take_der(_c.LIB.i2d_PrivateKey, self._pkey)
        return keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": EC_PUBLIC_KEY,
                                      "parameters": keys.ECDomainParameters("named", SM2_CURVE)},
            "private_key": keys.ECPrivateKey.load(sec1),
        }).dump()

    def to_pkcs8_pem(self) -> bytes:
        return pem.armor("PRIVATE KEY", self.to_pkcs8_der())

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        e = self._digest(self._public.point, data, uid)
        buf = ctypes.create_string_buffer(80)
        size = ctypes.c_size_t(80)
        ctx = self._take_ctx()
        try:
            if _c.LIB.EVP_PKEY_sign_init(ctx) != 1 or _c.LIB.EVP_PKEY_sign(ctx, buf, ctypes.byref(size), e, 32) != 1:
                _c.LIB.ERR_clear_error()
                raise RuntimeError("OpenSSL refused to make an SM2 signature")
        finally:
            self._pool.append(ctx)
        return buf.raw[: size.value]

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public.point[:9].hex()}…)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("SM2 private keys cannot be pickled")
