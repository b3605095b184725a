"""The ctypes binding to the system OpenSSL 3 libcrypto: only the calls SM2 needs."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_long = ctypes.c_long
c_size_t = ctypes.c_size_t

INSTALL_HINT = (
    "SM2 needs the system OpenSSL 3 library (libcrypto.so.3) built with SM2/SM3 — on Debian/Ubuntu "
    "`apt install libssl3`, on RHEL `dnf install openssl-libs`; or point SEALFLOW_LIBCRYPTO at it."
)


class SM2Unavailable(RuntimeError):
    """The system libcrypto is missing or lacks SM2; the message says what to install."""


def _candidates() -> list[str]:
    names = [os.environ.get("SEALFLOW_LIBCRYPTO", "")]  # read once at import: where the library lives
    names += ["libcrypto.so.3", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "/usr/lib/aarch64-linux-gnu/libcrypto.so.3"]
    found = ctypes.util.find_library("crypto")
    if found:
        names.append(found)
    names += ["libcrypto.3.dylib"]
    return [n for n in names if n]


def _load() -> ctypes.CDLL:
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if hasattr(lib, "EVP_PKEY_CTX_new_from_name"):
            return lib
        errors.append(f"{name}: not OpenSSL 3")
    raise SM2Unavailable(f"no usable libcrypto ({'; '.join(errors)}). {INSTALL_HINT}")


def _declare(lib: ctypes.CDLL) -> None:
    sig = {
        "EVP_PKEY_CTX_new_from_name": (c_void_p, [c_void_p, c_char_p, c_char_p]),
        "EVP_PKEY_CTX_new_from_pkey": (c_void_p, [c_void_p, c_void_p, c_char_p]),
        "EVP_PKEY_CTX_free": (None, [c_void_p]),
        "EVP_PKEY_keygen_init": (c_int, [c_void_p]),
        "EVP_PKEY_generate": (c_int, [c_void_p, ctypes.POINTER(c_void_p)]),
        "EVP_PKEY_free": (None, [c_void_p]),
        "EVP_PKEY_is_a": (c_int, [c_void_p, c_char_p]),
        "EVP_PKEY_sign_init": (c_int, [c_void_p]),
        "EVP_PKEY_sign": (c_int, [c_void_p, c_char_p, ctypes.POINTER(c_size_t), c_char_p, c_size_t]),
        "EVP_PKEY_verify_init": (c_int, [c_void_p]),
        "EVP_PKEY_verify": (c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]),
        "d2i_AutoPrivateKey": (c_void_p, [c_void_p, ctypes.POINTER(c_char_p), c_long]),
        "d2i_PUBKEY": (c_void_p, [c_void_p, ctypes.POINTER(c_char_p), c_long]),
        "i2d_PUBKEY": (c_int, [c_void_p, ctypes.POINTER(c_void_p)]),
        "i2d_PrivateKey": (c_int, [c_void_p, ctypes.POINTER(c_void_p)]),
        "CRYPTO_free": (None, [c_void_p, c_char_p, c_int]),
        "BIO_new_mem_buf": (c_void_p, [c_char_p, c_int]),
        "BIO_free": (c_int, [c_void_p]),
        "d2i_PKCS8PrivateKey_bio": (c_void_p, [c_void_p, c_void_p, c_void_p, c_char_p]),
        "ERR_clear_error": (None, []),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _check_sm2(lib: ctypes.CDLL) -> None:
    ctx = lib.EVP_PKEY_CTX_new_from_name(None, b"SM2", None)
    if not ctx:
        raise SM2Unavailable(f"this libcrypto has no SM2 algorithm. {INSTALL_HINT}")
    lib.EVP_PKEY_CTX_free(ctx)


LIB = _load()
_declare(LIB)
_check_sm2(LIB)


def take_der(fn, obj: int) -> bytes:
    """Call an ``i2d_*`` function that allocates its output, copy the bytes and free them."""
    out = c_void_p()
    n = fn(obj, ctypes.byref(out))
    if n <= 0 or not out.value:
        LIB.ERR_clear_error()
        raise ValueError("OpenSSL could not encode the key")
    try:
        return ctypes.string_at(out.value, n)
    finally:
        LIB.CRYPTO_free(out.value, None, 0)


def load_der(fn, data: bytes) -> int:
    buf = c_char_p(data)
    obj = fn(None, ctypes.byref(buf), len(data))
    if not obj:
        LIB.ERR_clear_error()
        raise ValueError("OpenSSL could not decode the key")
    return obj


def load_encrypted_pkcs8(data: bytes, password: bytes) -> int:
    """An EVP_PKEY from DER EncryptedPrivateKeyInfo (PBES2 etc.), decrypted by OpenSSL."""
    if b"\0" in password:
        raise ValueError("a PKCS#8 password cannot contain NUL bytes")
    bio = LIB.BIO_new_mem_buf(data, len(data))
    if not bio:
        raise MemoryError("OpenSSL could not allocate a memory BIO")
    try:
        # With no callback OpenSSL's PEM_def_callback takes the last argument as the password.
        obj = LIB.d2i_PKCS8PrivateKey_bio(bio, None, None, password)
    finally:
        LIB.BIO_free(bio)
    if not obj:
        LIB.ERR_clear_error()
        raise ValueError("OpenSSL could not decrypt the PKCS#8 key (wrong password or not PKCS#8)")
    return obj
