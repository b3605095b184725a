import pymupdf

from stamping.pdf.samples import make_sample_certificate_pdf
from tests.pdf.conftest import FIELDS


def test_sample_certificate_has_fields_and_anchors():
    data = make_sample_certificate_pdf(FIELDS, "食品经营许可证")
    doc = pymupdf.open(stream=data, filetype="pdf")
    assert doc.page_count == 1 and not doc.is_repaired
    text = doc[0].get_text()
    for needle in ("食品经营许可证", "示范00001科技有限公司", "发证机关", "（盖章）", "91330100MA0000001X"):
        assert needle in text
    assert doc[0].search_for("（盖章）")


def test_sample_pages_and_xref_stream():
    data = make_sample_certificate_pdf(FIELDS, "营业执照", pages=3, xref_stream=True)
    doc = pymupdf.open(stream=data, filetype="pdf")
    assert doc.page_count == 3
    assert doc.xref_get_key(-1, "Type") == ("name", "/XRef")
    plain = make_sample_certificate_pdf(FIELDS, "营业执照")
    assert pymupdf.open(stream=plain, filetype="pdf").xref_get_key(-1, "Type") != ("name", "/XRef")
