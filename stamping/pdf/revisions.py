"""What changed after a PDF signature (签名后修改): the revision each signature signed and every later update.

A signature covers the bytes up to the end of its /ByteRange: that is the *signed revision*. Everything
after it is an incremental update that a reader applies before it draws a page. Issue 12 (PDF Insecurity
classes ISA, shadow attacks, EAA/SSA) asks that those updates may only add further signatures (field,
widget, appearance) and DSS/VRI validation data. Two layers, both strict and independent of each other
and of the rendering comparison in ``rendering.py``:

1. **File structure (raw bytes).** Readers disagree about odd cross-reference data, so later updates must
   be plain: every later xref section is reached through a /Prev chain that steps back exactly one
   revision at a time down to the signed one; no hybrid /XRefStm; no duplicate entries; no entry that
   points back into the signed bytes (xref resurrection of an older object revision); no free entries;
   compressed objects only in object streams written later; every ``N G obj`` in the later bytes is the
   current definition of N in its revision (nothing hidden for repairing readers); MuPDF must not have
   repaired any revision.
2. **Objects (whitelist, as pyHanko's ``diff_analysis`` does, but deliberately narrower).** An object
   of the signed revision whose xref entry changed must keep its content, or be the catalog with only
   /AcroForm /DSS /Metadata /Extensions /MarkInfo /Version changed, the AcroForm with only /Fields grown
   (/SigFlags set), a page or an /Annots or /Fields array that only gains new signature fields/widgets,
   the /Info dictionary or the XMP metadata stream (never drawn). Every new object must be a new
   signature field (with a *new* /Sig value), its widgets, or reachable from them, or DSS/metadata/info
   data, or an xref/object stream. Anything else — a new catalog or page tree, changed content streams,
   resources, fonts, OCGs, an annotation of any subtype, a field value — is a modification, named.

The result lists the modifications (empty when the updates only add signatures) and, for the rendering
comparison, the new signature widgets per page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pymupdf

from stamping.pdf.active import active_in_object
from stamping.pdf.errors import MUPDF_ERRORS

__all__ = ["LaterUpdates", "Revisions", "analyse_later_updates"]

_STARTXREF_EOF = re.compile(rb"startxref\s+(\d+)\s+%%EOF[ \t]*(?:\r\n|\r|\n)?")
_OBJ_HEADER = re.compile(rb"(?<![0-9])(\d+)\s+(\d+)\s+obj\b")
_XREF_SUBSECTION = re.compile(rb"\s*(\d+)\s+(\d+)[ \t]*(?:\r\n|\r|\n)")
_XREF_ROW = re.compile(rb"(\d{10}) (\d{5}) ([nf])(?: \r| \n|\r\n)")
_REF = re.compile(r"(\d+)\s+\d+\s+R\b")
_LONG_HEX_STRING = re.compile(r"<[0-9A-Fa-f\s]{64,}>")  # a /Contents value: no references, slow to scan
# Catalog keys a later signature / DSS update may change (pyHanko's ROOT_EXEMPT_STRICT_COMPARISON).
_CATALOG_KEYS = {"AcroForm", "DSS", "Metadata", "Extensions", "MarkInfo", "Version"}
_ACROFORM_KEYS = {"Fields", "SigFlags"}
_INFO_KEYS = {"Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate", "Trapped"}
_MAX_NAMED = 20


@dataclass
class LaterUpdates:
    """What the updates after one signed revision do."""

    modifications: list[str] = field(default_factory=list)
    new_signature_fields: list[int] = field(default_factory=list)
    # page index → widget rectangles (PDF user space) of signatures added after the signed revision
    new_widget_rects: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    adds_dss: bool = False

    def modified(self, what: str) -> None:
        if len(self.modifications) < _MAX_NAMED and what not in self.modifications:
            self.modifications.append(what)


class Revisions:
    """The revisions of one file while it is verified, each opened at most once.

    Every signature over an earlier revision needs the revision it signed (for the object analysis and
    for the rendering) and each revision after it (file structure): opened afresh per signature, that was
    the signed revision twice and (k-1)(k-2)/2 intermediate revisions for a file with k seals. The
    renderings of the whole file's pages are kept here too (``pixmaps``, see ``rendering.py``): every
    earlier signature compares against the same pages. Owned by one verification; ``close`` ends it."""

    def __init__(self, doc: pymupdf.Document, data: bytes) -> None:
        self.doc, self.data = doc, data
        self._opened: dict[int, pymupdf.Document] = {}
        self.pixmaps: dict[int, pymupdf.Pixmap] = {}  # page index → the whole file's page, rendered

    def at(self, end: int) -> pymupdf.Document:
        """The revision ending at byte ``end`` (the file itself at its end); MuPDF's errors pass through."""
        if end == len(self.data):
            return self.doc
        rev = self._opened.get(end)
        if rev is None:
            rev = self._opened[end] = pymupdf.open(stream=self.data[:end], filetype="pdf")
        return rev

    def close(self) -> None:
        for rev in self._opened.values():
            rev.close()
        self._opened.clear()
        self.pixmaps.clear()


