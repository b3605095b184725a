"""Second line of defence for 验章: the pages as a reader draws them must equal the signed revision's.

The structural analysis (``revisions.py``) judges objects; shadow attacks are built from changes that each
look harmless, so this module judges the *result*: every page of the signed revision and of the whole
file is rendered with MuPDF (annotations included, optional content in its default state) and the pixels
are compared. Inside the rectangles of widgets of signatures added later (their seal pictures) the pixels
may differ; those widgets are themselves signatures that must verify. Any other difference is reported
with the page and the region in points (top-left origin, as the page is shown).

Decisions: 72 dpi (zoom 1) is enough for a changed digit or an opaque box to change pixels while a page
costs a few milliseconds; no tolerance — both renderings come from the same MuPDF, so equal input gives
equal pixels. Only run for signatures followed by later updates (never for SealFlow's single seals), so
batch speed stays.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymupdf

__all__ = ["PageDifference", "compare_rendering"]

ZOOM = 1.0
_MASK_MARGIN_PX = 2  # anti-aliased edges of a widget's picture bleed into the next pixel


@dataclass
class PageDifference:
    page_index: int
    region: tuple[float, float, float, float] | None  # in points as displayed; None: page size differs

    def describe(self) -> str:
        if self.region is None:
            return f"page {self.page_index + 1}: page size or rotation changed"
        x0, y0, x1, y1 = (round(v) for v in self.region)
        return f"page {self.page_index + 1} differs in the region ({x0},{y0})-({x1},{y1}) pt"


def _mask_boxes(page: pymupdf.Page, pix: pymupdf.Pixmap,
                rects: list[tuple[float, float, float, float]]) -> list[pymupdf.IRect]:
    """The allowed rectangles in pixels of the rendered page (widened for anti-aliased edges)."""
    to_pixels = page.transformation_matrix * page.rotation_matrix * pymupdf.Matrix(ZOOM, ZOOM)
    out = []
    for rect in rects:
        r = (pymupdf.Rect(rect) * to_pixels).irect
        out.append(pymupdf.IRect(r.x0 - _MASK_MARGIN_PX, r.y0 - _MASK_MARGIN_PX, r.x1 + _MASK_MARGIN_PX,
                                 r.y1 + _MASK_MARGIN_PX) & pix.irect)
    return [r for r in out if not r.is_empty]


def _blanked(pix: pymupdf.Pixmap, masks: list[pymupdf.IRect]) -> bytearray:
    """The pixmap's samples with the masked rectangles set to zero (slice assignments run in C)."""
    out = bytearray(pix.samples_mv)
    stride, n = pix.stride, pix.n
    for m in masks:
        blank = bytes((m.x1 - m.x0) * n)
        for y in range(m.y0, m.y1):
            out[y * stride + m.x0 * n:y * stride + m.x1 * n] = blank
    return out


def _diff_box(a: pymupdf.Pixmap, b: pymupdf.Pixmap, masks: list[pymupdf.IRect]) -> tuple[int, int, int, int] | None:
    """Pixel bounding box where two same-sized pixmaps differ outside ``masks``."""
    sa, sb = _blanked(a, masks), _blanked(b, masks)
    if sa == sb:
        return None
    stride, n = a.stride, a.n
    rows = [y for y in range(a.height) if sa[y * stride:(y + 1) * stride] != sb[y * stride:(y + 1) * stride]]
    x0, x1 = a.width, 0
    for y in rows:
        ra, rb = sa[y * stride:(y + 1) * stride], sb[y * stride:(y + 1) * stride]
        first = next(i for i in range(len(ra)) if ra[i] != rb[i])
        last = next(i for i in range(len(ra) - 1, -1, -1) if ra[i] != rb[i])
        x0, x1 = min(x0, first // n), max(x1, last // n + 1)
    return x0, rows[0], x1, rows[-1] + 1


def compare_rendering(old: pymupdf.Document, new: pymupdf.Document,
                      allowed: dict[int, list[tuple[float, float, float, float]]],
                      new_pixmaps: dict | None = None) -> list[PageDifference]:
    """Pages of ``new`` that do not look like the same page of ``old`` outside ``allowed`` rectangles
    (page index → rectangles in PDF user space of that page). ``new_pixmaps``: renderings of ``new``'s
    pages kept by the caller across calls (keyed by page index; only read here, never changed)."""
    diffs: list[PageDifference] = []
    for i in range(max(old.page_count, new.page_count)):
        if i >= old.page_count or i >= new.page_count:
            diffs.append(PageDifference(i, None))
            continue
        p_old, p_new = old[i], new[i]
        matrix = pymupdf.Matrix(ZOOM, ZOOM)
        a = p_old.get_pixmap(matrix=matrix, alpha=False)
        b = new_pixmaps.get(i) if new_pixmaps is not None else None
        if b is None:
            b = p_new.get_pixmap(matrix=matrix, alpha=False)
            if new_pixmaps is not None:
                new_pixmaps[i] = b
        if (a.width, a.height) != (b.width, b.height) or p_old.rotation != p_new.rotation:
            diffs.append(PageDifference(i, None))
            continue
        box = _diff_box(a, b, _mask_boxes(p_new, a, allowed.get(i, [])))
        if box is not None:
            diffs.append(PageDifference(i, tuple(v / ZOOM for v in box)))
    return diffs
