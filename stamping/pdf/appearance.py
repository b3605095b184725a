"""The seal's picture as PDF image XObjects (印章图像), cached per seal.

A PNG with alpha becomes an image XObject with an /SMask (the transparency that lets the text
under a red seal show through); a JPEG is embedded as is (DCTDecode); any other picture type
(OFD or SVG vector pictures) falls back to a drawn red ring so the seal is still visible.
"""

from __future__ import annotations

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


def _from_raster(data: bytes) -> tuple[bytes, bytes | None]:
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
