"""Active content and certification of a PDF (活动内容 / 文档认证), checked before stamping and in 验章.

Active content changes what is shown, or sends data, when a file is opened: JavaScript (a /JavaScript
names tree, /JS in an OpenAction or /AA action), /Launch, /SubmitForm, /ImportData, RichMedia, XFA forms,
and embedded executables. Stamping refuses such a PDF naming what it found; 验章 reports it as a
warning (so the batch, which accepts only ``valid``, fails it with the reason).

Decisions: every object dictionary is read through MuPDF (compressed objects included, ``#xx`` name
escapes decoded, so ``/J#61vaScript`` is found) with literal strings removed first, so a title that
mentions "/JS" is no finding. A cheap look comes first: a file whose raw bytes and decoded object
streams hold none of the names, literally or with a name escape, cannot contain them (every dictionary
is either plain bytes of the file or inside an object stream); most batch files take that path.

DocMDP (certification, 文档认证): a PDF certified with /P 1 allows no change at all, so stamping refuses
it; /P 2 allows form filling and signatures and /P 3 also annotations — a SealFlow seal only adds a
signature, so both are stamped.
"""

from __future__ import annotations

import re

import pymupdf

from stamping.pdf.errors import MUPDF_ERRORS

__all__ = ["active_content", "active_in_object", "docmdp_permission"]

# A raw-byte look first. Uncompressed object dictionaries are plain bytes of the file, so a file holding
# none of these names (literally, or as a name with a #xx escape) has none of them outside object streams.
# One pass finds the names and the object streams (whose decoded data is looked at the same way).
_NAMES = re.compile(rb"/(?:JavaScript|JS|Launch|SubmitForm|ImportData|RichMedia|XFA|EmbeddedFile|EF|(ObjStm))")
_HEX_ESCAPE = re.compile(rb"#[0-9A-Fa-f]{2}")
_NAME_BEFORE = re.compile(rb"/[!-$&'*-.0-;=?-Z\\^-z|~]*\Z")  # a name (printable, no delimiters) up to here
_OBJ_HEADER = re.compile(rb"(\d+)\s+\d+\s+obj\b")
_LITERAL = re.compile(r"\((?:\\.|[^\\()])*\)")
_FINDINGS = (
    (re.compile(r"/S\s*/JavaScript\b|/JS\b"), "JavaScript action"),
    (re.compile(r"/JavaScript\s*(?:\d+\s+\d+\s+R|<<)"), "JavaScript names tree"),
    (re.compile(r"/S\s*/Launch\b"), "Launch action"),
    (re.compile(r"/S\s*/SubmitForm\b"), "SubmitForm action"),
    (re.compile(r"/S\s*/ImportData\b"), "ImportData action"),
    (re.compile(r"/RichMedia\w*\b"), "RichMedia content"),
    (re.compile(r"/XFA\b"), "XFA form"),
)
_EXECUTABLE_NAME = re.compile(r"\.(exe|com|bat|cmd|scr|pif|msi|dll|js|jse|vbs|vbe|wsf|ps1|sh|jar|app|apk|lnk|hta)\)?$",
                              re.I)
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe", b"PK\x03\x04")
_MAX_FINDINGS = 10


def active_content(doc: pymupdf.Document, data: bytes) -> list[str]:
    """What active content the document holds, e.g. ["JavaScript action (object 12)"]; [] when none."""
    if not _may_hold_names(data, doc):
        return []
    found: list[str] = []
    for num in range(1, doc.xref_length()):
        found.extend(active_in_object(doc, num))
        if len(found) >= _MAX_FINDINGS:
            break
    return list(dict.fromkeys(found))[:_MAX_FINDINGS]


def active_in_object(doc: pymupdf.Document, num: int) -> list[str]:
    """The active content one object holds (an action, a script, XFA, an executable file)."""
    try:
        text = _LITERAL.sub("()", doc.xref_object(num, compressed=True))
        embedded = doc.xref_get_key(num, "Type") == ("name", "/EmbeddedFile")
    except MUPDF_ERRORS:
        return []
    found = [f"{what} (object {num})" for pattern, what in _FINDINGS if pattern.search(text)]
    if embedded or "/EF" in text:
        found.extend(_executables(doc, num, embedded))
    return found


def _may_hold_names(data: bytes, doc: pymupdf.Document | None = None) -> bool:
    """Whether the bytes (and, with ``doc``, the object streams they define) hold one of the names,
    literally or as a name written with a #xx escape."""
    object_streams = []
    for m in _NAMES.finditer(data):
        if m.group(1) is None:
            return True
        object_streams.append(m.start())
    if any(_NAME_BEFORE.search(data, max(0, m.start() - 127), m.start()) for m in _HEX_ESCAPE.finditer(data)):
        return True
    return doc is not None and any(_may_hold_names(_stream(doc, _object_number(data, at))) for at in object_streams)


def _object_number(data: bytes, at: int) -> int:
    """The number of the object whose dictionary holds the name at ``at`` (0: not found)."""
    heads = list(_OBJ_HEADER.finditer(data, max(0, at - 512), at))
    return int(heads[-1].group(1)) if heads else 0


def _stream(doc: pymupdf.Document, num: int) -> bytes:
    if num <= 0:
        return b"/JS"  # the object stream's header was not found: take the slow path
    try:
        return doc.xref_stream(num) or b""
    except MUPDF_ERRORS:
        return b"/JS"  # unreadable: take the slow path, which names what it can read


def _executables(doc: pymupdf.Document, num: int, is_stream: bool) -> list[str]:
    if is_stream:
        try:
            head = (doc.xref_stream(num) or b"")[:4]
        except MUPDF_ERRORS:
            return [f"unreadable embedded file (object {num})"]
        return [f"embedded executable (object {num})"] if head.startswith(_EXECUTABLE_MAGIC) else []
    names = [doc.xref_get_key(num, k)[1] for k in ("F", "UF") if doc.xref_get_key(num, k)[0] == "string"]
    return [f"embedded executable {name!r} (object {num})" for name in names if _EXECUTABLE_NAME.search(name)]


def docmdp_permission(doc: pymupdf.Document) -> tuple[int, int] | None:
    """(P, signature object) of a certification signature (catalog /Perms /DocMDP), None if uncertified."""
    root = doc.pdf_catalog()
    kind, value = doc.xref_get_key(root, "Perms/DocMDP")
    if kind != "xref":
        return None
    sig = int(value.split()[0])
    text = doc.xref_object(sig, compressed=True)
    params = re.search(r"/TransformParams\s*(<<.*?>>|\d+\s+\d+\s+R)", text, re.S)
    body = params.group(1) if params else ""
    if body.endswith("R"):
        body = doc.xref_object(int(body.split()[0]), compressed=True)
    p = re.search(r"/P\s+(\d+)", body)
    return (int(p.group(1)) if p else 2, sig)
