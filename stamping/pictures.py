"""Seal pictures: import a seal impression (印模) and draw demo seals.

``import_impression`` takes the scan or drawing of the physical seal (PNG, JPEG or SVG), makes
the paper background transparent and returns a PNG with its size in millimetres. The demo
generators draw the three kinds of seal (电子公章 round with a star, 电子私章 square, 电子职务章
rectangular) with Pillow and the CJK font PyMuPDF ships; they are deterministic and cached.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw, ImageFont, UnidentifiedImageError

MAX_INPUT_BYTES = 10 * 1024 * 1024
MAX_SIDE_PX = 4096
MIN_SIDE_PX = 64
MIN_MM, MAX_MM = 10.0, 100.0
SEAL_RED = (220, 20, 30)
_PX_PER_MM = 12  # ~300 dpi: sharp when printed at size
_SUPERSAMPLE = 3  # Pillow draws without anti-aliasing; draw large and scale down
_ALPHA_LEVELS = 16  # opacities of a demo seal's ink: a 4-bit palette PNG
# min(R, G, B) at or above this is paper: transparent; below _INK_LEVEL fully opaque.
_PAPER_LEVEL = 225
_INK_LEVEL = 150


class PictureError(ValueError):
    """A seal picture cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class SealPicture:
    """A seal picture: PNG with alpha, and its printed size in millimetres."""

    png: bytes
    width_mm: float
    height_mm: float

    def __repr__(self) -> str:
        return f"SealPicture({len(self.png)} bytes PNG, {self.width_mm}x{self.height_mm} mm)"


# --- import ------------------------------------------------------------------------------


def _sniff(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "svg"
    return ""


def render_svg(data: bytes, filename: str, width_mm: float) -> Image.Image:
    """SVG → raster with PyMuPDF (no external entities: MuPDF does not fetch them)."""
    lowered = data.lower()
    # Editors write a plain DOCTYPE (fine); entity declarations are how XXE and billion-laughs start.
    if b"<!entity" in lowered or re.search(rb"<!doctype[^>\[]*\[", lowered):
        raise PictureError(f"{filename}: SVG with entity declarations (a DOCTYPE internal subset) is refused")
    import pymupdf

    try:
        with pymupdf.open(stream=data, filetype="svg") as doc:
            page = doc[0]
            w_pt = page.rect.width or 1
            target_px = min(MAX_SIDE_PX, max(MIN_SIDE_PX * 4, round(width_mm * _PX_PER_MM)))
            zoom = target_px / w_pt
            if max(page.rect.width, page.rect.height) * zoom > MAX_SIDE_PX:
                zoom = MAX_SIDE_PX / max(page.rect.width, page.rect.height)
            pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=True)
            return Image.open(io.BytesIO(pix.tobytes("png"))).convert("RGBA")
    except PictureError:
        raise
    except Exception as exc:  # MuPDF raises its own error types for broken SVG
        raise PictureError(f"{filename}: not a readable SVG ({exc})") from None


def _open_raster(data: bytes, filename: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size  # header only: size limits apply before decoding pixels
            if max(w, h) > MAX_SIDE_PX:
                raise PictureError(f"{filename}: {w}x{h} px is larger than {MAX_SIDE_PX} px a side")
            img.load()
    except PictureError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, SyntaxError) as exc:
        raise PictureError(f"{filename}: not a readable image ({exc})") from None
    return img.convert("RGBA")


def transparent_background(img: Image.Image) -> Image.Image:
    """Paper (white-ish) → transparent, ink stays, anti-aliased edges become partly transparent."""
    img = img.convert("RGBA")
    r, g, b, a = img.split()
    darkest = ImageChops.darker(ImageChops.darker(r, g), b)
    span = _PAPER_LEVEL - _INK_LEVEL
    lut = [255 if v <= _INK_LEVEL else 0 if v >= _PAPER_LEVEL else round((_PAPER_LEVEL - v) * 255 / span)
           for v in range(256)]
    alpha = ImageChops.multiply(darkest.point(lut), a)
    img.putalpha(alpha)
    return img


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _check_mm(filename: str, width_mm: float, height_mm: float) -> None:
    for label, mm in (("width", width_mm), ("height", height_mm)):
        if not (isinstance(mm, int | float) and math.isfinite(mm)) or not MIN_MM <= mm <= MAX_MM:
            raise PictureError(f"{filename}: {label} {mm} mm is outside {MIN_MM:g}–{MAX_MM:g} mm")


