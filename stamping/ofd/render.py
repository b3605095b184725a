"""Draw one OFD page as a PNG (页面预览) with PyMuPDF: the subset of GB/T 33190 that certificates use.

Why our own: the OFD renderers on PyPI were tried on our certificates and on the interop files
(docs/console.md, "OFD preview"): ``easyofd`` (and its fork ``ofd2img``) drew none of the text of
our certificates, failed on two of the five interop OFDs, extracts the untrusted zip into the
working directory and runs ``os.system`` on names taken from it; ``ofd2png`` is written for invoices
and unzips to disk too. PyMuPDF is already a dependency (PDF 验章) and ships a CJK font, so the page
is rebuilt as a PDF page in memory and rasterised by MuPDF.

What is drawn, in document order: path objects (``AbbreviatedData`` M/S/L/Q/B/C, stroke and fill
colours, line width, CTM), text objects (each glyph at its TextCode position with DeltaX/DeltaY,
in the built-in CJK font: OFD fonts are often only named, never embedded), image objects (PNG/JPEG/
BMP/GIF from the document's resources), template pages, and the seal pictures of the stamp
annotations (a raster picture, or a seal whose picture is itself an OFD, drawn one level deep).
Anything else (composite objects, shadings, patterns, SVG seal pictures) is listed in
``skipped`` so the page says the preview is partial — never a silent blank.

The package is opened by the same safe reader as 验章 (:class:`OfdPackage`: container checks,
size and ratio limits, no entity expansion), nothing is written to disk and every count is bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pymupdf

from stamping.container import identify
from stamping.ofd import xmlns
from stamping.ofd.package import OfdError, OfdPackage, folder_of
from stamping.ofd.reader import open_ofd
from stamping.ofd.signature import read_signature

MM = 72 / 25.4  # points per millimetre
MAX_OBJECTS = 50_000
MAX_GLYPHS = 200_000
RASTER_PICTURES = {"png", "jpg", "jpeg", "gif", "bmp"}
_TOKEN = re.compile(r"[A-Za-z]|-?\d*\.?\d+(?:[eE][-+]?\d+)?")


@dataclass
class RenderedPage:
    png: bytes
    page_index: int
    page_count: int
    width_px: int
    height_px: int
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Ctx:
    pkg: OfdPackage
    page: pymupdf.Page
    media: dict[str, str]  # MultiMedia ID → member
    skipped: list[str]
    objects: int = 0
    glyphs: int = 0
    font: pymupdf.Font = field(default_factory=lambda: pymupdf.Font("cjk"))


def _colour(el, name: str) -> tuple[float, float, float] | None:
    node = xmlns.child(el, name)
    if node is None:
        return None
    values = xmlns.floats(node.get("Value"))
    if len(values) < 3:
        return (0.0, 0.0, 0.0)
    return tuple(max(0.0, min(1.0, v / 255)) for v in values[:3])  # type: ignore[return-value]


def _affine(el, bound: list[float]):
    """Object space (mm) → page space (points): CTM first, then the Boundary's origin."""
    ctm = xmlns.floats(el.get("CTM"))
    a, b, c, d, e, f = ctm if len(ctm) == 6 else (1, 0, 0, 1, 0, 0)

    def point(x: float, y: float) -> pymupdf.Point:
        return pymupdf.Point((bound[0] + a * x + c * y + e) * MM, (bound[1] + b * x + d * y + f) * MM)

    return point


