"""The size of a sealed one-page certificate, stamped as the batch pipeline stamps (issue 11, item 9).

Where the bytes went (demo seal: a 29.7 KB palette PNG inside a 31 KB SESeal; 2 KB certificates):
- OFD 66 KB: the SESeal was stored twice — ``Seal.esl`` and again inside ``SignedValue.dat``'s
  SES_Signature, both uncompressed. The pipeline now leaves out the optional Seal.esl and deflates
  SignedValue.dat: 33 KB, within 2× the input plus the picture once.
- PDF 140 KB: the palette PNG was expanded to RGB + alpha and recompressed (72 KB for a 30 KB
  picture), and the signature's /Contents holds the SES_Signature (seal and picture included, as
  GB/T 38540 requires) hex-encoded, as PDF requires (×2). The picture now keeps its own compressed
  data (127 KB); the hex /Contents is what keeps a PDF above "2× input + the picture once".
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from stamping.batch.samples import render_certificate, sample_rows
from stamping.placement import Placement

SLACK = 4096  # XML, xref and signature dictionaries of the update, certificates in the signature


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    from stamping.ofd.demo import make_demo_kit

    return make_demo_kit(tmp_path_factory.mktemp("size-kit"))


def seal_picture(seal_der: bytes) -> bytes:
    from stamping.ses.codec import parse_seal

    return parse_seal(seal_der).picture_data


def ofd_members(sealed: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(sealed)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def pdf_image_stream_bytes(sealed: bytes) -> int:
    """Bytes of the image XObject streams (colour and alpha) in the file."""
    total = 0
    for m in re.finditer(rb"/Subtype\s*/Image.*?/Length\s+(\d+)", sealed, re.S):
        total += int(m.group(1))
    return total


def assert_ofd_within_bound(source: bytes, sealed: bytes, picture: bytes) -> None:
    """At most 2× the input plus the picture once — plus the trusted timestamp token when the
    signature carries one (可信时间戳, added after the bound was set: the TSA's token and certificate)."""
    from stamping.ses.codec import parse_signature

    members = ofd_members(sealed)
    holding = [name for name, data in members.items() if picture in data]
    assert len(holding) == 1, f"the seal picture is stored in {holding}"
    value = next(data for name, data in members.items() if name.endswith("/SignedValue.dat"))
    token = len(parse_signature(value).time_stamp or b"")
    assert len(sealed) <= 2 * len(source) + len(picture) + token, (len(source), len(sealed), len(picture), token)


def assert_pdf_picture_compressed(source: bytes, sealed: bytes, picture: bytes) -> None:
    images = pdf_image_stream_bytes(sealed)
    assert images <= 2 * len(picture), f"image streams {images} B for a {len(picture)} B picture"
    hole = max(len(h) for h in re.findall(rb"/Contents\s*<([0-9A-Fa-f]*)>", sealed))
    assert len(sealed) - images - hole <= 2 * len(source) + SLACK


def _pipeline_stamp(fmt: str, src: bytes, kit) -> bytes:
    """The stampers of the batch pipeline (plugins/sealflow_airflow/pipeline.py), same options."""
    from stamping.ofd.stamp import stamp_ofd
    from stamping.pdf.sign import stamp_pdf

    placement = Placement.parse("anchor:（盖章）")
    if fmt == "ofd":
        return stamp_ofd(src, kit.seal_der, kit.signer, placement, path="c.ofd", compact=True)
    return stamp_pdf(src, kit.seal_der, kit.signer, placement, container="pkcs7", path="c.pdf")


@pytest.mark.parametrize("fmt", ["ofd", "pdf"])
def test_a_sealed_one_page_certificate_holds_the_seal_picture_once_compressed(kit, fmt: str) -> None:
    from stamping.verify.dispatch import verify_bytes

    row = next(r for r in sample_rows(4) if r["format"] == fmt)
    source = render_certificate(row)
    sealed = _pipeline_stamp(fmt, source, kit)
    assert verify_bytes(sealed, row["file"], kit.trust).valid
    picture = seal_picture(kit.seal_der)
    if fmt == "ofd":
        assert_ofd_within_bound(source, sealed, picture)
    else:
        assert_pdf_picture_compressed(source, sealed, picture)

