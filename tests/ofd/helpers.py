"""Rewriting zips for tamper tests."""

from __future__ import annotations

import io
import zipfile


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def raw_members(data: bytes) -> dict[str, bytes]:
    """Each member's stored (compressed) bytes."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            head = data[info.header_offset: info.header_offset + 30]
            start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(
                head[28:30], "little")
            out[info.filename] = data[start: start + info.compress_size]
    return out


def replace_member(data: bytes, name: str, new: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, new if info.filename == name else src.read(info))
    return buf.getvalue()


def flip_byte(data: bytes, name: str, at: float = 0.5) -> bytes:
    content = bytearray(members(data)[name])
    i = min(int(len(content) * at), len(content) - 1)
    # Inside XML, change a digit or letter to another of its kind so the XML stays well formed.
    c = content[i]
    if 48 <= c <= 57:
        content[i] = 48 + (c - 48 + 1) % 10
    elif 65 <= c <= 90 or 97 <= c <= 122:
        content[i] = c ^ 0x20
    else:
        content[i] = c ^ 0x01
    return replace_member(data, name, bytes(content))
