"""Verify any sealed file (验章): OFD or PDF, told apart by content and name together, never raising.

Before anything looks inside, :func:`stamping.container.identify` decides what the file is (the same
check stamping runs): a file that is both a PDF and a ZIP, or whose name promises another format, or
an OFD zip that different readers could read differently, is ``not_valid`` with the reason.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from stamping.container import ContainerError, identify
from stamping.ofd.verify import verify_ofd
from stamping.pdf.verify import verify_pdf
from stamping.verdict.result import DocumentResult, SealStatusLookup, SignatureUseLookup

log = logging.getLogger(__name__)
MAX_FILE_BYTES = 256 * 1024 * 1024


def sniff_format(head: bytes) -> str:
    """A first guess from the head alone: 'ofd' for a zip, 'pdf' when %PDF- appears in the first KiB
    (as readers allow), else 'unknown'. Only a hint: :func:`stamping.container.identify` decides."""
    if head.startswith(b"PK\x03\x04"):
        return "ofd"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return "unknown"


def verify_bytes(data: bytes, path: str, trust, status_lookup: SealStatusLookup | None = None, *,
                 use_lookup: SignatureUseLookup | None = None) -> DocumentResult:
    try:
        fmt = identify(data, path)
    except ContainerError as exc:
        return DocumentResult(path, sniff_format(data[:1024]), error=exc.reason)
    try:
        if fmt == "ofd":
            return verify_ofd(data, path, trust, status_lookup, use_lookup=use_lookup)
        if fmt == "pdf":
            return verify_pdf(data, path, trust, status_lookup, use_lookup=use_lookup)
    except Exception as exc:
        # A verifier bug must not stop a batch; the document is reported as not verifiable.
        log.exception("verification of %s failed unexpectedly", path)
        return DocumentResult(path, fmt, error=f"verification failed: {type(exc).__name__}: {exc}")
    return DocumentResult(path, "unknown", error="not an OFD or PDF file")  # unreachable: identify decided


def verify_file(path: str | os.PathLike, trust, status_lookup: SealStatusLookup | None = None, *,
                use_lookup: SignatureUseLookup | None = None) -> DocumentResult:
    """Verify one file; an unreadable file gives ``DocumentResult(error=reason)``."""
    name = str(path)
    try:
        p = Path(path)
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            return DocumentResult(name, "unknown", error=f"file too large ({size} bytes > {MAX_FILE_BYTES})")
        data = p.read_bytes()
    except OSError as exc:
        return DocumentResult(name, "unknown", error=f"cannot read file: {exc.strerror or exc}")
    return verify_bytes(data, name, trust, status_lookup, use_lookup=use_lookup)