def _path(ctx: _Ctx, el, bound: list[float]) -> None:
    tokens = _TOKEN.findall(xmlns.text(el, "AbbreviatedData"))
    point = _affine(el, bound)
    shape = ctx.page.new_shape()
    current = start = None
    i, drawn = 0, False

    def nums(n: int) -> list[float] | None:
        values = tokens[i + 1:i + 1 + n]
        try:
            return [float(v) for v in values] if len(values) == n else None
        except ValueError:
            return None

    while i < len(tokens):
        op = tokens[i]
        arity = {"M": 2, "S": 2, "L": 2, "Q": 4, "B": 6, "A": 7, "C": 0}.get(op)
        args = nums(arity) if arity is not None else None
        if arity is None or args is None:
            ctx.skipped.append(f"path {el.get('ID', '?')}: unreadable AbbreviatedData near {op!r}")
            return
        if op in ("M", "S"):
            current = start = point(*args)
        elif op == "L" and current is not None:
            nxt = point(*args)
            shape.draw_line(current, nxt)
            current, drawn = nxt, True
        elif op == "Q" and current is not None:
            ctrl, end = point(*args[:2]), point(*args[2:])
            shape.draw_bezier(current, current + (ctrl - current) * (2 / 3), end + (ctrl - end) * (2 / 3), end)
            current, drawn = end, True
        elif op == "B" and current is not None:
            end = point(*args[4:])
            shape.draw_bezier(current, point(*args[:2]), point(*args[2:4]), end)
            current, drawn = end, True
        elif op == "A" and current is not None:  # elliptical arc: drawn as its chord (rare in certificates)
            end = point(*args[5:])
            shape.draw_line(current, end)
            current, drawn = end, True
            ctx.skipped.append(f"path {el.get('ID', '?')}: arc drawn as a straight line")
        elif op == "C" and current is not None and start is not None:
            shape.draw_line(current, start)
            current = start
        i += 1 + arity
    if not drawn:
        return
    stroke = el.get("Stroke", "true").lower() != "false"
    fill = el.get("Fill", "false").lower() == "true"
    width = float(el.get("LineWidth") or 0.353) * MM
    shape.finish(color=(_colour(el, "StrokeColor") or (0, 0, 0)) if stroke else None,
                 fill=(_colour(el, "FillColor") or (0, 0, 0)) if fill else None, width=width, closePath=False)
    shape.commit()


def _text(ctx: _Ctx, el, bound: list[float]) -> None:
    from stamping.ofd.page import expand_deltas

    size = float(el.get("Size") or 0)
    if size <= 0:
        return
    point = _affine(el, bound)
    colour = _colour(el, "FillColor") or (0, 0, 0)
    writer = pymupdf.TextWriter(ctx.page.rect, color=colour)
    pt_size = size * MM
    for code in xmlns.children(el, "TextCode"):
        content = code.text or ""
        dx, dy = expand_deltas(code.get("DeltaX")), expand_deltas(code.get("DeltaY"))
        x, y = float(code.get("X") or 0), float(code.get("Y") or 0)
        for n, char in enumerate(content):
            ctx.glyphs += 1
            if ctx.glyphs > MAX_GLYPHS:
                ctx.skipped.append(f"more than {MAX_GLYPHS} glyphs: the rest is not drawn")
                return
            writer.append(point(x, y), char, font=ctx.font, fontsize=pt_size)
            x += dx[n] if n < len(dx) else 0.0 if dx else size
            y += dy[n] if n < len(dy) else 0.0
    writer.write_text(ctx.page)


def _image(ctx: _Ctx, el, bound: list[float]) -> None:
    member = ctx.media.get(el.get("ResourceID", ""))
    if member is None or member not in ctx.pkg:
        ctx.skipped.append(f"image {el.get('ID', '?')}: resource {el.get('ResourceID')!r} not found")
        return
    rect = pymupdf.Rect(bound[0] * MM, bound[1] * MM, (bound[0] + bound[2]) * MM, (bound[1] + bound[3]) * MM)
    try:
        ctx.page.insert_image(rect, stream=ctx.pkg.read(member), keep_proportion=False)
    except (RuntimeError, ValueError) as exc:
        ctx.skipped.append(f"image {el.get('ID', '?')}: {member} cannot be drawn ({exc})")


def _objects(ctx: _Ctx, root) -> None:
    for el in root.iter():
        name = xmlns.local(el)
        if name not in ("PathObject", "TextObject", "ImageObject", "CompositeObject"):
            continue
        ctx.objects += 1
        if ctx.objects > MAX_OBJECTS:
            ctx.skipped.append(f"more than {MAX_OBJECTS} objects: the rest is not drawn")
            return
        if el.get("Visible", "true").lower() == "false":
            continue
        bound = xmlns.floats(el.get("Boundary"))
        if len(bound) != 4:
            continue
        if name == "PathObject":
            _path(ctx, el, bound)
        elif name == "TextObject":
            _text(ctx, el, bound)
        elif name == "ImageObject":
            _image(ctx, el, bound)
        else:
            ctx.skipped.append(f"composite object {el.get('ID', '?')} not drawn")


