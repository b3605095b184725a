"""Seal pictures: import of 印模 (PNG, JPEG, SVG), limits, transparency; demo seals."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from stamping import pictures
from stamping.pictures import (
    MAX_SIDE_PX,
    PictureError,
    SealPicture,
    demo_official_seal,
    demo_personal_seal,
    demo_position_seal,
    import_impression,
)

RED = (200, 30, 40)


def _scan(size: int = 400, fmt: str = "PNG", paper: tuple[int, int, int] = (250, 248, 245)) -> bytes:
    """A 'scanned' seal: a red ring and a red dot on off-white paper."""
    img = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(img)
    draw.ellipse((10, 10, size - 10, size - 10), outline=RED, width=max(2, size // 25))
    draw.ellipse((size * 0.4, size * 0.4, size * 0.6, size * 0.6), fill=RED)
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return out.getvalue()


def _rgba(picture: SealPicture) -> Image.Image:
    img = Image.open(io.BytesIO(picture.png))
    assert img.format == "PNG"
    return img.convert("RGBA")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_import_raster_makes_paper_transparent(fmt: str) -> None:
    pic = import_impression(_scan(fmt=fmt), f"seal.{fmt.lower()}", 42, 42)
    assert (pic.width_mm, pic.height_mm) == (42.0, 42.0)
    img = _rgba(pic)
    assert img.size == (400, 400)
    assert img.getpixel((2, 2))[3] == 0  # paper
    assert img.getpixel((200, 200))[3] == 255  # ink (the dot)
    r, g, b, _ = img.getpixel((200, 200))
    assert r > 150 and g < 100 and b < 100


def test_import_svg_renders_to_png() -> None:
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100" viewBox="0 0 100 100">'
           b'<rect width="100" height="100" fill="white"/>'
           b'<circle cx="50" cy="50" r="45" fill="none" stroke="#d01020" stroke-width="4"/>'
           b'<circle cx="50" cy="50" r="10" fill="#d01020"/></svg>')
    pic = import_impression(svg, "seal.svg", 40, 40)
    img = _rgba(pic)
    assert img.size[0] >= 256 and img.size[0] == img.size[1]
    w = img.size[0]
    assert img.getpixel((1, 1))[3] == 0
    assert img.getpixel((w // 2, w // 2))[3] == 255


def test_svg_with_entities_refused() -> None:
    svg = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><text>&x;</text></svg>')
    with pytest.raises(PictureError, match=r"bad\.svg: SVG with entity declarations"):
        import_impression(svg, "bad.svg", 40, 40)
    bomb = b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg"/>'
    with pytest.raises(PictureError, match="entity"):
        import_impression(bomb, "bomb.svg", 40, 40)


def test_svg_with_a_plain_doctype_imports() -> None:
    svg = (b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
           b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
           b'<circle cx="50" cy="50" r="40" fill="#c00"/></svg>')
    pic = import_impression(svg, "seal.svg", 40, 40)
    assert _rgba(pic).getpixel((1, 1))[3] == 0


def test_too_small_in_pixels() -> None:
    with pytest.raises(PictureError, match=r"tiny\.png: 40x40 px is smaller than 64"):
        import_impression(_scan(40), "tiny.png", 40, 40)


def test_too_large_in_pixels_refused_from_the_header() -> None:
    img = Image.new("1", (MAX_SIDE_PX + 1, 64), 1)
    out = io.BytesIO()
    img.save(out, format="PNG")
    with pytest.raises(PictureError, match=rf"huge\.png: {MAX_SIDE_PX + 1}x64 px is larger than {MAX_SIDE_PX}"):
        import_impression(out.getvalue(), "huge.png", 40, 40)


@pytest.mark.parametrize(("w", "h"), [(5, 40), (40, 150), (float("nan"), 40), (0, 0)])
def test_size_in_mm_limits(w: float, h: float) -> None:
    with pytest.raises(PictureError, match=r"seal\.png: (width|height) .* mm is outside 10–100 mm"):
        import_impression(_scan(), "seal.png", w, h)


def test_not_an_image() -> None:
    with pytest.raises(PictureError, match=r"notes\.txt: not a PNG, JPEG or SVG"):
        import_impression(b"just some text", "notes.txt", 40, 40)


def test_broken_png() -> None:
    data = _scan()
    with pytest.raises(PictureError, match=r"cut\.png: not a readable image"):
        import_impression(data[: len(data) // 2], "cut.png", 40, 40)


def test_blank_picture_has_no_ink() -> None:
    out = io.BytesIO()
    Image.new("RGB", (200, 200), (255, 255, 255)).save(out, format="PNG")
    with pytest.raises(PictureError, match="no ink"):
        import_impression(out.getvalue(), "blank.png", 40, 40)


def test_aspect_ratio_must_match_the_mm_size() -> None:
    with pytest.raises(PictureError, match="aspect ratio"):
        import_impression(_scan(), "seal.png", 40, 20)


def test_demo_official_seal_looks_like_a_seal() -> None:
    pic = demo_official_seal("广西壮族自治区南宁市行政审批局", 42, bottom_text="业务专用章")
    img = _rgba(pic)
    assert img.size == (504, 504)  # 12 px/mm
    assert img.getpixel((3, 3))[3] == 0  # outside the ring
    assert img.getpixel((252, 252))[3] == 255  # the star's centre
    assert img.getpixel((252, 252))[:3] == pictures.SEAL_RED
    assert img.getpixel((252, 12))[3] == 255  # the ring at the top (~1 mm in)
    # text along the upper arc: ink between the ring and the star
    band = img.crop((150, 40, 354, 100)).getchannel("A")
    assert band.getbbox() is not None
    # between the star and the text it is clear
    assert img.getpixel((252, 130))[3] == 0
    assert img.getpixel((140, 252))[3] == 0


def test_demo_seals_are_deterministic_and_cached() -> None:
    first = demo_official_seal("测试单位")
    assert demo_official_seal("测试单位") is first
    demo_official_seal.cache_clear()
    assert demo_official_seal("测试单位").png == first.png


def test_demo_personal_and_position_seals() -> None:
    personal = _rgba(demo_personal_seal("张三丰"))
    assert personal.size == (240, 240)
    assert personal.getpixel((10, 10))[3] == 255  # the square border
    position = demo_position_seal("王五", "法定代表人")
    assert (position.width_mm, position.height_mm) == (30.0, 15.0)
    assert _rgba(position).size == (360, 180)


def test_grid_of_a_personal_seal_reads_right_to_left() -> None:
    assert pictures._grid_text("张三丰") == [["张", "三"], ["丰", "印"]]
    assert pictures._grid_text("李四") == [["李", "四"], ["之", "印"]]
    assert pictures._grid_text("欧阳建国") == [["欧", "阳"], ["建", "国"]]


def test_demo_seal_refuses_empty_names() -> None:
    with pytest.raises(PictureError):
        demo_official_seal("  ")
    with pytest.raises(PictureError):
        demo_personal_seal("")