# --- xref entries ------------------------------------------------------------------------------

def _entry(doc: pymupdf.Document, num: int) -> tuple[str, int, int]:
    e = pymupdf.mupdf.ll_pdf_get_xref_entry_no_null(pymupdf._as_pdf_document(doc).m_internal, num)
    return str(e.type), int(e.ofs), int(e.gen)


def _where(doc: pymupdf.Document, num: int) -> tuple:
    """Where object ``num`` is defined: ('n', offset, gen), ('o', stream, index, where-stream) or free."""
    if num >= doc.xref_length():
        return ("f",)
    kind, ofs, gen = _entry(doc, num)
    if kind == "o":
        return ("o", ofs, gen, _where(doc, ofs) if ofs != num else ("f",))
    if kind == "n":
        return ("n", ofs, gen)
    return ("f",)


# --- layer 1: raw file structure ---------------------------------------------------------------

def _revision_ends(data: bytes, start: int) -> list[tuple[int, int]]:
    """(end offset, startxref) of every revision that ends after ``start``."""
    return [(m.end(), int(m.group(1))) for m in _STARTXREF_EOF.finditer(data, start)]


def _classic_section(data: bytes, at: int) -> tuple[list[tuple[int, str, int]], bytes] | None:
    """Rows (num, 'n'|'f', offset) and trailer text of a classic xref table at ``at``."""
    pos = at + 4
    rows: list[tuple[int, str, int]] = []
    while True:
        head = _XREF_SUBSECTION.match(data, pos)
        if head is None:
            break
        first, count = int(head.group(1)), int(head.group(2))
        pos = head.end()
        for i in range(count):
            row = _XREF_ROW.match(data, pos)
            if row is None:
                return None
            rows.append((first + i, row.group(3).decode(), int(row.group(1))))
            pos = row.end()
    trailer = re.match(rb"\s*trailer\s*(<<.*?>>)\s*startxref", data[pos:pos + 4096], re.S)
    return (rows, trailer.group(1)) if trailer else None


def _stream_section(rev: pymupdf.Document, num: int) -> list[tuple[int, str, int]] | None:
    """Rows (num, 'n'|'o'|'f', offset or object stream) of the xref stream object ``num``."""
    w = [int(v) for v in re.findall(r"\d+", rev.xref_get_key(num, "W")[1])]
    index_kind, index = rev.xref_get_key(num, "Index")
    size = rev.xref_get_key(num, "Size")[1]
    bounds = [int(v) for v in re.findall(r"\d+", index)] if index_kind == "array" else [0, int(size)]
    if len(w) != 3 or len(bounds) % 2:
        return None
    raw = rev.xref_stream(num) or b""
    width = sum(w)
    rows: list[tuple[int, str, int]] = []
    pos = 0
    for first, count in zip(bounds[::2], bounds[1::2], strict=True):
        for i in range(count):
            if pos + width > len(raw):
                return None
            fields = []
            p = pos
            for size_ in w:
                fields.append(int.from_bytes(raw[p:p + size_], "big") if size_ else None)
                p += size_
            kind = 1 if fields[0] is None else fields[0]
            rows.append((first + i, {0: "f", 1: "n", 2: "o"}.get(kind, "?"), fields[1] or 0))
            pos += width
    return rows


