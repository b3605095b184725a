"""The seal's picture as PDF image XObjects (印章图像), cached per seal.

A PNG with alpha becomes an image XObject with an /SMask (the transparency that lets the text
under a red seal show through); a JPEG is embedded as is (DCTDecode); any other picture type
(OFD or SVG vector pictures) falls back to a drawn red ring so the seal is still visible.

A non-interlaced palette or grey PNG (1-8 bits) or 8-bit RGB PNG keeps its own compressed pixel
data (PDF's FlateDecode with PNG predictors reads IDAT as is): a palette seal picture is not
expanded to RGB and recompressed (issue 11, item 9). A palette picture of one ink colour whose
index is its opacity (the demo seals) goes further: a one-pixel image of the ink with the IDAT as
its soft mask, so the pixels are stored once. Any other picture's alpha goes to an /SMask.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import pymupdf

__all__ = ["SealImage", "picture_image", "ring_ops", "seal_image"]


@dataclass(frozen=True)
class SealImage:
    width_mm: float
    height_mm: float
    # Complete object bodies (dict + stream) ready to write; SMASK_REF in image_obj is replaced
    # by the smask's reference. None image_obj → vector fallback (ring_ops).
    image_obj: bytes | None
    smask_obj: bytes | None


def _stream(dict_body: bytes, data: bytes) -> bytes:
    return b"<<" + dict_body + b"/Length %d>>stream\n" % len(data) + data + b"\nendstream"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, i = [], 8
    while i + 8 <= len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        chunks.append((data[i + 4:i + 8], data[i + 8:i + 8 + n]))
        i += 12 + n
    return chunks


def _png_as_is(data: bytes) -> tuple[bytes, bool] | None:
    """(image dict entries and stream data, whether it has transparency) for a PNG whose IDAT PDF
    can take unchanged; None for any other picture (then the pixels are decoded and re-encoded)."""
    png = _png_header(data)
    if png is None:
        return None
    w, h, depth, ctype, found, idat = png
    transparent = b"tRNS" in found
    if depth not in (1, 2, 4, 8) or (depth != 8 and ctype == 2) or (transparent and ctype != 3):
        return None
    if ctype == 3:
        palette = found.get(b"PLTE", b"")
        if not palette or len(palette) % 3 or len(palette) // 3 > 2 ** depth:
            return None
        cs, colors = b"[/Indexed/DeviceRGB %d<%s>]" % (len(palette) // 3 - 1, palette.hex().encode()), 1
    else:
        cs, colors = (b"/DeviceGray", 1) if ctype == 0 else (b"/DeviceRGB", 3)
    entries = (b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace%s" % (w, h, cs)
               + _flate_png(w, depth, colors))
    return _stream(entries + (b"/SMask SMASK_REF" if transparent else b""), idat), transparent


def _png_header(data: bytes) -> tuple[int, int, int, int, dict[bytes, bytes], bytes] | None:
    """(width, height, bit depth, colour type, first chunk of each kind, IDAT data) of a
    non-interlaced grey, RGB or palette PNG; None for anything else."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return None
    w, h, depth, ctype, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if interlace or ctype not in (0, 2, 3):
        return None
    found = {kind: body for kind, body in reversed(chunks)}
    return w, h, depth, ctype, found, b"".join(body for kind, body in chunks if kind == b"IDAT")


def _flate_png(columns: int, depth: int, colors: int) -> bytes:
    """Dict entries that make PDF read PNG IDAT data as is (FlateDecode with the PNG predictors)."""
    return (b"/BitsPerComponent %d/Filter/FlateDecode/DecodeParms<</Predictor 15/Colors %d/BitsPerComponent %d"
            b"/Columns %d>>" % (depth, colors, depth, columns))


def _one_ink_as_mask(data: bytes) -> tuple[bytes, bytes] | None:
    """(image, soft mask) for a palette PNG of one ink colour whose palette index is its opacity
    (index i of a d-bit palette has opacity i / (2^d - 1)), as the demo seals are stored: the
    image is one pixel of the ink, stretched, and the soft mask is the PNG's own IDAT read as
    grey. The picture's pixels are then in the file once, not as indices and again as alpha
    (a soft mask may differ in size from its image: ISO 32000-1, 11.6.5.3)."""
    png = _png_header(data)
    if png is None:
        return None
    w, h, depth, ctype, found, idat = png
    palette, alpha = found.get(b"PLTE", b""), found.get(b"tRNS", b"")
    if ctype != 3 or depth not in (1, 2, 4, 8) or not palette or len(palette) % 3:
        return None
    entries, top = len(palette) // 3, 2 ** depth - 1
    if len({palette[i:i + 3] for i in range(0, len(palette), 3)}) != 1 or len(alpha) != entries:
        return None
    if any(a != round(i * 255 / top) for i, a in enumerate(alpha)):
        return None
    image = _stream(b"/Type/XObject/Subtype/Image/Width 1/Height 1/ColorSpace/DeviceRGB/BitsPerComponent 8"
                    b"/SMask SMASK_REF", palette[:3])
    smask = _stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace/DeviceGray" % (w, h)
                    + _flate_png(w, depth, 1), idat)
    return image, smask