def import_impression(data: bytes, filename: str, width_mm: float, height_mm: float) -> SealPicture:
    """Import a seal impression (印模) from PNG, JPEG or SVG: background made transparent,
    size checked (pixels and millimetres). Raises :class:`PictureError`."""
    _check_mm(filename, width_mm, height_mm)
    if len(data) > MAX_INPUT_BYTES:
        raise PictureError(f"{filename}: {len(data)} bytes is larger than {MAX_INPUT_BYTES} bytes")
    kind = _sniff(data)
    if kind == "svg":
        img = render_svg(data, filename, width_mm)
    elif kind in ("png", "jpeg"):
        img = _open_raster(data, filename)
    else:
        raise PictureError(f"{filename}: not a PNG, JPEG or SVG file")
    w, h = img.size
    if min(w, h) < MIN_SIDE_PX:
        raise PictureError(f"{filename}: {w}x{h} px is smaller than {MIN_SIDE_PX} px a side")
    if max(w, h) > MAX_SIDE_PX:
        raise PictureError(f"{filename}: {w}x{h} px is larger than {MAX_SIDE_PX} px a side")
    ratio_px, ratio_mm = w / h, width_mm / height_mm
    if abs(ratio_px - ratio_mm) / ratio_mm > 0.1:
        raise PictureError(f"{filename}: aspect ratio {w}x{h} px does not match {width_mm}x{height_mm} mm")
    img = transparent_background(img)
    if img.getchannel("A").getbbox() is None:
        raise PictureError(f"{filename}: the picture has no ink: everything is background")
    return SealPicture(_png(img), float(width_mm), float(height_mm))


# --- demo seals -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _font_bytes() -> bytes:
    import pymupdf

    return bytes(pymupdf.Font("china-s").buffer)


@lru_cache(maxsize=64)
def _font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(io.BytesIO(_font_bytes()), size_px)


def _glyph(char: str, size_px: int, colour: tuple[int, int, int], stroke: int,
           scale_x: float = 1.0) -> Image.Image:
    """One character on its own transparent tile (to rotate or stretch it)."""
    font = _font(size_px)
    pad = stroke + 2
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke)
    tile = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((pad - left, pad - top), char, font=font, fill=colour,
                              stroke_width=stroke, stroke_fill=colour)
    if scale_x != 1.0:
        tile = tile.resize((max(1, round(tile.width * scale_x)), tile.height), Image.Resampling.LANCZOS)
    return tile


def _paste_centered(canvas: Image.Image, tile: Image.Image, cx: float, cy: float) -> None:
    canvas.alpha_composite(tile, (round(cx - tile.width / 2), round(cy - tile.height / 2)))


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, radius: float, colour: tuple[int, int, int]) -> None:
    inner = radius * math.sin(math.radians(18)) / math.sin(math.radians(54))
    points = []
    for i in range(10):
        r = radius if i % 2 == 0 else inner
        angle = math.radians(-90 + 36 * i)
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    draw.polygon(points, fill=colour)


def _finish(canvas: Image.Image, width_mm: float, height_mm: float) -> SealPicture:
    """Scale down (anti-aliasing) and store as a 4-bit palette PNG: one ink colour at
    ``_ALPHA_LEVELS`` opacities. The picture is copied into every stamped document (twice in a
    PDF: the image and the seal inside the signature), so its size is what a sealed file costs:
    16 levels draw the same smooth edge as 256 at 300 dpi and take 13 KB instead of 30 KB for the
    42 mm official seal (issue 11, item 9). The palette entry is the opacity (index i has opacity
    i/15), which lets a PDF use the pixel data as is as the image's soft mask."""
    size = (round(width_mm * _PX_PER_MM), round(height_mm * _PX_PER_MM))
    alpha = canvas.getchannel("A").resize(size, Image.Resampling.LANCZOS)
    top = _ALPHA_LEVELS - 1
    indexed = Image.frombytes("P", size, alpha.point([round(v * top / 255) for v in range(256)]).tobytes())
    indexed.putpalette(SEAL_RED * _ALPHA_LEVELS)
    out = io.BytesIO()
    indexed.save(out, format="PNG", optimize=True, bits=4,
                 transparency=bytes(round(i * 255 / top) for i in range(_ALPHA_LEVELS)))
    return SealPicture(out.getvalue(), float(width_mm), float(height_mm))


