"""Widget geometry of PDF stamping: where the seal goes on which page, as rectangles in PDF user
space — at a position, at an anchor text, or as a 骑缝章 (one slice of the seal per page, at the
page's right edge).

Decisions:

* **Placements are given on the page as displayed** (top-left origin, rotation applied) and in mm;
  an anchor found by PyMuPDF's text search is unrotated first, so offsets apply as displayed.
* **A rotated page swaps the box's width and height**; the appearance (``sign.py``) counters the
  rotation so that the seal stands upright.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymupdf

from stamping.pdf.appearance import SealImage
from stamping.pdf.errors import PdfError
from stamping.placement import AnchorNotFound, Placement, PlacementError

MM = 72 / 25.4


@dataclass
class Widget:
    """One widget of the seal's field: its page, its box, and which slice of the seal it shows."""

    page_index: int
    rect: tuple[float, float, float, float]  # PDF user space (x0, y0, x1, y1)
    slice_index: int = 0
    slices: int = 1


def to_pdf_space(page: pymupdf.Page, x_pt: float, y_pt: float, displayed: bool) -> pymupdf.Point:
    """Page coordinates (top-left origin) → PDF user space. ``displayed``: the coordinates are on
    the page as shown (rotation applied, as placements are given); else unrotated (as
    PyMuPDF's text search returns them)."""
    p = pymupdf.Point(x_pt, y_pt)
    if displayed:
        p = p * page.derotation_matrix
    return p * ~page.transformation_matrix


def seal_rect(page: pymupdf.Page, cx_pt: float, cy_pt: float, w_pt: float, h_pt: float, displayed: bool = True):
    p = to_pdf_space(page, cx_pt, cy_pt, displayed)
    if page.rotation % 180:
        w_pt, h_pt = h_pt, w_pt
    return (p.x - w_pt / 2, p.y - h_pt / 2, p.x + w_pt / 2, p.y + h_pt / 2)


def seal_widgets(doc: pymupdf.Document, placement: Placement, image: SealImage, path: str) -> list[Widget]:
    w_pt, h_pt = image.width_mm * MM, image.height_mm * MM
    n = doc.page_count
    dx, dy = placement.offset_mm[0] * MM, placement.offset_mm[1] * MM
    if placement.cross_page:
        out = []
        for i in range(n):
            page = doc[i]
            r = page.rect
            cy = placement.y_mm * MM + dy if placement.y_mm is not None else r.height / 2
            sw = w_pt / n
            # The slice's own box sits at the right edge; the appearance shifts the picture.
            x0, y0, x1, y1 = seal_rect(page, r.width - sw / 2, cy, sw, h_pt)
            out.append(Widget(i, (x0, y0, x1, y1), i, n))
        return out
    try:
        index = placement.page_index(n)
    except PlacementError as exc:
        raise PdfError(path, str(exc)) from None
    if placement.anchor_text:
        pages = [index] if index is not None else range(n)
        for i in pages:
            hits = doc[i].search_for(placement.anchor_text)
            if hits:
                hit = hits[0] * doc[i].rotation_matrix  # unrotated → as displayed, where offsets apply
                cx, cy = (hit.x0 + hit.x1) / 2, (hit.y0 + hit.y1) / 2
                return [Widget(i, seal_rect(doc[i], cx + dx, cy + dy, w_pt, h_pt))]
        raise AnchorNotFound(path, placement.anchor_text)
    if placement.x_mm is None or placement.y_mm is None:
        raise PdfError(path, "placement needs x_mm and y_mm, or an anchor text")
    assert index is not None
    return [Widget(index, seal_rect(doc[index], placement.x_mm * MM + dx, placement.y_mm * MM + dy, w_pt, h_pt))]
