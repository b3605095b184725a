"""Where a seal goes on a document (盖章位置), shared by PDF and OFD stamping.

Coordinates are the seal CENTRE in millimetres from the page's TOP-LEFT corner, whatever the
format's own origin is (PDF is bottom-left in points; the stampers convert).

Page rules (the same for PDF and OFD):
- ``page`` is a 0-based index; negative counts from the end (-1 = last page).
- ``page=None`` with an anchor text: every page is searched, first hit wins;
  ``page=None`` with coordinates: the first page.
- ``cross_page`` (骑缝章): the seal is cut into one vertical slice per page, shown at each page's
  right edge; ``y_mm`` (or the page middle when None) is the vertical centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AnchorNotFound", "Placement", "PlacementError"]


class PlacementError(ValueError):
    """A placement spec or dict that cannot be understood."""


class AnchorNotFound(ValueError):
    """The anchor text of a placement is on none of the pages searched."""

    def __init__(self, path: str, text: str) -> None:
        super().__init__(f"{path}: anchor text {text!r} not found")
        self.path = path
        self.text = text


_KEYS = {
    "anchor": "anchor_text", "anchor_text": "anchor_text", "text": "anchor_text",
    "page": "page", "x": "x_mm", "x_mm": "x_mm", "y": "y_mm", "y_mm": "y_mm",
    "dx": "dx", "offset_x_mm": "dx", "dy": "dy", "offset_y_mm": "dy",
    "cross": "cross_page", "cross_page": "cross_page", "qifeng": "cross_page",
}
_TRUE = {"", "1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Placement:
    """A seal position: fixed coordinates, an anchor text (+ offset), or 骑缝章 across pages."""

    page: int | None = 0
    x_mm: float | None = None
    y_mm: float | None = None
    anchor_text: str | None = None
    offset_mm: tuple[float, float] = (0.0, 0.0)
    cross_page: bool = False

    def __post_init__(self) -> None:
        off = self.offset_mm
        if off is None:
            off = (0.0, 0.0)
        elif isinstance(off, int | float):
            off = (float(off), 0.0)
        else:
            off = (float(off[0]), float(off[1]))
        object.__setattr__(self, "offset_mm", off)
        if self.page is not None and not isinstance(self.page, int):
            raise PlacementError(f"page must be an integer, not {self.page!r}")
        for name in ("x_mm", "y_mm"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, float(v))
        if self.anchor_text == "":
            object.__setattr__(self, "anchor_text", None)

    @property
    def offset_x_mm(self) -> float:
        return self.offset_mm[0]

    @property
    def offset_y_mm(self) -> float:
        return self.offset_mm[1]

    def page_index(self, n_pages: int) -> int | None:
        """The 0-based page this placement names in an ``n_pages`` document (None = search all).

        Raises PlacementError when the page does not exist."""
        if self.page is None:
            return None if self.anchor_text else 0
        i = self.page + n_pages if self.page < 0 else self.page
        if not 0 <= i < n_pages:
            raise PlacementError(f"page {self.page} out of range (document has {n_pages} pages)")
        return i

    @classmethod
    def parse(cls, spec: str, cross_page: bool = False) -> Placement:
        """Parse ``"anchor:发证机关,dx=10,dy=0"``, ``"page=-1,x=150,y=240"``, ``"cross,y=150"``.

        Items are comma-separated ``key=value`` or ``key:value``; keys: anchor (text), page,
        x, y, dx, dy, cross (flag)."""
        values: dict[str, str] = {}
        for part in filter(None, (s.strip() for s in spec.split(","))):
            cut = min((i for i in (part.find("="), part.find(":")) if i >= 0), default=-1)
            key, value = (part, "") if cut < 0 else (part[:cut].strip(), part[cut + 1:].strip())
            field = _KEYS.get(key.lower())
            if field is None:
                raise PlacementError(f"bad placement item {part!r} (use anchor:, page=, x=, y=, dx=, dy=, cross)")
            values[field] = value
        try:
            page = int(values["page"]) if values.get("page") not in (None, "", "last") else None
            if values.get("page") == "last":
                page = -1
            x = float(values["x_mm"]) if values.get("x_mm") else None
            y = float(values["y_mm"]) if values.get("y_mm") else None
            offset = (float(values.get("dx") or 0), float(values.get("dy") or 0))
        except ValueError as exc:
            raise PlacementError(f"bad placement number in {spec!r}: {exc}") from None
        if "cross_page" in values:
            flag = values["cross_page"].lower()
            if flag not in _TRUE | _FALSE:
                raise PlacementError(f"bad cross flag {values['cross_page']!r}")
            cross_page = cross_page or flag in _TRUE
        anchor = values.get("anchor_text") or None
        if not anchor and not cross_page and (x is None or y is None):
            raise PlacementError(f"placement {spec!r} needs anchor:TEXT, or x= and y=")
        if "page" not in values:
            page = None if anchor or (x is None and y is None) else 0
        return cls(page=page, x_mm=x, y_mm=y, anchor_text=anchor, offset_mm=offset, cross_page=cross_page)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (DAG params, batch rows)."""
        return {"page": self.page, "x_mm": self.x_mm, "y_mm": self.y_mm, "anchor_text": self.anchor_text,
                "offset_mm": [self.offset_mm[0], self.offset_mm[1]], "cross_page": self.cross_page}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Placement:
        try:
            offset = data.get("offset_mm")
            if offset is None:
                offset = (data.get("offset_x_mm") or 0.0, data.get("offset_y_mm") or 0.0)
            return cls(page=data.get("page", 0), x_mm=data.get("x_mm"), y_mm=data.get("y_mm"),
                       anchor_text=data.get("anchor_text"), offset_mm=tuple(offset),
                       cross_page=bool(data.get("cross_page", False)))
        except (TypeError, ValueError, IndexError) as exc:
            raise PlacementError(f"bad placement {data!r}: {exc}") from None
