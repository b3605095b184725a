"""The page of a generated sample certificate (营业执照, 许可证…), laid out once for both the PDF and
the OFD generator: where each line of text goes, in millimetres from the page's top-left corner.

Text is measured without font metrics — CJK glyphs one em wide, Latin and digits half an em —
close enough for a one-page licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

PAGE_W, PAGE_H = 210.0, 297.0
LICENCE_TITLES = {
    "business_licence": "营业执照",
    "business_license": "营业执照",
    "permit": "许可证",
    "licence": "许可证",
    "certificate": "证明",
}
CREDIT_KEY = "统一社会信用代码"
# Fields placed in the footer rather than the body.
FOOTER_KEYS = ("发证机关", "登记机关", "发证日期", "登记日期")


@dataclass(frozen=True)
class TextRun:
    """One line of text: its top-left corner (mm), the text and the font size (mm)."""

    x: float
    y: float
    text: str
    size: float
    bold: bool = False


def title_of(licence_type: str) -> str:
    return LICENCE_TITLES.get(licence_type, licence_type)


def advance(ch: str, size: float) -> float:
    """The horizontal advance of ``ch`` at font size ``size`` (same unit out as in)."""
    return size if ord(ch) >= 0x2E80 else size * 0.5


def wrap(text: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` (at least one line)."""
    lines, cur, used = [], "", 0.0
    for ch in text:
        adv = advance(ch, size)
        if used + adv > width and cur:
            lines.append(cur)
            cur, used = "", 0.0
        cur += ch
        used += adv
    if cur:
        lines.append(cur)
    return lines or [""]


def certificate_text(fields: dict[str, str], title: str) -> list[TextRun]:
    """The certificate's text: 统一社会信用代码, the centred title, the fields in order, then
    发证机关 (or 登记机关), the date and （盖章） where the seal goes."""
    runs = []
    if fields.get(CREDIT_KEY):
        runs.append(TextRun(22, 24, f"{CREDIT_KEY}：{fields[CREDIT_KEY]}", 3.5))
    title_size = 14.0
    width = sum(advance(c, title_size) for c in title)
    runs.append(TextRun((PAGE_W - width) / 2, 40, title, title_size, bold=True))
    y, size, label_w, left = 75.0, 4.5, 36.0, 28.0
    for key, value in fields.items():
        if key in (CREDIT_KEY, *FOOTER_KEYS):
            continue
        runs.append(TextRun(left, y, key, size))
        for line in wrap(str(value), size, PAGE_W - left - label_w - 28):
            runs.append(TextRun(left + label_w, y, line, size))
            y += size * 1.8
        y += 2.0
        if y > 200:
            break
    authority = fields.get("发证机关") or fields.get("登记机关") or ""
    issued = fields.get("发证日期") or fields.get("登记日期") or f"{date.today():%Y年%m月%d日}"
    if authority:
        runs.append(TextRun(120, 222, f"{'登记机关' if '登记机关' in fields else '发证机关'}：{authority}", 4.5))
    runs.append(TextRun(130, 236, issued, 4.5))
    runs.append(TextRun(138, 248, "（盖章）", 4.5))
    return runs
