"""Opening untrusted PDF bytes with PyMuPDF: the refusals stamping and 验章 share."""

from __future__ import annotations

import pymupdf

from stamping.container import ContainerError, identify
from stamping.pdf.errors import MUPDF_ERRORS, PdfError


def open_untrusted(data: bytes, path: str, max_bytes: int) -> pymupdf.Document:
    """A document for reading, or PdfError for oversized, non-PDF, unreadable or encrypted input."""
    if len(data) > max_bytes:
        raise PdfError(path, f"too large ({len(data)} bytes, limit {max_bytes})")
    if b"%PDF-" not in data[:1024]:
        raise PdfError(path, "not a PDF file (no %PDF- header)")
    try:  # container sanity, shared with the OFD reader: never a PDF that is also a ZIP, or named .ofd
        identify(data, path, expected="pdf")
    except ContainerError as exc:
        raise PdfError(path, exc.reason) from None
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except (ValueError, *MUPDF_ERRORS) as exc:
        raise PdfError(path, f"unreadable PDF ({exc})") from None
    if doc.is_encrypted or doc.needs_pass:
        doc.close()
        raise PdfError(path, "encrypted PDF: decrypt it first")
    return doc
