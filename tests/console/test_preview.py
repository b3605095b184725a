"""The page preview the archive page shows: a sealed OFD certificate drawn with its text, frame and
seal picture; another implementation's sealed invoice whose seal picture is itself an OFD; a sealed
PDF; and files that are not what they claim refused with the reason before any parser reads them."""

from __future__ import annotations

import io

import pymupdf
import pytest
from PIL import Image

from stamping.ofd.demo import make_demo_kit
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement
from stamping.preview import PreviewError, preview_page
from tests.shared_paths import INTEROP_DIR


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return make_demo_kit(tmp_path_factory.mktemp("kit"))


def _image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def _count(img: Image.Image, box: tuple[int, int, int, int], test) -> int:
    return sum(1 for px in img.crop(box).getdata() if test(px))


def _red(px) -> bool:
    r, g, b = px
    return r > 150 and g < 110 and b < 110


def _dark(px) -> bool:
    return sum(px) < 384


def test_a_sealed_ofd_certificate_shows_its_text_frame_and_red_seal(kit) -> None:
    certificate = make_sample_certificate_ofd(sample_business_licence_fields(3), "business_licence")
    sealed = stamp_ofd(certificate, kit.seal_der, kit.signer, Placement.parse("anchor:（盖章）"), compact=True)
    plain = _image(preview_page(certificate, "licence.ofd").png)
    page = preview_page(sealed, "licence.ofd")
    img = _image(page.png)
    assert (page.page_count, page.skipped) == (1, [])
    w, h = img.size
    assert 700 < w < 900 and h > w  # A4 portrait at 96 dpi
    title = (int(w * 0.3), int(h * 0.08), int(w * 0.7), int(h * 0.14))  # 营业执照 in large type
    assert _count(img, title, _dark) > 200  # a page without its text has none
    seal_area = (int(w * 0.45), int(h * 0.7), w, h)
    assert _count(img, seal_area, _red) > _count(plain, seal_area, _red) + 3000  # the seal picture is drawn
    assert _count(img, (0, 0, w, 40), _red) > 200  # the red double frame at the top


def test_an_interop_invoice_shows_its_ofd_seal_picture() -> None:
    data = (INTEROP_DIR / "v4signed.ofd").read_bytes()
    page = preview_page(data, "v4signed.ofd")
    img = _image(page.png)
    assert page.skipped == []
    assert _count(img, (0, 0, img.width, img.height // 4), _red) > 1000  # the tax bureau's seal at the top


def test_every_page_of_a_five_page_ofd_can_be_shown_and_a_sixth_is_refused() -> None:
    data = (INTEROP_DIR / "Page5.ofd").read_bytes()
    assert [preview_page(data, "Page5.ofd", n).page_index for n in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(PreviewError, match="no page 6"):
        preview_page(data, "Page5.ofd", 5)


def test_a_pdf_page_is_drawn_by_mupdf() -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 100), "SealFlow preview", fontsize=30)
    page = preview_page(doc.tobytes(), "x.pdf")
    assert page.page_count == 1 and _count(_image(page.png), (60, 60, 500, 110), _dark) > 100


def test_files_that_lie_about_what_they_are_are_refused_with_the_reason() -> None:
    ofd = (INTEROP_DIR / "helloworld.ofd").read_bytes()
    with pytest.raises(PreviewError, match=r"named \.pdf but the content is an OFD"):
        preview_page(ofd, "x.pdf")
    with pytest.raises(PreviewError, match="both a PDF"):
        preview_page(b"%PDF-1.7\n" + ofd, "x.ofd")
    with pytest.raises(PreviewError, match="not an OFD or PDF"):
        preview_page(b"hello", "x.ofd")
