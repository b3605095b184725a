"""四性检测 可用性 '内容可正常打开' (content_opens): a real open that fails for documents a reader cannot show."""

from __future__ import annotations

import io
import zipfile

import pymupdf
import pytest

from archive.checks import BatchFacts, RecordContext
from archive.checks.items import FAIL, PASS, content_opens, no_encryption
from stamping.batch.samples import render_certificate, sample_rows

ROWS = {row["format"]: row for row in sample_rows(2)}


def _ctx(data: bytes, fmt: str) -> RecordContext:
    return RecordContext(record={}, archival_code="", code_pattern="", document_name=f"doc.{fmt}", data=data,
                         declared_format=fmt, declared_size=len(data), carried_sm3="", actual_sm3="",
                         verification=None, batch=BatchFacts())


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return render_certificate(ROWS["pdf"])


@pytest.fixture(scope="module")
def ofd() -> bytes:
    return render_certificate(ROWS["ofd"])


def test_a_certificate_opens_and_its_page_count_is_named(pdf: bytes, ofd: bytes) -> None:
    assert content_opens(_ctx(pdf, "pdf")) == (PASS, "PDF opens with PyMuPDF, 1 page(s)")
    assert content_opens(_ctx(ofd, "ofd")) == (PASS, "OFD opens, 1 page(s)")


def test_a_pdf_that_needs_a_password_does_not_open_and_is_reported_encrypted(pdf: bytes) -> None:
    with pymupdf.open(stream=pdf, filetype="pdf") as doc:
        locked = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")
    ctx = _ctx(locked, "pdf")
    assert content_opens(ctx) == (FAIL, "PDF is encrypted")
    assert no_encryption(ctx) == (FAIL, "PDF is encrypted")


def test_a_pdf_without_pages_or_without_objects_does_not_open() -> None:
    empty = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
             b"trailer<</Root 1 0 R>>\n%%EOF\n")
    assert content_opens(_ctx(empty, "pdf")) == (FAIL, "PDF has no pages")
    status, reason = content_opens(_ctx(b"%PDF-1.7\nnothing a reader can use\n", "pdf"))
    assert status == FAIL and reason.startswith("PDF does not open:")


def test_an_ofd_whose_page_is_missing_does_not_open(ofd: bytes) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(ofd)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("Content.xml"):
                dst.writestr(info, src.read(info))
    status, reason = content_opens(_ctx(out.getvalue(), "ofd"))
    assert status == FAIL and "missing part" in reason, reason
