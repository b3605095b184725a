"""PDF stamping (盖章) with an SM2/SM3 CMS signature, written as an incremental update.

The original bytes are never touched: an update section is appended holding the signature field
and widget(s) with the seal picture as appearance, the /Sig dictionary, the page and AcroForm
objects that now name them, and a cross-reference section of the same kind as the input's
(classic table, or a cross-reference stream for PDF 1.5 inputs). SM3 over the /ByteRange, the
CMS is built here (see ``cms.py``) and spliced into the /Contents hole.

PyMuPDF reads the input (page objects, /Annots, the AcroForm, anchor text); its writer is never
used, so a second seal keeps the first one valid.

Two parts live in modules of their own: the incremental-update writer (``incremental.py``: the
update section, rewritten objects' generations, the cross-reference section and trailer) and the
widget geometry (``widgets.py``: where the seal goes, in PDF user space). This module builds the
objects of the seal (field, widgets, appearance, /Sig) and signs.

骑缝章 (``Placement.cross_page``): ONE signature field with one widget per page (its /Kids),
each widget showing that page's vertical slice of the seal at the page's right edge. One CMS
signs the whole document once, and a verifier sees a single seal.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import pymupdf

from gmpki.gm.sm3 import new_sm3
from gmpki.keys.signer import Signer
from stamping.pdf.active import active_content, docmdp_permission
from stamping.pdf.appearance import SealImage, ring_ops, seal_image
from stamping.pdf.cms import CONTAINERS, MAX_SM2_SIG_DER, build_signed_attrs, build_signed_data
from stamping.pdf.errors import MUPDF_ERRORS, PdfError
from stamping.pdf.incremental import Update, generation, indirect_ref, last_startxref, write_update
from stamping.pdf.reading import open_untrusted
from stamping.pdf.widgets import MM, Widget, seal_widgets
from stamping.placement import Placement
from stamping.ses.make import check_binding

if TYPE_CHECKING:
    from gmpki.pki.tsa_client import Timestamper

__all__ = ["MAX_PDF_BYTES", "PdfError", "open_pdf", "stamp_pdf"]

MAX_PDF_BYTES = 512 * 1024 * 1024
MAX_PAGES = 20_000
_BYTE_RANGE_PLACEHOLDER = b"/ByteRange[0 0000000000 0000000000 0000000000]"
# Room in /Contents for the TSA's token, which arrives only after the byte range is hashed. Ours
# are ~1.7 KB (token, TSA and issuing-CA certificates); other TSAs' with RSA chains ~4-6 KB.
TOKEN_RESERVE = 8192
# Once the TSA client has seen a token, the reserve is that size plus this margin: a TSA's tokens
# differ by a few bytes (nonce, serial number, DER signature length: ours by 3 in 300 tokens). Every
# reserved byte costs two zeros in every sealed file; a token that still does not fit makes the
# document be stamped again with the full TOKEN_RESERVE (see ``stamp_pdf``), never fail.
TOKEN_MARGIN = 64

pymupdf.TOOLS.mupdf_display_errors(False)  # damaged input is reported as PdfError, not stderr noise


def open_pdf(data: bytes, path: str, max_bytes: int = MAX_PDF_BYTES) -> pymupdf.Document:
    """Open untrusted PDF bytes for reading; refuse what we must not or cannot update."""
    doc = open_untrusted(data, path, max_bytes)
    try:
        if doc.is_repaired:
            raise PdfError(path, "damaged PDF (broken cross-reference table or truncated file)")
        if not 0 < doc.page_count <= MAX_PAGES:
            raise PdfError(path, f"{doc.page_count} pages (1..{MAX_PAGES} supported)")
        _refuse_active_content_and_certification(doc, data, path)
    except PdfError:
        doc.close()
        raise
    return doc


def _refuse_active_content_and_certification(doc: pymupdf.Document, data: bytes, path: str) -> None:
    """Active content (issue 12 item 5) and a DocMDP P=1 certification (item 4) are not stamped."""
    found = active_content(doc, data)
    if found:
        raise PdfError(path, "active content, not stamped: " + "; ".join(found)
                       + " — ask the issuer for a PDF without scripts, actions, XFA or embedded programs")
    certified = docmdp_permission(doc)
    if certified is not None and certified[0] == 1:
        raise PdfError(path, f"certified with DocMDP /P 1 (no changes allowed, certification signature object "
                             f"{certified[1]}): a seal would break the certification — stamp the uncertified "
                             "original instead")


def _pdf_text(s: str) -> bytes:
    """A PDF text string: ASCII as a literal, anything else as UTF-16BE hex with BOM."""
    if s.isascii() and s.isprintable():
        return b"(" + s.encode().replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"
    return b"<FEFF" + s.encode("utf-16-be").hex().upper().encode() + b">"


def _pdf_date(dt: datetime) -> bytes:
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    off = dt.utcoffset() or 0
    minutes = int(off.total_seconds() // 60) if off else 0
    sign = "+" if minutes >= 0 else "-"
    return f"(D:{dt:%Y%m%d%H%M%S}{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}')".encode()


def _num(v: float) -> bytes:
    return (b"%.3f" % v).rstrip(b"0").rstrip(b".") or b"0"


# --- objects -------------------------------------------------------------------------------

def _appearance(upd: Update, image: SealImage, image_num: int | None, widget: Widget, rotation: int) -> int:
    w_pt, h_pt = image.width_mm * MM, image.height_mm * MM
    sw = w_pt / widget.slices
    shift = -widget.slice_index * sw
    if image_num is not None:
        ops = b"q %s 0 0 %s %s 0 cm /Im0 Do Q" % (_num(w_pt), _num(h_pt), _num(shift))
        res = b"/Resources<</XObject<</Im0 %d 0 R>>>>" % image_num
    else:
        ops = b"q 1 0 0 1 %s 0 cm %s Q" % (_num(shift), ring_ops(w_pt, h_pt))
        res = b"/Resources<<>>"
    # Counter the page rotation so the seal stands upright as the page is displayed.
    matrix = {90: b"/Matrix[0 1 -1 0 0 0]", 180: b"/Matrix[-1 0 0 -1 0 0]", 270: b"/Matrix[0 -1 1 0 0 0]"}
    body = (b"<</Type/XObject/Subtype/Form/BBox[0 0 %s %s]%s%s/Length %d>>stream\n%s\nendstream"
            % (_num(sw), _num(h_pt), matrix.get(rotation % 360, b""), res, len(ops), ops))
    return upd.add(body)


def _image_objects(upd: Update, image: SealImage) -> int | None:
    if image.image_obj is None:
        return None
    image_num = upd.add()
    body = image.image_obj
    if image.smask_obj is not None:
        smask_num = upd.add(image.smask_obj)
        body = body.replace(b"SMASK_REF", b"%d 0 R" % smask_num, 1)
    upd.objects[image_num] = body
    return image_num


def _field_name() -> bytes:
    return b"(SealFlow_Seal_" + secrets.token_hex(4).encode() + b")"


def _add_to_page_annots(doc: pymupdf.Document, upd: Update, page_xref: int, nums: Iterable[int], path: str) -> None:
    refs = " ".join(f"{n} 0 R" for n in nums)
    annots = doc.xref_get_key(page_xref, "Annots")
    ref = indirect_ref(annots)
    if ref is not None:  # an indirect array: update that array object only
        old = doc.xref_object(ref, compressed=True).strip()
        if not (old.startswith("[") and old.endswith("]")):
            raise PdfError(path, f"page /Annots object {ref} is not an array")
        upd.rewrite(doc, ref, f"{old[:-1]} {refs}]".encode("latin-1"))
        return
    old = annots[1].strip() if annots[0] == "array" else "[]"
    doc.xref_set_key(page_xref, "Annots", f"{old[:-1]} {refs}]")
    upd.rewrite(doc, page_xref, doc.xref_object(page_xref, compressed=True).encode("latin-1"))


def _add_to_acroform(doc: pymupdf.Document, upd: Update, field_num: int) -> None:
    root = doc.pdf_catalog()
    form = doc.xref_get_key(root, "AcroForm")
    form_num = indirect_ref(form)
    if form_num is None and form[0] != "dict":
        form_num = upd.add(b"<</Fields[%d 0 R]/SigFlags 3>>" % field_num)
        doc.xref_set_key(root, "AcroForm", f"{form_num} 0 R")
        upd.rewrite(doc, root, doc.xref_object(root, compressed=True).encode("latin-1"))
        return
    owner, prefix = (form_num, "") if form_num is not None else (root, "AcroForm/")
    fields = doc.xref_get_key(owner, prefix + "Fields")
    fields_num = indirect_ref(fields)
    if fields_num is not None:
        old = doc.xref_object(fields_num, compressed=True).strip()
        upd.rewrite(doc, fields_num, f"{old[:-1]} {field_num} 0 R]".encode("latin-1"))
    else:
        old = fields[1].strip() if fields[0] == "array" else "[]"
        doc.xref_set_key(owner, prefix + "Fields", f"{old[:-1]} {field_num} 0 R]")
    doc.xref_set_key(owner, prefix + "SigFlags", "3")
    upd.rewrite(doc, owner, doc.xref_object(owner, compressed=True).encode("latin-1"))


# --- signing -------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _contents_size(seal_der: bytes, certificate: bytes, container: str, year_utc: bool) -> int:
    """Exact size of our CMS with the longest possible SM2 signature (DER is deterministic)."""
    at = datetime(2026, 1, 1, tzinfo=UTC) if year_utc else datetime(2050, 1, 1, tzinfo=UTC)
    attrs = build_signed_attrs(b"\0" * 32, at, seal_der, container)
    return len(build_signed_data(attrs, b"\0" * MAX_SM2_SIG_DER, certificate, container))


def stamp_pdf(src: bytes, seal_der: bytes, signer: Signer, placement: Placement, signed_at: datetime | None = None,
              container: str = "pkcs7", reason: str = "电子印章", location: str = "", *,
              path: str = "<pdf>", signer_name: str | None = None, max_bytes: int = MAX_PDF_BYTES,
              timestamper: Timestamper | None = None) -> bytes:
    """Stamp ``seal_der`` (DER SESeal) on a PDF, signing it with ``signer``; returns the new bytes.

    ``timestamper``: the TSA whose token over the signature value is added as the unsigned
    signature-time-stamp attribute; the /Contents hole then leaves room for it (the largest token the
    client has seen plus ``TOKEN_MARGIN``, or ``TOKEN_RESERVE`` before the first).

    ``container``: "pkcs7" or "gbt35275" content-type OIDs. Raises PdfError for input we cannot
    stamp (encrypted, damaged, not a PDF, too large, bad page), AnchorNotFound, and
    ``stamping.ses.make.SealBindingError`` when the seal was not made for the signer's certificate."""
    if container not in CONTAINERS:
        raise ValueError(f"container must be one of {sorted(CONTAINERS)}, not {container!r}")
    signed_at = (signed_at or datetime.now(UTC)).replace(microsecond=0)
    args = (src, seal_der, signer, placement, signed_at, container, reason, location, path, signer_name, max_bytes,
            timestamper)
    reserve = _token_reserve(timestamper)
    try:
        return _stamp(*args, reserve)
    except _ReserveTooSmall:
        if reserve >= TOKEN_RESERVE:
            raise
        return _stamp(*args, TOKEN_RESERVE)  # a token larger than the ones seen so far: once more, with room


