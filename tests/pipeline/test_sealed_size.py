"""The size of a sealed one-page certificate, stamped as the batch pipeline stamps (issue 11, item 9).

Where the bytes went (2 KB certificates; the demo seal was a 29.7 KB 8-bit palette PNG):
- OFD 66 KB: the SESeal was stored twice — ``Seal.esl`` and again inside ``SignedValue.dat``'s
  SES_Signature, both uncompressed. The pipeline leaves out the optional Seal.esl and deflates
  SignedValue.dat: 33 KB.
- PDF 140 KB: the palette PNG was expanded to RGB + alpha and recompressed (72 KB), and the
  signature's /Contents holds the SES_Signature (seal and picture included, as GB/T 38540 requires)
  hex-encoded, as PDF requires (×2). Keeping the PNG's own IDAT: 127 KB.
- The picture itself: 256 opacities of one red at 300 dpi. 16 opacities draw the same edge in a
  4-bit palette PNG: 12.9 KB. OFD 17.0 KB, PDF 46.8 KB.
- PDF: the picture's index is its opacity, so the image is one red pixel and the soft mask is the
  PNG's IDAT as is — the pixels once (12.8 KB), not indices + an 8-bit alpha (57.8 KB before).

What stays, per sealed file (measured below, so a regression fails):
- OFD = input + picture + ~2.1 KB: the signer's and the seal maker's certificates (~1.1 KB), two
  SM2 signatures, Signature.xml (an SM3 per signed part), Signatures.xml, three zip entries. Within
  2× input + picture once for an input of at least that fixed part (the 2 KB sample is 0.2 KB short).
- PDF = input + picture (the image) + 2 × (seal + signer certificate + ~0.4 KB of CMS) + ~1.6 KB
  of update. The floor: the seal, picture included, must stay whole inside the CMS (GB/T 38540) and
  /Contents must be a hex string (ISO 32000: the byte range skips exactly that string, and it can be
  in no compressed stream), so the picture is in the file three times its size at least; a PDF
  meets "2× input + picture once" only if 2 × (picture + ~2.3 KB) ≤ input — never for a 2 KB page.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from stamping.batch.samples import render_certificate, sample_rows
from stamping.placement import Placement

OFD_FIXED = 2400  # certificates, signatures, signature XML and zip entries (2.14 KB measured)
PDF_UPDATE = 2048  # the update's objects, xref and signature dictionary (1.6 KB measured)
CMS_OVERHEAD = 512  # the CMS around the seal and the signer's certificate (0.4 KB measured)


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
    """The picture stored once; nothing beyond the input, the picture and the fixed part — plus the
    trusted timestamp token when the signature carries one (可信时间戳: the token and its certificates)."""
    from stamping.ses.codec import parse_signature

    members = ofd_members(sealed)
    holding = [name for name, data in members.items() if picture in data]
    assert len(holding) == 1, f"the seal picture is stored in {holding}"
    value = next(data for name, data in members.items() if name.endswith("/SignedValue.dat"))
    token = len(parse_signature(value).time_stamp or b"")
    assert len(sealed) <= len(source) + len(picture) + token + OFD_FIXED, (len(source), len(sealed), len(picture))


def _contents(sealed: bytes) -> bytes:
    return bytes.fromhex(max(re.findall(rb"/Contents\s*<([0-9A-Fa-f]*)>", sealed), key=len).decode())


def _time_stamp_length(contents: bytes) -> int:
    """The trusted time-stamp token (可信时间戳) in the CMS's unsigned attributes, when the stack's TSA gave one."""
    from asn1crypto import cms

    info = cms.ContentInfo.load(contents, strict=False)["content"]["signer_infos"][0]
    attrs = info["unsigned_attrs"]
    if not attrs.native:
        return 0
    return sum(len(value.dump()) for attr in attrs for value in attr["values"]
               if attr["type"].dotted == "1.2.840.113549.1.9.16.2.14")


def assert_pdf_picture_compressed(source: bytes, sealed: bytes, picture: bytes, seal_der: bytes,
                                  certificate: bytes) -> None:
    """The pixels once in the image, the CMS holding the seal (picture included, and the time-stamp token
    when there is one) hex-encoded with no room left over, and nothing else beyond the input but the
    update's dictionaries."""
    from asn1crypto.core import Asn1Value

    images = pdf_image_stream_bytes(sealed)
    assert images <= len(picture), f"image streams {images} B for a {len(picture)} B picture"
    contents = _contents(sealed)
    cms = len(Asn1Value.load(contents, strict=False).dump())
    assert cms <= len(seal_der) + len(certificate) + _time_stamp_length(contents) + CMS_OVERHEAD
    # The hole is the CMS's size (its longest SM2 signature), not a guess; with a time-stamp token, the
    # largest token seen so far plus the stamper's margin (tokens differ by a few bytes).
    from stamping.pdf.sign import TOKEN_MARGIN

    assert len(contents) - cms <= 8 + (TOKEN_MARGIN if _time_stamp_length(contents) else 0), (len(contents), cms)
    assert len(sealed) <= len(source) + images + 2 * len(contents) + PDF_UPDATE


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
        assert_pdf_picture_compressed(source, sealed, picture, kit.seal_der, kit.signer.certificate)

