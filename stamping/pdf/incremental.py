"""The incremental-update writer of PDF stamping: an update section appended after the original
bytes, holding new and rewritten objects and a cross-reference section of the same kind as the
input's (classic table, or a cross-reference stream for PDF 1.5 inputs).

Decisions:

* **The original bytes are never touched** and PyMuPDF's writer is never used, so an earlier
  signature keeps verifying; PyMuPDF only reads (object bodies, generations, trailer keys).
* **Rewritten objects keep their generation** (:meth:`Update.rewrite`), new ones start at the
  trailer's /Size; the trailer keeps /Root, /Info and a well-formed /ID and chains to the previous
  section with /Prev.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

import pymupdf

from stamping.pdf.errors import PdfError

_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF")


def last_startxref(data: bytes, path: str) -> int:
    """The offset of the input's last cross-reference section: the new section's /Prev."""
    tail = data[-4096:]
    hits = list(_STARTXREF.finditer(tail))
    if not hits:
        raise PdfError(path, "no startxref/%%EOF at the end (truncated file?)")
    off = int(hits[-1].group(1))
    if off >= len(data):
        raise PdfError(path, "startxref points past the end of the file")
    return off


def indirect_ref(obj: tuple[str, str]) -> int | None:
    """The object number of an indirect reference as PyMuPDF's ``xref_get_key`` gives it, else None."""
    kind, value = obj
    if kind != "xref":
        return None
    return int(value.split()[0])


@dataclass
class Update:
    """Objects of one incremental update section: number → body (without 'N 0 obj')."""

    next_num: int
    objects: dict[int, bytes] = field(default_factory=dict)
    gens: dict[int, int] = field(default_factory=dict)  # rewritten objects keep their generation

    def rewrite(self, doc: pymupdf.Document, num: int, body: bytes) -> None:
        self.objects[num] = body
        self.gens[num] = generation(doc, num)

    def add(self, body: bytes = b"") -> int:
        num = self.next_num
        self.next_num += 1
        self.objects[num] = body
        return num


def generation(doc: pymupdf.Document, num: int) -> int:
    """The generation number of an existing object (0 for objects in object streams)."""
    try:
        entry = pymupdf.mupdf.ll_pdf_get_xref_entry_no_null(pymupdf._as_pdf_document(doc).m_internal, num)
        return int(entry.gen) if str(entry.type) == "n" else 0
    except (AttributeError, RuntimeError, TypeError):  # pragma: no cover - older PyMuPDF
        return 0


def subsections(nums: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in nums:
        if out and out[-1][0] + out[-1][1] == n:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((n, 1))
    return out


def trailer_entries(doc: pymupdf.Document, size: int, prev: int) -> bytes:
    parts = [b"/Size %d" % size]
    for key in ("Root", "Info"):
        kind, value = doc.xref_get_key(-1, key)
        if kind == "xref":
            parts.append(b"/%s %s" % (key.encode(), value.encode("ascii")))
    kind, value = doc.xref_get_key(-1, "ID")
    if kind == "array" and re.fullmatch(r"\[\s*<[0-9A-Fa-f]*>\s*<[0-9A-Fa-f]*>\s*\]", value):
        parts.append(b"/ID" + value.encode())
    else:
        first = secrets.token_hex(16).upper().encode()
        parts.append(b"/ID[<%s><%s>]" % (first, first))
    parts.append(b"/Prev %d" % prev)
    return b"".join(parts)


def write_update(src: bytes, doc: pymupdf.Document, upd: Update, prev: int, xref_stream: bool) -> bytearray:
    out = bytearray(src)
    if not out.endswith(b"\n"):
        out += b"\n"
    offsets: dict[int, int] = {}
    for num in sorted(upd.objects):
        offsets[num] = len(out)
        out += b"%d %d obj\n" % (num, upd.gens.get(num, 0)) + upd.objects[num] + b"\nendobj\n"
    if xref_stream:
        xref_num = upd.next_num
        offsets[xref_num] = len(out)
        nums = sorted(offsets)
        rows = b"".join(b"\x01" + offsets[n].to_bytes(4, "big") + upd.gens.get(n, 0).to_bytes(2, "big")
                        for n in nums)
        index = b" ".join(b"%d %d" % s for s in subsections(nums))
        out += (b"%d 0 obj\n<</Type/XRef%s/W[1 4 2]/Index[%s]/Length %d>>stream\n"
                % (xref_num, trailer_entries(doc, xref_num + 1, prev), index, len(rows)))
        out += rows + b"\nendstream\nendobj\n"
        out += b"startxref\n%d\n%%%%EOF\n" % offsets[xref_num]
        return out
    start = len(out)
    out += b"xref\n"
    nums = sorted(offsets)
    pos = 0
    for first, count in subsections(nums):
        out += b"%d %d\n" % (first, count)
        for n in nums[pos:pos + count]:
            out += b"%010d %05d n\r\n" % (offsets[n], upd.gens.get(n, 0))
        pos += count
    out += b"trailer\n<<" + trailer_entries(doc, upd.next_num, prev) + b">>\n"
    out += b"startxref\n%d\n%%%%EOF\n" % start
    return out