def _stamp(src: bytes, seal_der: bytes, signer: Signer, placement: Placement, signed_at: datetime, container: str,
           reason: str, location: str, path: str, signer_name: str | None, max_bytes: int,
           timestamper: Timestamper | None, token_reserve: int) -> bytes:
    # The seal must have been made for this signer (certList), as for OFD: SealBindingError.
    check_binding(seal_der, signer.certificate)
    image = seal_image(seal_der)
    doc = open_pdf(src, path, max_bytes)
    try:
        prev = last_startxref(src, path)
        xref_stream = doc.xref_get_key(-1, "Type") == ("name", "/XRef")
        widgets = seal_widgets(doc, placement, image, path)
        kind, size = doc.xref_get_key(-1, "Size")
        upd = Update(max(int(size) if kind == "int" else 0, doc.xref_length()))

        image_num = _image_objects(upd, image)
        sig_num = upd.add()
        field_num = upd.add()
        widget_nums: dict[int, list[int]] = {}
        kids = []
        for w in widgets:
            page = doc[w.page_index]
            ap = _appearance(upd, image, image_num, w, page.rotation)
            rect = b" ".join(_num(v) for v in w.rect)
            common = (b"/Type/Annot/Subtype/Widget/P %d %d R/Rect[%s]/F 132/AP<</N %d 0 R>>"
                      % (page.xref, generation(doc, page.xref), rect, ap))
            if len(widgets) == 1:
                upd.objects[field_num] = (b"<<%s/FT/Sig/T%s/V %d 0 R>>" % (common, _field_name(), sig_num))
                widget_nums.setdefault(page.xref, []).append(field_num)
            else:
                num = upd.add(b"<<%s/Parent %d 0 R>>" % (common, field_num))
                kids.append(num)
                widget_nums.setdefault(page.xref, []).append(num)
        if kids:
            upd.objects[field_num] = (b"<</FT/Sig/T%s/V %d 0 R/Kids[%s]>>"
                                      % (_field_name(), sig_num, b" ".join(b"%d 0 R" % k for k in kids)))
        for page_xref, nums in widget_nums.items():
            _add_to_page_annots(doc, upd, page_xref, nums, path)
        _add_to_acroform(doc, upd, field_num)

        utc_time = 1950 <= signed_at.astimezone(UTC).year < 2050
        hole = 2 * (_contents_size(seal_der, signer.certificate, container, utc_time) + token_reserve)
        name = signer_name or _subject_cn(signer.certificate)
        upd.objects[sig_num] = (
            b"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/adbe.pkcs7.detached" + _BYTE_RANGE_PLACEHOLDER
            + b"/Contents<" + b"0" * hole + b">/M" + _pdf_date(signed_at) + b"/Name" + _pdf_text(name)
            + b"/Reason" + _pdf_text(reason) + (b"/Location" + _pdf_text(location) if location else b"") + b">>")
        out = write_update(src, doc, upd, prev, xref_stream)
    except MUPDF_ERRORS as exc:  # a damaged object met while reading pages, annotations or the form
        raise PdfError(path, f"damaged PDF: {exc}") from None
    finally:
        doc.close()
    return _sign(out, len(src), seal_der, signer, signed_at, container, hole, timestamper, path)


