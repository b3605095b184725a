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


def append_objstm_update(data: bytes, compressed: dict[int, bytes], plain: dict[int, bytes]) -> bytes:
    """``data`` plus one update with a cross-reference *stream*: ``compressed`` objects inside a new object
    stream (type-2 rows), ``plain`` objects written normally."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    size = int(trailer_value(data, "Size"))
    stm, xref = max([size, *compressed, *plain]) + 1, max([size, *compressed, *plain]) + 2
    rows: dict[int, bytes] = {}
    for num, body in plain.items():
        rows[num] = b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00"
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    header, bodies = b"", b""
    for i, (num, body) in enumerate(compressed.items()):
        header += b"%d %d " % (num, len(bodies))
        bodies += body + b"\n"
        rows[num] = b"\x02" + stm.to_bytes(4, "big") + i.to_bytes(2, "big")
    content = header + bodies
    rows[stm] = b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00"
    out += b"%d 0 obj\n<</Type/ObjStm/N %d/First %d/Length %d>>stream\n%s\nendstream\nendobj\n" % (
        stm, len(compressed), len(header), len(content), content)
    rows[xref] = b"\x01" + len(out).to_bytes(4, "big") + b"\x00\x00"
    nums = sorted(rows)
    index = b" ".join(b"%d 1" % n for n in nums)
    table = b"".join(rows[n] for n in nums)
    at = len(out)
    out += (b"%d 0 obj\n<</Type/XRef/Size %d/Root %s/Prev %d/W[1 4 2]/Index[%s]/Length %d>>stream\n%s\nendstream\n"
            b"endobj\nstartxref\n%d\n%%%%EOF\n" % (xref, xref + 1, trailer_value(data, "Root").encode(),
                                                  last_startxref(data), index, len(table), table, at))
    return bytes(out)
