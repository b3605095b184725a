"""Canonical JSON: the one byte form of a JSON value that SealFlow hashes and signs.

Object keys sorted by code point, no insignificant whitespace (separators ``,`` and ``:``), non-ASCII
characters as themselves, UTF-8. Values are strings, integers (|n| < 2**53), booleans, null, arrays and
objects — no floats, no NaN — so that every implementation produces the same bytes (a subset of RFC 8785
JCS). The audit log's digests and the filing protocol's signed bodies both use it; it lives in the
foundation so that neither owns it, and a change to the filing wire format can never silently change the
audit chain. Changing this function changes every stored digest: don't.
"""

from __future__ import annotations

import json
from typing import Any

MAX_INT = 2**53


class NotCanonical(ValueError):
    """A value canonical JSON does not allow (a float, a huge integer, a non-string key); says where."""


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes of a JSON value; :class:`NotCanonical` names the first value it refuses."""
    _check(obj, "$")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if abs(value) >= MAX_INT:
            raise NotCanonical(f"{where}: integer out of range")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{where}: object key {key!r} is not a string")
            _check(item, f"{where}.{key}")
        return
    raise NotCanonical(f"{where}: {type(value).__name__} is not allowed in canonical JSON (no floats)")
