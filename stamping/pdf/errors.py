"""Typed errors of the PDF code."""

from __future__ import annotations


class PdfError(ValueError):
    """A PDF that cannot be stamped or read: encrypted, damaged, not a PDF, too large…"""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _mupdf_errors() -> tuple[type[BaseException], ...]:
    import pymupdf

    base = getattr(getattr(pymupdf, "mupdf", None), "FzErrorBase", None)
    return (RuntimeError,) + ((base,) if isinstance(base, type) else ())


# What PyMuPDF raises on damaged input (RuntimeError subclasses and low-level FzError*).
MUPDF_ERRORS = _mupdf_errors()