def _check_file_structure(out: LaterUpdates, revisions: Revisions, signed_end: int) -> None:
    data = revisions.data
    ends = _revision_ends(data, signed_end)
    if not ends or data[ends[-1][0]:].strip():
        out.modified(f"{len(data) - signed_end} bytes after the signed revision are not a complete incremental "
                     "update ending in startxref/%%EOF")
        return
    before = [int(m.group(1)) for m in _STARTXREF_EOF.finditer(data, max(0, signed_end - 1024), signed_end)]
    prev_xref = before[-1] if before else -1
    rev_start = signed_end
    for end, startxref in ends:
        try:
            _check_revision(out, revisions.at(end), data, signed_end, rev_start, end, startxref, prev_xref)
        except MUPDF_ERRORS as exc:
            out.modified(f"unreadable incremental update ending at byte {end}: {exc}")
        prev_xref, rev_start = startxref, end


def _check_revision(out: LaterUpdates, rev: pymupdf.Document, data: bytes, signed_end: int, start: int, end: int,
                    startxref: int, prev_xref: int) -> None:
    label = f"update at bytes {start}-{end}"
    if rev.is_repaired:
        out.modified(f"{label}: broken cross-reference data (readers rebuild it differently)")
        return
    if not start <= startxref < end:
        out.modified(f"{label}: its startxref {startxref} points outside the update")
        return
    rows, trailer = _section(rev, data, startxref)
    if rows is None:
        out.modified(f"{label}: unreadable cross-reference section at byte {startxref}")
        return
    prev = re.search(rb"/Prev\s+(\d+)", trailer)
    if prev is None or int(prev.group(1)) != prev_xref:
        out.modified(f"{label}: /Prev does not lead back to the previous revision (xref at byte {prev_xref})")
    if b"/XRefStm" in trailer:
        out.modified(f"{label}: hybrid cross-reference (/XRefStm) — readers disagree on which objects count")
    seen: set[int] = set()
    for num, kind, where in rows:
        if num in seen:
            out.modified(f"{label}: object {num} is listed twice in one cross-reference section")
        seen.add(num)
        if kind == "f" and num != 0:
            out.modified(f"{label}: object {num} is freed")
        elif kind == "n" and where < signed_end:
            out.modified(f"object {num}: the {label} points it back at an older definition at byte {where}, "
                         "inside the signed revision (xref resurrection)")
        elif kind == "o" and _where(rev, where)[:1] == ("n",) and _where(rev, where)[1] < signed_end:
            out.modified(f"object {num}: the {label} takes it from object stream {where} of the signed revision")
        elif kind not in ("n", "o", "f"):
            out.modified(f"{label}: unknown cross-reference entry type for object {num}")
    for m in _object_headers(data, start, end):
        num, ofs = int(m.group(1)), m.start()
        here = _where(rev, num)
        if here[:2] != ("n", ofs) and not _inside_stream(rev, data, start, ofs):
            out.modified(f"{label}: object {num} at byte {ofs} is not the one its cross-reference names "
                         "(hidden or duplicate object)")


def _object_headers(data: bytes, start: int, end: int) -> list[re.Match]:
    """Every 'N G obj' in data[start:end], found from the keyword backwards (a regex over a long hex
    string or binary stream would try every digit)."""
    out = []
    at = data.find(b"obj", start, end)
    while at >= 0:
        if data[at - 3:at] != b"end":
            m = _OBJ_HEADER.search(data, max(start, at - 24), at + 3)
            if m is not None and m.end() == at + 3:
                out.append(m)
        at = data.find(b"obj", at + 3, end)
    return out


def _inside_stream(rev: pymupdf.Document, data: bytes, start: int, ofs: int) -> bool:
    """Whether ``ofs`` lies inside the data of a stream object of this update that is current in ``rev``
    (an 'N G obj' text there is just data; a forged 'stream' keyword does not count)."""
    opened = data.rfind(b"stream", start, ofs)
    if opened < 0 or data[opened - 3:opened] == b"end":
        return False
    heads = list(_OBJ_HEADER.finditer(data, start, opened))
    if not heads or _where(rev, int(heads[-1].group(1)))[:2] != ("n", heads[-1].start()):
        return False
    closed = data.find(b"endstream", opened)
    return closed > ofs and data.rfind(b"endobj", heads[-1].start(), ofs) < 0


