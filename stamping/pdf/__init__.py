"""PDF: sample certificates, SM2/SM3 stamping (incremental update) and 验章.

``stamp_pdf`` / ``verify_pdf`` / ``PdfError`` are imported lazily so that the sample generator
works without the crypto stack loaded."""

from __future__ import annotations

from typing import Any

__all__ = ["PdfError", "stamp_pdf", "verify_pdf"]


def __getattr__(name: str) -> Any:
    if name == "stamp_pdf":
        from stamping.pdf.sign import stamp_pdf

        return stamp_pdf
    if name == "verify_pdf":
        from stamping.pdf.verify import verify_pdf

        return verify_pdf
    if name == "PdfError":
        from stamping.pdf.errors import PdfError

        return PdfError
    raise AttributeError(name)
