"""Sample 1-page certificates (营业执照, 许可证…) as PDF, for demos, tests and benchmarks.

Text uses PyMuPDF's built-in CJK font "china-s" (Adobe-GB1 CID font, not embedded): files stay
small (~3 KB) and the pipeline can make 10,000 of them in seconds. The layout mirrors the OFD
sample writer so both formats look alike and share anchors (发证机关, （盖章）).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import pymupdf

from stamping.ofd.writer import LICENCE_TITLES
from stamping.sample_text import advance, wrap

__all__ = ["make_sample_certificate_pdf"]

MM = 72 / 25.4
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0
_FONT = "china-s"
_FOOTER_KEYS = ("发证机关", "登记机关", "发证日期", "登记日期")
_CREDIT_KEY = "统一社会信用代码"


def _text(page: pymupdf.Page | pymupdf.Shape, x_mm: float, y_mm: float, s: str, size_mm: float) -> None:
    """Text whose top-left is at (x, y) mm from the page's top-left; baseline one size lower."""
    if s:
        page.insert_text((x_mm * MM, (y_mm + size_mm) * MM), s, fontname=_FONT, fontsize=size_mm * MM)


def _frame(page: pymupdf.Page, x: float, y: float, w: float, h: float, line_mm: float) -> None:
    page.draw_rect(pymupdf.Rect(x * MM, y * MM, (x + w) * MM, (y + h) * MM), color=(0.63, 0.16, 0.16),
                   width=line_mm * MM)


@lru_cache(maxsize=1)
def _template() -> bytes:
    """An empty certificate page (frames, the CJK font resource) that every sample starts from:
    adding the CJK font costs ~5 ms per document, opening this template ~0.1 ms."""
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W_MM * MM, height=PAGE_H_MM * MM)
    _frame(page, 10, 10, PAGE_W_MM - 20, PAGE_H_MM - 20, 0.8)
    _frame(page, 13, 13, PAGE_W_MM - 26, PAGE_H_MM - 26, 0.3)
    page.insert_font(fontname=_FONT)
    data = doc.tobytes(garbage=1, deflate=True)
    doc.close()
    return data


def _certificate_page(page: pymupdf.Shape, fields: dict[str, str], title: str) -> None:
    if fields.get(_CREDIT_KEY):
        _text(page, 22, 24, f"{_CREDIT_KEY}：{fields[_CREDIT_KEY]}", 3.5)
    title_size = 14.0
    tw = sum(advance(c, title_size) for c in title)
    _text(page, (PAGE_W_MM - tw) / 2, 40, title, title_size)
    y, size, label_w, left = 75.0, 4.5, 36.0, 28.0
    for key, value in fields.items():
        if key in (_CREDIT_KEY, *_FOOTER_KEYS):
            continue
        _text(page, left, y, key, size)
        for line in wrap(str(value), size, PAGE_W_MM - left - label_w - 28):
            _text(page, left + label_w, y, line, size)
            y += size * 1.8
        y += 2.0
        if y > 200:
            break
    authority = fields.get("发证机关") or fields.get("登记机关") or ""
    issued = fields.get("发证日期") or fields.get("登记日期") or f"{date.today():%Y年%m月%d日}"
    if authority:
        _text(page, 120, 222, f"{'登记机关' if '登记机关' in fields else '发证机关'}：{authority}", 4.5)
    _text(page, 130, 236, issued, 4.5)
    _text(page, 138, 248, "（盖章）", 4.5)


def make_sample_certificate_pdf(fields: dict[str, str], licence_type: str, *, pages: int = 1,
                                xref_stream: bool = False) -> bytes:
    """A certificate PDF: title, 统一社会信用代码, the fields in order, 发证机关, date, （盖章）.

    ``pages`` > 1 adds continuation pages (附页, for 骑缝章 demos); ``xref_stream`` writes a
    PDF 1.5 cross-reference stream with object streams instead of a classic xref table."""
    title = LICENCE_TITLES.get(licence_type, licence_type)
    doc = pymupdf.open("pdf", _template())
    try:
        shape = doc[0].new_shape()
        _certificate_page(shape, fields, title)
        shape.commit()
        for i in range(1, pages):
            extra = doc.new_page(width=PAGE_W_MM * MM, height=PAGE_H_MM * MM)
            _frame(extra, 10, 10, PAGE_W_MM - 20, PAGE_H_MM - 20, 0.8)
            _text(extra, 28, 40, f"{title}（附页 {i}/{pages - 1}）", 6.0)
            _text(extra, 28, 60, f"证照编号：{fields.get('证照编号', '')}", 4.5)
        doc.set_metadata({"title": title, "creator": "SealFlow", "producer": "SealFlow"})
        if xref_stream:
            return doc.tobytes(garbage=1, deflate=True, use_objstms=1)
        return doc.tobytes(garbage=1, deflate=True)
    finally:
        doc.close()