def _section(rev: pymupdf.Document, data: bytes, at: int) -> tuple[list | None, bytes]:
    if data.startswith(b"xref", at):
        parsed = _classic_section(data, at)
        return (parsed[0], parsed[1]) if parsed else (None, b"")
    head = _OBJ_HEADER.match(data, at)
    if head is None:
        return None, b""
    num = int(head.group(1))
    if rev.xref_get_key(num, "Type") != ("name", "/XRef"):
        return None, b""
    dict_end = data.find(b"stream", at)
    return _stream_section(rev, num), data[at:dict_end if dict_end > 0 else at + 4096]


# --- layer 2: objects --------------------------------------------------------------------------

def _same_content(old: pymupdf.Document, new: pymupdf.Document, num: int) -> bool:
    if old.xref_object(num, compressed=True) != new.xref_object(num, compressed=True):
        return False
    return not old.xref_is_stream(num) or old.xref_stream_raw(num) == new.xref_stream_raw(num)


def _keys(doc: pymupdf.Document, num: int) -> dict[str, str]:
    return {k: doc.xref_get_key(num, k)[1] for k in doc.xref_get_keys(num)}


def _changed_keys(old: pymupdf.Document, new: pymupdf.Document, num: int) -> set[str]:
    a, b = _keys(old, num), _keys(new, num)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def _refs(text: str) -> list[int]:
    if "<" in text and len(text) > 1024:
        text = _LONG_HEX_STRING.sub("<>", text)
    return [int(n) for n in _REF.findall(text)]


def _ref(pair: tuple[str, str]) -> int | None:
    return int(pair[1].split()[0]) if pair[0] == "xref" else None


def _describe(doc: pymupdf.Document, num: int, pages: dict[int, int]) -> str:
    if num in pages:
        return f"object {num} (page {pages[num] + 1})"
    if num == doc.pdf_catalog():
        return f"object {num} (catalog)"
    pairs = [doc.xref_get_key(num, k) for k in ("Type", "Subtype", "S")]
    names = [value for kind, value in pairs if kind == "name"]
    if not names and doc.xref_is_stream(num):
        names = ["stream"]
    return f"object {num}" + (f" ({' '.join(names)})" if names else "")


def _sig_value(new: pymupdf.Document, num: int, new_nums: set[int]) -> bool:
    """A signature field whose /V is a new signature dictionary."""
    if new.xref_get_key(num, "FT") != ("name", "/Sig"):
        return False
    value = _ref(new.xref_get_key(num, "V"))
    return value is not None and value in new_nums and (
        new.xref_get_key(value, "Type") == ("name", "/Sig") or new.xref_get_key(value, "ByteRange")[0] == "array")


def _signature_addition(new: pymupdf.Document, num: int, new_nums: set[int]) -> int | None:
    """The new signature field ``num`` belongs to (it is that field or one of its widgets), else None."""
    if num not in new_nums:
        return None
    if _sig_value(new, num, new_nums):
        return num
    parent = _ref(new.xref_get_key(num, "Parent"))
    if (new.xref_get_key(num, "Subtype") == ("name", "/Widget") and parent is not None
            and _sig_value(new, parent, new_nums)):
        return parent
    return None


def _closure(new: pymupdf.Document, roots: set[int], within: set[int]) -> set[int]:
    """Objects of ``within`` reachable from ``roots`` (following references of dictionaries/arrays)."""
    seen: set[int] = set()
    stack = [r for r in roots if r in within]
    while stack:
        num = stack.pop()
        if num in seen:
            continue
        seen.add(num)
        stack.extend(r for r in _refs(new.xref_object(num, compressed=True)) if r in within and r not in seen)
    return seen