def _sign(out: bytearray, search_from: int, seal_der: bytes, signer: Signer, signed_at: datetime,
          container: str, hole: int, timestamper: Timestamper | None = None, path: str = "<pdf>") -> bytes:
    br_at = out.index(_BYTE_RANGE_PLACEHOLDER, search_from)
    a = out.index(b"/Contents<", br_at) + len(b"/Contents")
    b = a + hole + 2
    byte_range = b"/ByteRange[0 %d %d %d]" % (a, b, len(out) - b)
    out[br_at:br_at + len(_BYTE_RANGE_PLACEHOLDER)] = byte_range.ljust(len(_BYTE_RANGE_PLACEHOLDER))
    h = new_sm3()
    with memoryview(out) as view:
        h.update(view[:a])
        h.update(view[b:])
    digest = h.digest()
    attrs = build_signed_attrs(digest, signed_at, seal_der, container)
    signature = signer.sign(attrs)
    token = timestamper.timestamp(signature) if timestamper is not None else None
    blob = build_signed_data(attrs, signature, signer.certificate, container,
                             time_stamp_token=token).hex().upper().encode()
    if len(blob) > hole:  # only a time-stamp token larger than the reserve can do this
        raise _ReserveTooSmall(path, f"the signature with its time-stamp token ({len(blob) // 2} bytes) does not "
                                     f"fit the /Contents reserve ({hole // 2} bytes): the TSA's tokens exceed "
                                     f"{TOKEN_RESERVE} bytes")
    out[a + 1:a + 1 + len(blob)] = blob
    return bytes(out)


class _ReserveTooSmall(PdfError):
    """The signature with its time-stamp token is larger than the /Contents hole left for it."""


def _token_reserve(timestamper: Timestamper | None) -> int:
    """Bytes to leave for the token: TOKEN_RESERVE until the TSA client has seen a token, then
    that size with TOKEN_MARGIN."""
    if timestamper is None:
        return 0
    seen = getattr(timestamper, "max_token_bytes", 0)
    return min(TOKEN_RESERVE, seen + TOKEN_MARGIN) if seen else TOKEN_RESERVE


@lru_cache(maxsize=256)
def _subject_cn(cert_der: bytes) -> str:
    from asn1crypto import x509

    subject = x509.Certificate.load(cert_der).subject.native
    return str(subject.get("common_name") or subject.get("organization_name") or "SealFlow")