def _text_line(canvas: Image.Image, text: str, cx: float, cy: float, max_width: float, size_px: int,
               colour: tuple[int, int, int], stroke: int) -> None:
    tiles = [_glyph(c, size_px, colour, stroke) for c in text]
    gap = size_px * 0.08
    total = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    squeeze = min(1.0, max_width / total) if total else 1.0
    if squeeze < 1.0:
        tiles = [t.resize((max(1, round(t.width * squeeze)), t.height), Image.Resampling.LANCZOS) for t in tiles]
        total = sum(t.width for t in tiles) + gap * squeeze * (len(tiles) - 1)
    x = cx - total / 2
    for tile in tiles:
        _paste_centered(canvas, tile, x + tile.width / 2, cy)
        x += tile.width + gap * squeeze


@lru_cache(maxsize=256)
def demo_official_seal(unit_name: str, size_mm: float = 42, bottom_text: str = "",
                       code: str = "") -> SealPicture:
    """A round red official seal (电子公章): outer ring, five-pointed star in the centre, the
    unit's name along the upper arc, optional horizontal text below the star (e.g. 业务专用章)
    and an optional code along the lower arc. Deterministic; cached."""
    _check_mm("demo official seal", size_mm, size_mm)
    name = unit_name.strip()
    if not name:
        raise PictureError("demo official seal: the unit name is empty")
    px = round(size_mm * _PX_PER_MM * _SUPERSAMPLE)
    unit = px / size_mm  # pixels per millimetre on the canvas
    canvas = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    c = px / 2
    ring = 1.2 * unit  # ring ~1.2 mm, as on a 42 mm official seal
    draw.ellipse((ring / 2, ring / 2, px - ring / 2, px - ring / 2), outline=SEAL_RED, width=round(ring))
    _star(draw, c, c, size_mm / 6 * unit, SEAL_RED)
    _arc_name(canvas, name, c, c - 1.5 * ring - 0.7 * unit, unit * size_mm / 42)
    if bottom_text.strip():
        size = round(4.2 * unit * size_mm / 42)
        _text_line(canvas, bottom_text.strip(), c, c + size_mm * 0.29 * unit, size_mm * 0.55 * unit,
                   size, SEAL_RED, max(1, round(size * 0.03)))
    if code.strip():
        _arc_code(canvas, code.strip(), c, c - 1.5 * ring - 2.1 * unit, round(1.9 * unit * size_mm / 42))
    return _finish(canvas, size_mm, size_mm)


def _arc_name(canvas: Image.Image, name: str, c: float, outer: float, mm: float) -> None:
    """The unit's name along the upper arc, reading clockwise, tops outward, centred on the top.
    ``outer``: radius of the text's outer edge; ``mm``: pixels per millimetre of a 42 mm seal."""
    weights = [0.6 if ch.isascii() else 1.0 for ch in name]
    total = sum(weights)
    max_span = math.radians(250)
    char_px = 7.0 * mm  # the largest characters, as on a seal with a short name
    for _ in range(3):  # the radius depends on the size and the size on the radius
        radius = outer - char_px * 0.55
        char_px = min(7.0 * mm, radius * max_span / (total * 1.08))
    radius = outer - char_px * 0.55
    needed = math.degrees(total * char_px * 1.08 / radius)
    span = max(needed, min(250.0, 90.0 + 13.0 * len(name)))
    stroke = max(1, round(char_px * 0.03))
    angle = -90 - span / 2
    for char, weight in zip(name, weights, strict=True):
        mid = angle + span * weight / total / 2  # degrees; -90 is straight up
        angle += span * weight / total
        rad = math.radians(mid)
        tile = _glyph(char, round(char_px), SEAL_RED, stroke, scale_x=0.82)
        tile = tile.rotate(-(mid + 90), resample=Image.Resampling.BICUBIC, expand=True)
        _paste_centered(canvas, tile, c + radius * math.cos(rad), c + radius * math.sin(rad))