def _grown_array(old_text: str, new_text: str) -> list[int] | None:
    """References added to an array that kept all its old entries in order, or None if it did not."""
    old_refs, new_refs = _refs(old_text), _refs(new_text)
    if new_refs[:len(old_refs)] != old_refs:
        return None
    if re.sub(_REF, "", old_text).replace(" ", "").strip("[]") != "" or re.sub(
            _REF, "", new_text).replace(" ", "").strip("[]") != "":
        return None
    return new_refs[len(old_refs):]


class _Analysis:
    def __init__(self, old: pymupdf.Document, new: pymupdf.Document, out: LaterUpdates) -> None:
        self.old, self.new, self.out = old, new, out
        self.pages = {old.page_xref(i): i for i in range(old.page_count)}
        self.added_refs: set[int] = set()  # references added to /Annots or /Fields
        self.side_roots: set[int] = set()  # new DSS / metadata / info objects (never drawn)
        limit = new.xref_length()
        self.new_nums = {n for n in range(1, limit) if _where(old, n) == ("f",) and _where(new, n) != ("f",)}
        # Who refers to whom in the signed revision: a shadow attack prepares an object that is both
        # harmless metadata and page content, or a reference to an object that does not exist yet.
        self.referrers: dict[int, set[int]] = {}
        for num in range(1, old.xref_length()):
            # cross-reference streams name /Root and /Info like a trailer; they are not drawn
            if _where(old, num) != ("f",) and old.xref_get_key(num, "Type") != ("name", "/XRef"):
                for ref in _refs(old.xref_object(num, compressed=True)):
                    self.referrers.setdefault(ref, set()).add(num)
        root = old.pdf_catalog()
        self.growable = {r for r in (_ref(old.xref_get_key(p, "Annots")) for p in self.pages) if r is not None}
        form = _ref(old.xref_get_key(root, "AcroForm"))
        fields = _ref(old.xref_get_key(form, "Fields")) if form else _ref(old.xref_get_key(root, "AcroForm/Fields"))
        if fields is not None:
            self.growable.add(fields)

    def name(self, num: int) -> str:
        return _describe(self.old if _where(self.old, num) != ("f",) else self.new, num, self.pages)

    def run(self) -> None:
        old, new = self.old, self.new
        old_root, new_root = old.pdf_catalog(), new.pdf_catalog()
        if old_root != new_root:
            self.out.modified(f"a new catalog (object {new_root}) replaces the signed one (object {old_root})")
        old_info, new_info = _ref(old.xref_get_key(-1, "Info")), _ref(new.xref_get_key(-1, "Info"))
        if new_info is not None and new_info in self.new_nums:
            self.side_roots.add(new_info)
        for num in sorted(self.new_nums & self.referrers.keys()):
            self.out.modified(f"object {num} is referenced by object(s) {sorted(self.referrers[num])} of the signed "
                              "revision, where it did not exist, and is defined by a later update")
        for num in range(1, old.xref_length()):
            if _where(old, num) == ("f",) or _where(old, num) == _where(new, num):
                continue
            if _where(new, num) == ("f",):
                self.out.modified(f"{self.name(num)} was deleted")
            elif not _same_content(old, new, num):
                self._changed(num, is_root=num == old_root, is_info=num == old_info)
        self._new_objects()

    def _changed(self, num: int, *, is_root: bool, is_info: bool) -> None:
        old, new = self.old, self.new
        if is_info and self._only_metadata(num):
            return
        if is_root:
            extra = _changed_keys(old, new, num) - _CATALOG_KEYS
            if extra:
                self.out.modified(f"{self.name(num)}: /{', /'.join(sorted(extra))} changed")
            self._catalog_parts(num)
            return
        if (num == _ref(old.xref_get_key(old.pdf_catalog(), "Metadata"))
                and self.referrers.get(num, set()) <= {old.pdf_catalog()}
                and new.xref_get_key(num, "Subtype") == ("name", "/XML")):
            return  # XMP metadata, used for nothing else, is never drawn
        old_text = old.xref_object(num, compressed=True).strip()
        new_text = new.xref_object(num, compressed=True).strip()
        if old_text.startswith("[") and not old.xref_is_stream(num) and num in self.growable:
            self._grown(old_text, new_text, f"{self.name(num)}: array entries changed or removed")
            return
        if old.xref_is_stream(num) or new.xref_is_stream(num):
            self.out.modified(f"{self.name(num)}: stream changed")
            return
        changed = _changed_keys(old, new, num)
        if num == _ref(old.xref_get_key(old.pdf_catalog(), "AcroForm")):
            self._acroform(num, changed)
        elif num in self.pages and changed == {"Annots"}:
            self._annots_key(num)
        else:
            self.out.modified(f"{self.name(num)}: /{', /'.join(sorted(changed)) or 'content'} changed")

    def _only_metadata(self, num: int) -> bool:
        """The /Info dictionary, used by nothing else, with document-information strings only."""
        new = self.new
        return (not self.referrers.get(num) and not new.xref_is_stream(num)
                and all(k in _INFO_KEYS and new.xref_get_key(num, k)[0] in ("string", "name")
                        for k in new.xref_get_keys(num)))

    def _catalog_parts(self, root: int) -> None:
        old, new = self.old, self.new
        for key in ("DSS", "Metadata"):
            ref = _ref(new.xref_get_key(root, key))
            if ref is not None and ref in self.new_nums:
                self.side_roots.add(ref)
                self.out.adds_dss |= key == "DSS"
        old_form, new_form = old.xref_get_key(root, "AcroForm"), new.xref_get_key(root, "AcroForm")
        if old_form == new_form:
            return
        if old_form[0] == "xref" or new_form[0] == "xref":
            ref = _ref(new_form)
            if old_form[0] in ("null",) and ref in self.new_nums:
                # a first signature field: the new AcroForm only lists new fields
                fields = new.xref_get_key(ref, "Fields")
                self.added_refs.update(_refs(fields[1]) if fields[0] == "array" else [])
                extra = set(new.xref_get_keys(ref)) - _ACROFORM_KEYS
                if extra:
                    self.out.modified(f"a new AcroForm (object {ref}) with /{', /'.join(sorted(extra))}")
                self.side_roots.add(ref)
            else:
                self.out.modified(f"{self.name(root)}: /AcroForm replaced")
            return
        changed = {k for k in ("Fields", "SigFlags", "DA", "DR", "NeedAppearances", "XFA", "CO")
                   if old.xref_get_key(root, "AcroForm/" + k) != new.xref_get_key(root, "AcroForm/" + k)}
        strip = re.compile(r"/(Fields\s*\[[^\]]*\]|SigFlags\s*\d+)")
        if changed - _ACROFORM_KEYS or strip.sub("", old_form[1]) != strip.sub("", new_form[1]):
            self.out.modified(f"{self.name(root)}: /AcroForm entries other than /Fields changed")
        self._fields_value(old.xref_get_key(root, "AcroForm/Fields"), new.xref_get_key(root, "AcroForm/Fields"),
                           f"{self.name(root)} /AcroForm /Fields")

    def _acroform(self, num: int, changed: set[str]) -> None:
        extra = changed - _ACROFORM_KEYS
        if extra:
            self.out.modified(f"{self.name(num)} (AcroForm): /{', /'.join(sorted(extra))} changed")
        self._fields_value(self.old.xref_get_key(num, "Fields"), self.new.xref_get_key(num, "Fields"),
                           f"{self.name(num)} /Fields")

    def _fields_value(self, old_v: tuple[str, str], new_v: tuple[str, str], what: str) -> None:
        if old_v != new_v:
            self._array_value(old_v, new_v, f"{what}: replaced", f"{what}: entries changed or removed")

    def _annots_key(self, page: int) -> None:
        self._array_value(self.old.xref_get_key(page, "Annots"), self.new.xref_get_key(page, "Annots"),
                          f"{self.name(page)}: /Annots replaced", f"{self.name(page)}: annotations changed or removed")

    def _array_value(self, old_v: tuple[str, str], new_v: tuple[str, str], replaced: str, refused: str) -> None:
        """A key whose direct array (absent before, or an array) may only gain entries; anything else —
        an indirect array, a value of another type — is ``replaced``."""
        if old_v[0] not in ("array", "null") or new_v[0] != "array":
            self.out.modified(replaced)
            return
        self._grown(old_v[1] if old_v[0] == "array" else "[]", new_v[1], refused)

    def _grown(self, old_text: str, new_text: str, refused: str) -> None:
        """Accept an array that only gained entries (the objects they name are then judged as added);
        report ``refused`` for any other change."""
        added = _grown_array(old_text, new_text)
        if added is None:
            self.out.modified(refused)
        else:
            self.added_refs.update(added)

    def _new_objects(self) -> None:
        new = self.new
        fields: set[int] = set()
        listed = self._form_fields()
        for ref in sorted(self.added_refs):
            owner = _signature_addition(new, ref, self.new_nums)
            if owner is None:
                self.out.modified(f"{self.name(ref)} added to the page or form (not a new signature)")
            elif owner not in listed:
                # a widget whose signature is not in the form is never verified, yet it would be drawn
                self.out.modified(f"{self.name(ref)} added: signature field {owner} is not in the form's /Fields")
            else:
                fields.add(owner)
        info = _ref(new.xref_get_key(-1, "Info"))
        if info in self.side_roots and not self._only_metadata(info):
            self.out.modified(f"{self.name(info)}: a new /Info with entries other than document information")
        self.out.new_signature_fields = sorted(fields)
        allowed = _closure(new, fields | self.added_refs & self.new_nums | self.side_roots, self.new_nums)
        for num in sorted(allowed):
            for what in active_in_object(new, num):
                self.out.modified(f"a later signature brings active content: {what}")
        for num in sorted(self.new_nums - allowed):
            kind = new.xref_get_key(num, "Type")
            if kind in (("name", "/XRef"), ("name", "/ObjStm")):
                continue
            self.out.modified(f"{self.name(num)} added")
        self._widget_rects(fields)

    def _form_fields(self) -> set[int]:
        new, root = self.new, self.new.pdf_catalog()
        form = _ref(new.xref_get_key(root, "AcroForm"))
        value = new.xref_get_key(form, "Fields") if form else new.xref_get_key(root, "AcroForm/Fields")
        if _ref(value) is not None:
            return set(_refs(new.xref_object(_ref(value), compressed=True)))
        return set(_refs(value[1])) if value[0] == "array" else set()

    def _widget_rects(self, fields: set[int]) -> None:
        new = self.new
        for page_num, index in self.pages.items():
            annots = new.xref_get_key(page_num, "Annots")
            refs = _refs(annots[1]) if annots[0] == "array" else []
            for ref in refs:
                if _signature_addition(new, ref, self.new_nums) in fields:
                    rect = [float(v) for v in re.findall(r"-?[\d.]+", new.xref_get_key(ref, "Rect")[1])]
                    if len(rect) == 4:
                        self.out.new_widget_rects.setdefault(index, []).append(tuple(rect))


def analyse_later_updates(doc: pymupdf.Document, data: bytes, signed_end: int,
                          revisions: Revisions | None = None) -> LaterUpdates:
    """Classify the updates after the revision ending at ``signed_end`` (``doc`` is the whole file).
    ``revisions``: the file's revisions as the caller keeps them open (else opened here and closed)."""
    own = revisions is None
    revisions = Revisions(doc, data) if revisions is None else revisions
    try:
        return _analyse(revisions, signed_end)
    finally:
        if own:
            revisions.close()


def _analyse(revisions: Revisions, signed_end: int) -> LaterUpdates:
    doc = revisions.doc
    out = LaterUpdates()
    _check_file_structure(out, revisions, signed_end)
    try:
        old = revisions.at(signed_end)
    except MUPDF_ERRORS as exc:
        out.modified(f"the signed revision cannot be read: {exc}")
        return out
    try:
        if old.is_repaired:
            out.modified("the signed revision's cross-reference data is broken (readers rebuild it differently)")
        if old.page_count != doc.page_count:
            out.modified(f"the page count changed from {old.page_count} to {doc.page_count}")
        _Analysis(old, doc, out).run()
    except MUPDF_ERRORS as exc:
        out.modified(f"damaged objects in a later update: {exc}")
    return out
