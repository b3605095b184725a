"""Document.xml, one document of the package (文档根节点, GB/T 33190 §7.5)."""

from __future__ import annotations

from dataclasses import dataclass

from stamping.ofd import xmlns
from stamping.ofd.package import OfdError, OfdPackage, folder_of

A4 = (0.0, 0.0, 210.0, 297.0)


@dataclass(frozen=True)
class PageRef:
    id: str  # the page's object ID: what StampAnnot@PageRef points at
    member: str  # member name of its Content.xml


@dataclass(frozen=True)
class DocumentInfo:
    member: str
    pages: list[PageRef]
    physical_box: tuple[float, float, float, float]
    templates: dict[str, str]  # template ID → member name
    max_unit_id: int


def _box(el) -> tuple[float, float, float, float] | None:
    area = xmlns.child(el, "PageArea")
    values = xmlns.floats(xmlns.text(area, "PhysicalBox")) if area is not None else []
    return (values[0], values[1], values[2], values[3]) if len(values) == 4 else None


def read_document(pkg: OfdPackage, member: str) -> DocumentInfo:
    root = pkg.xml_root(member, "Document")
    base = folder_of(member)
    common = xmlns.child(root, "CommonData")
    try:
        box = (_box(common) if common is not None else None) or A4
    except ValueError as exc:
        raise OfdError(pkg.path, f"{member}: PhysicalBox {exc}") from None
    templates = {}
    max_unit = 0
    if common is not None:
        for tpl in xmlns.children(common, "TemplatePage"):
            loc = tpl.get("BaseLoc")
            if loc:
                templates[tpl.get("ID", "")] = pkg.resolve(loc, base)
        try:
            max_unit = int(xmlns.text(common, "MaxUnitID") or 0)
        except ValueError:
            max_unit = 0
    pages = []
    pages_el = xmlns.child(root, "Pages")
    for page in xmlns.children(pages_el if pages_el is not None else root, "Page"):
        loc = page.get("BaseLoc")
        if not loc:
            raise OfdError(pkg.path, f"{member}: Page without BaseLoc")
        pages.append(PageRef(page.get("ID", ""), pkg.resolve(loc, base)))
    if not pages:
        raise OfdError(pkg.path, f"{member}: document without pages")
    return DocumentInfo(member, pages, box, templates, max_unit)
