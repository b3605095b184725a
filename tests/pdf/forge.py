"""Forged incremental updates for the attack tests: written by hand, byte by byte, as an attacker would.

``append_update`` appends one update section (objects, a classic cross-reference table and a trailer) to a
PDF; its keyword arguments break the section in the ways readers disagree about (rows pointing anywhere,
duplicate rows, hybrid /XRefStm, a wrong /Prev, no cross-reference at all).
"""

from __future__ import annotations

import re

import pymupdf

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")


def last_startxref(data: bytes) -> int:
    return int(list(_STARTXREF.finditer(data))[-1].group(1))


def trailer_value(data: bytes, key: str) -> str:
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        return doc.xref_get_key(-1, key)[1]
    finally:
        doc.close()


def object_offset(data: bytes, num: int, occurrence: int = -1) -> int:
    """Offset of the ``occurrence``-th definition 'num G obj' in the bytes."""
    hits = [m.start() for m in re.finditer(rb"(?<![0-9])%d \d+ obj" % num, data)]
    return hits[occurrence]


def append_update(data: bytes, objects: dict[int, bytes], *, rows: list[tuple[int, int, str]] | None = None,
                  root: str | None = None, prev: int | None = None, trailer_extra: bytes = b"",
                  gen: int = 0, with_xref: bool = True, startxref: int | None = None) -> bytes:
    """``data`` plus one update holding ``objects`` (number → body). ``rows``: extra cross-reference rows
    (number, offset, 'n'|'f') written as given."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets: list[tuple[int, int, str]] = []
    for num, body in objects.items():
        offsets.append((num, len(out), "n"))
        out += b"%d %d obj\n%s\nendobj\n" % (num, gen, body)
    if not with_xref:
        return bytes(out)
    table = sorted(offsets + list(rows or []), key=lambda r: r[0])
    xref_at = len(out)
    out += b"xref\n"
    for num, ofs, kind in table:
        out += b"%d 1\n%010d %05d %s\r\n" % (num, ofs, 65535 if kind == "f" and num == 0 else gen, kind.encode())
    size = max([int(trailer_value(data, "Size"))] + [n + 1 for n, _, _ in table])
    out += b"trailer\n<</Size %d/Root %s/Prev %d%s>>\n" % (
        size, (root or trailer_value(data, "Root")).encode(), last_startxref(data) if prev is None else prev,
        trailer_extra)
    out += b"startxref\n%d\n%%%%EOF\n" % (xref_at if startxref is None else startxref)
    return bytes(out)


def page_object(data: bytes, index: int = 0) -> tuple[int, str]:
    """(number, dictionary text) of a page."""
    doc = pymupdf.open(stream=data, filetype="pdf")
    try:
        num = doc.page_xref(index)
        return num, doc.xref_object(num, compressed=True)
    finally:
        doc.close()


def next_free_number(data: bytes) -> int:
    return int(trailer_value(data, "Size"))


def text_stream(text: str, x: float = 60, y: float = 700, size: float = 24) -> bytes:
    ops = b"BT /FForge %s Tf %s %s Td (%s) Tj ET" % (str(size).encode(), str(x).encode(), str(y).encode(),
                                                        text.encode("latin-1"))
    return b"<</Length %d>>stream\n%s\nendstream" % (len(ops), ops)


FONT = b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>"