def _arc_code(canvas: Image.Image, code: str, c: float, radius: float, size_px: int) -> None:
    """Small digits along the lower arc, reading left to right (the seal code on real seals)."""
    step = math.degrees(size_px * 0.62 / radius)
    span = step * len(code)
    for i, char in enumerate(code):
        angle = 90 + span / 2 - step * (i + 0.5)  # 90 is straight down; left to right
        rad = math.radians(angle)
        tile = _glyph(char, size_px, SEAL_RED, 0).rotate(90 - angle, resample=Image.Resampling.BICUBIC, expand=True)
        _paste_centered(canvas, tile, c + radius * math.cos(rad), c + radius * math.sin(rad))


def _grid_text(name: str) -> list[list[str]]:
    """Characters of a square name seal in columns, read right to left, top to bottom."""
    chars = list(name)
    if len(chars) == 2:
        chars += ["之", "印"]  # 李四 → 李四之印, as on real seals
    elif len(chars) == 3:
        chars.append("印")  # 张三丰 → 张三丰印: four characters fill a 2x2 grid
    if len(chars) <= 1:
        return [chars]
    if len(chars) == 4:
        return [chars[:2], chars[2:]]
    rows = math.ceil(len(chars) / 2)
    return [chars[:rows], chars[rows:]]


@lru_cache(maxsize=256)
def demo_personal_seal(name: str, size_mm: float = 20) -> SealPicture:
    """A square personal seal (电子私章) with the name in columns, read right to left. Cached."""
    _check_mm("demo personal seal", size_mm, size_mm)
    name = name.strip()
    if not name:
        raise PictureError("demo personal seal: the name is empty")
    px = round(size_mm * _PX_PER_MM * _SUPERSAMPLE)
    unit = px / size_mm
    canvas = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    border = 1.0 * unit
    draw.rectangle((border / 2, border / 2, px - border / 2, px - border / 2), outline=SEAL_RED, width=round(border))
    columns = _grid_text(name)
    inner = px - 2 * border - 1.0 * unit
    ncols, nrows = len(columns), max(len(col) for col in columns)
    cell_w, cell_h = inner / ncols, inner / nrows
    size = round(min(cell_w, cell_h) * 0.92)
    for ci, col in enumerate(columns):
        cx = px - border - 0.5 * unit - cell_w * (ci + 0.5)  # first column on the right
        for ri, char in enumerate(col):
            cy = border + 0.5 * unit + cell_h * (ri + 0.5)
            tile = _glyph(char, size, SEAL_RED, max(1, round(size * 0.05)))
            tile = tile.resize((max(1, round(min(tile.width, cell_w * 0.94))),
                                max(1, round(min(tile.height * cell_h / cell_w, cell_h * 0.94)))),
                               Image.Resampling.LANCZOS)
            _paste_centered(canvas, tile, cx, cy)
    return _finish(canvas, size_mm, size_mm)


@lru_cache(maxsize=256)
def demo_position_seal(name: str, title: str = "法定代表人", width_mm: float = 30,
                       height_mm: float = 15) -> SealPicture:
    """A rectangular position seal (电子职务章): the title on top, the person's name below. Cached."""
    _check_mm("demo position seal", width_mm, height_mm)
    name = name.strip()
    if not name:
        raise PictureError("demo position seal: the name is empty")
    w, h = round(width_mm * _PX_PER_MM * _SUPERSAMPLE), round(height_mm * _PX_PER_MM * _SUPERSAMPLE)
    unit = w / width_mm
    canvas = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    border = 0.9 * unit
    draw.rectangle((border / 2, border / 2, w - border / 2, h - border / 2), outline=SEAL_RED, width=round(border))
    inner_w = w - 2 * border - 2 * unit
    if title.strip():
        size = round(h * 0.2)
        _text_line(canvas, title.strip(), w / 2, h * 0.3, inner_w, size, SEAL_RED, max(1, round(size * 0.04)))
        _text_line(canvas, name, w / 2, h * 0.66, inner_w, round(h * 0.36), SEAL_RED, max(1, round(h * 0.36 * 0.05)))
    else:
        _text_line(canvas, name, w / 2, h / 2, inner_w, round(h * 0.55), SEAL_RED, max(1, round(h * 0.03)))
    return _finish(canvas, width_mm, height_mm)