def _media(pkg: OfdPackage, document_member: str) -> dict[str, str]:
    """MultiMedia ID → member name, from the document's PublicRes and DocumentRes files."""
    root = pkg.xml(document_member)
    common = xmlns.child(root, "CommonData")
    out: dict[str, str] = {}
    if common is None:
        return out
    base = folder_of(document_member)
    for kind in ("PublicRes", "DocumentRes"):
        for res_el in xmlns.children(common, kind):
            member = pkg.resolve(res_el.text or "", base)
            if member not in pkg:
                continue
            res = pkg.xml(member)
            res_base = folder_of(member)
            if res.get("BaseLoc"):
                res_base = pkg.resolve(res.get("BaseLoc"), res_base)
            for media in xmlns.descendants(res, "MultiMedia"):
                loc = xmlns.text(media, "MediaFile")
                if loc:
                    out[media.get("ID", "")] = pkg.resolve(loc, res_base)
    return out


def _stamps(ctx: _Ctx, doc, page_id: str, depth: int) -> None:
    """The seal pictures of every stamp annotation on this page (from Seal.esl or SignedValue.dat)."""
    from stamping.ses.codec import parse_seal, parse_signature

    if doc.signatures is None:
        return
    for entry in doc.signatures.entries:
        info = read_signature(ctx.pkg, entry.member)
        annots = [a for a in info.stamp_annots if a.page_ref == page_id and len(a.boundary) == 4]
        if not annots:
            continue
        try:
            if info.seal_member and info.seal_member in ctx.pkg:
                seal = parse_seal(ctx.pkg.read(info.seal_member))
            else:
                seal = parse_signature(ctx.pkg.read(info.signed_value_member)).seal
        except (ValueError, OfdError) as exc:
            ctx.skipped.append(f"seal of {entry.member} unreadable ({exc})")
            continue
        kind = (seal.picture_type or "").lower()
        for annot in annots:
            x, y, w, h = annot.boundary
            rect = pymupdf.Rect(x * MM, y * MM, (x + w) * MM, (y + h) * MM)
            try:
                if kind in RASTER_PICTURES:
                    ctx.page.insert_image(rect, stream=seal.picture_data, keep_proportion=False, overlay=True)
                elif kind == "ofd" and depth == 0:
                    inner = render_ofd_page(seal.picture_data, "<seal picture>.ofd", 0, dpi=300, _depth=1)
                    ctx.page.insert_image(rect, stream=inner.png, keep_proportion=False, overlay=True)
                else:
                    ctx.skipped.append(f"seal picture of type {seal.picture_type!r} not drawn ({entry.member})")
            except (RuntimeError, ValueError) as exc:
                ctx.skipped.append(f"seal picture of {entry.member} cannot be drawn ({exc})")


def render_ofd_page(data: bytes, path: str = "<ofd>", page_index: int = 0, *, dpi: int = 96,
                    _depth: int = 0) -> RenderedPage:
    """PNG of page ``page_index`` (0-based) of the OFD in ``data``; OfdError/ContainerError for a file
    that is not a readable OFD, IndexError for a page it does not have."""
    identify(data, path, "ofd")
    doc = open_ofd(data, path)
    if not 0 <= page_index < doc.page_count:
        raise IndexError(f"{path}: no page {page_index + 1} (the document has {doc.page_count})")
    content = doc.pages[page_index]
    _x, _y, width, height = content.box
    out = pymupdf.open()
    try:
        page = out.new_page(width=max(width, 1) * MM, height=max(height, 1) * MM)
        ctx = _Ctx(doc.package, page, _media(doc.package, doc.document.member), [])
        root = doc.package.xml(content.member)
        for template in xmlns.children(root, "Template"):
            member = doc.document.templates.get(template.get("TemplateID", ""))
            if member and member in doc.package:
                _objects(ctx, doc.package.xml(member))
        _objects(ctx, root)
        _stamps(ctx, doc, content.id, _depth)
        pix = page.get_pixmap(dpi=dpi, alpha=_depth > 0)
        return RenderedPage(pix.tobytes("png"), page_index, doc.page_count, pix.width, pix.height, ctx.skipped)
    finally:
        out.close()