def _alpha_smask(pix: pymupdf.Pixmap) -> bytes:
    alpha = bytes(memoryview(pix.samples)[pix.n - 1::pix.n])
    return _stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace/DeviceGray"
                   b"/BitsPerComponent 8/Filter/FlateDecode" % (pix.width, pix.height), zlib.compress(alpha, 6))


def _from_raster(data: bytes) -> tuple[bytes, bytes | None]:
    one_ink = _one_ink_as_mask(data)
    if one_ink is not None:
        return one_ink
    as_is = _png_as_is(data)
    if as_is is not None:
        image, transparent = as_is
        if not transparent:
            return image, None
        pix = pymupdf.Pixmap(data)
        if pix.alpha:
            return image, _alpha_smask(pix)
    pix = pymupdf.Pixmap(data)
    if pix.colorspace is None or pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    w, h, n, alpha = pix.width, pix.height, pix.n, pix.alpha
    samples = pix.samples
    comps = n - 1 if alpha else n
    cs = b"/DeviceGray" if comps == 1 else b"/DeviceRGB"
    smask = None
    if alpha:
        colour = bytearray()
        mv = memoryview(samples)
        stride = n
        alpha_bytes = bytes(mv[comps::stride])
        if comps == 3:
            colour = bytearray(len(alpha_bytes) * 3)
            colour[0::3] = mv[0::stride]
            colour[1::3] = mv[1::stride]
            colour[2::3] = mv[2::stride]
        else:
            colour = bytearray(mv[0::stride])
        smask = _stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace/DeviceGray"
                        b"/BitsPerComponent 8/Filter/FlateDecode" % (w, h), zlib.compress(alpha_bytes, 6))
        samples = bytes(colour)
    smask_ref = b"/SMask SMASK_REF" if alpha else b""
    image = _stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace%s/BitsPerComponent 8"
                    b"/Filter/FlateDecode%s" % (w, h, cs, smask_ref), zlib.compress(samples, 6))
    return image, smask


def _from_jpeg(data: bytes) -> bytes:
    pix = pymupdf.Pixmap(data)
    cs = {1: b"/DeviceGray", 3: b"/DeviceRGB", 4: b"/DeviceCMYK"}.get(pix.n - pix.alpha, b"/DeviceRGB")
    return _stream(b"/Type/XObject/Subtype/Image/Width %d/Height %d/ColorSpace%s/BitsPerComponent 8"
                   b"/Filter/DCTDecode" % (pix.width, pix.height, cs), data)


def picture_image(picture_type: str, data: bytes, width_mm: float, height_mm: float) -> SealImage:
    kind = (picture_type or "").lower().lstrip(".")
    try:
        if kind in ("jpg", "jpeg") or data[:3] == b"\xff\xd8\xff":
            return SealImage(width_mm, height_mm, _from_jpeg(data), None)
        if kind in ("png", "bmp", "gif", "tif", "tiff") or data[:8] == b"\x89PNG\r\n\x1a\n":
            image, smask = _from_raster(data)
            return SealImage(width_mm, height_mm, image, smask)
    except (RuntimeError, ValueError):
        pass  # undecodable picture: still show where the seal is
    return SealImage(width_mm, height_mm, None, None)


@lru_cache(maxsize=64)
def seal_image(seal_der: bytes) -> SealImage:
    """The picture of a DER SESeal (parsed once per seal and process)."""
    from stamping.ses.codec import parse_seal

    seal = parse_seal(seal_der)
    return picture_image(seal.picture_type, seal.picture_data, float(seal.picture_width_mm),
                         float(seal.picture_height_mm))


def ring_ops(w_pt: float, h_pt: float) -> bytes:
    """Content operators drawing a red ring filling a w×h box (the vector fallback)."""
    r, cx, cy = min(w_pt, h_pt) / 2 - 1, w_pt / 2, h_pt / 2
    k = 0.5523 * r
    pts = [(cx + r, cy), (cx + r, cy + k), (cx + k, cy + r), (cx, cy + r), (cx - k, cy + r), (cx - r, cy + k),
           (cx - r, cy), (cx - r, cy - k), (cx - k, cy - r), (cx, cy - r), (cx + k, cy - r), (cx + r, cy - k),
           (cx + r, cy)]
    ops = [b"q 0.8 0.1 0.1 RG 2 w %.2f %.2f m" % pts[0]]
    for i in range(1, 13, 3):
        ops.append(b"%.2f %.2f %.2f %.2f %.2f %.2f c" % (*pts[i], *pts[i + 1], *pts[i + 2]))
    ops.append(b"S Q")
    return b" ".join(ops)
