"""Text measure for the generated sample certificates (PDF and OFD): CJK glyphs one em wide,
Latin and digits half an em — close enough to lay out a one-page licence without font metrics."""

from __future__ import annotations


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
