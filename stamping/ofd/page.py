"""A page's Content.xml (页对象, GB/T 33190 §7.7): its size and text objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from stamping.ofd import xmlns
from stamping.ofd.package import OfdPackage

_OBJECTS = ("TextObject", "PathObject", "ImageObject", "CompositeObject", "PageBlock")


@dataclass(frozen=True)
class TextItem:
    """One TextCode: its text and box in mm from the page's top-left corner."""

    text: str
    x_mm: float
    y_mm: float
    width_mm: float
    height_mm: float
    object_id: str = ""


@dataclass
class PageContent:
    id: str
    member: str
    box: tuple[float, float, float, float]
    texts: list[TextItem] = field(default_factory=list)
    object_count: int = 0

    @property
    def width_mm(self) -> float:
        return self.box[2]

    @property
    def height_mm(self) -> float:
        return self.box[3]

    @property
    def text(self) -> str:
        return "\n".join(t.text for t in self.texts)


def expand_deltas(value: str | None) -> list[float]:
    """DeltaX/DeltaY with the ``g N d`` shorthand (N glyphs spaced d) expanded, bounded."""
    if not value:
        return []
    out: list[float] = []
    tokens = value.replace(",", " ").split()
    i = 0
    try:
        while i < len(tokens) and len(out) < 100_000:
            if tokens[i] == "g" and i + 2 < len(tokens):
                out.extend([float(tokens[i + 2])] * min(int(tokens[i + 1]), 100_000))
                i += 3
            else:
                out.append(float(tokens[i]))
                i += 1
    except ValueError:
        return []
    return out


def _advance(deltas: list[float], size: float, i: int) -> float:
    """Distance from the first glyph to glyph ``i``: DeltaX when given, else one font size each."""
    return sum(deltas[:i]) if len(deltas) >= i else size * i


_TEXTCODE_TAGS = xmlns.qualified("TextCode")


def find_text(pkg: OfdPackage, member: str, needle: str) -> TextItem | None:
    """The first TextCode holding ``needle``, with the box of just that part of the text.

    Only the matching element is measured, so anchoring stays cheap on busy pages."""
    root = pkg.xml(member)
    for code in root.iter(*_TEXTCODE_TAGS):
        content = code.text or ""
        pos = content.find(needle)
        if pos < 0:
            continue
        obj = code.getparent()
        bound = xmlns.floats(obj.get("Boundary")) if obj is not None else []
        if len(bound) != 4:
            continue
        size = float(obj.get("Size") or bound[3] or 0)
        deltas = expand_deltas(code.get("DeltaX"))
        x = bound[0] + float(code.get("X") or 0)
        baseline = bound[1] + float(code.get("Y") or 0)
        start = x + _advance(deltas, size, pos)
        end = x + _advance(deltas, size, pos + len(needle) - 1) + size
        return TextItem(needle, start, baseline - size, end - start, size, obj.get("ID", ""))
    return None


def read_page(pkg: OfdPackage, page_id: str, member: str,
              default_box: tuple[float, float, float, float]) -> PageContent:
    root = pkg.xml(member)
    area = xmlns.child(root, "Area")
    values = xmlns.floats(xmlns.text(area, "PhysicalBox")) if area is not None else []
    box = (values[0], values[1], values[2], values[3]) if len(values) == 4 else default_box
    page = PageContent(page_id, member, box)
    for node in root.iter():
        name = xmlns.local(node)
        if name not in _OBJECTS:
            continue
        page.object_count += 1
        if name != "TextObject":
            continue
        bound = xmlns.floats(node.get("Boundary"))
        if len(bound) != 4:
            continue
        size = float(node.get("Size") or bound[3] or 0)
        for code in xmlns.children(node, "TextCode"):
            content = code.text or ""
            if not content:
                continue
            x = bound[0] + float(code.get("X") or 0)
            # TextCode Y is the baseline; the glyphs sit above it by about the font size.
            baseline = bound[1] + float(code.get("Y") or 0)
            deltas = expand_deltas(code.get("DeltaX"))
            width = sum(deltas[: len(content) - 1]) + size if deltas else size * len(content)
            page.texts.append(TextItem(content, x, baseline - size, width, size, node.get("ID", "")))
    return page
