"""SM3 (GB/T 32905) through hashlib, which uses OpenSSL's implementation."""

from __future__ import annotations

import hashlib
import os
from typing import Any

_CHUNK = 1024 * 1024


def new_sm3(data: bytes = b"") -> Any:
    """A hashlib object for SM3 (``update``/``digest``)."""
    return hashlib.new("sm3", data)


def sm3(data: bytes) -> bytes:
    """The 32-byte SM3 digest of ``data``."""
    return hashlib.new("sm3", data).digest()


def sm3_hex(data: bytes) -> str:
    """The SM3 digest of ``data`` as 64 lower-case hex digits (what manifests and receipts carry)."""
    return hashlib.new("sm3", data).hexdigest()


def sm3_file(path: str | os.PathLike[str]) -> bytes:
    """The SM3 digest of a file, read in 1 MB chunks."""
    h = hashlib.new("sm3")
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.digest()
