"""Polyglots and wrappers (issue 12, attacks.md): a file that readers could read as another document
than the one SealFlow verifies is never valid, and is never stamped. Every attack is built here from
a document sealed by SealFlow itself, whose signature stays intact."""

from __future__ import annotations

import struct

import pytest

from sealflow.commands.stamp import stamp_bytes
from stamping.container import ContainerError, identify
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement
from stamping.verify.dispatch import verify_file

from .helpers import build_zip, members

ANCHOR = Placement(page=None, x_mm=None, y_mm=None, anchor_text="（盖章）", offset_mm=(0.0, 0.0), cross_page=False)
FORGED_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
              b"trailer<</Root 1 0 R>>\n%%EOF\n")


@pytest.fixture(scope="module")
def sealed(kit) -> bytes:
    return stamp_ofd(make_sample_certificate_ofd(sample_business_licence_fields(7), "business_licence"),
                     kit.seal_der, kit.signer, ANCHOR)


@pytest.fixture(scope="module")
def forged(kit) -> bytes:
    """Another certificate (the one an attacker wants shown), sealed too so it looks plausible."""
    return stamp_ofd(make_sample_certificate_ofd(sample_business_licence_fields(666), "business_licence"),
                     kit.seal_der, kit.signer, ANCHOR)


def verdict_of(tmp_path, kit, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return verify_file(path, kit.trust)


def local_headers(data: bytes) -> list[int]:
    out, pos = [], 0
    while (pos := data.find(b"PK\x03\x04", pos)) != -1:
        out.append(pos)
        pos += 4
    return out


def shift_offsets(data: bytes, after: int, by: int) -> bytes:
    """Central directory offsets (and the end record's) moved by ``by`` for entries past ``after``."""
    out = bytearray(data)
    eocd = len(out) - 22
    cd = struct.unpack_from("<I", out, eocd + 16)[0]
    i = cd + by  # the directory itself already moved
    while out[i:i + 4] == b"PK\x01\x02":
        off = struct.unpack_from("<I", out, i + 42)[0]
        if off >= after:
            struct.pack_into("<I", out, i + 42, off + by)
        n, m, k = struct.unpack_from("<HHH", out, i + 28)
        i += 46 + n + m + k
    struct.pack_into("<I", out, eocd + 16, cd + by)
    return bytes(out)


def hidden_entry(name: bytes, content: bytes) -> bytes:
    """A local entry that no central directory lists (what a reader walking local headers sees)."""
    import zlib
    return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x5C21, zlib.crc32(content), len(content),
                       len(content), len(name), 0) + name + content


def test_the_untouched_sealed_document_is_valid(tmp_path, kit, sealed):
    assert verdict_of(tmp_path, kit, "ok.ofd", sealed).verdict == "valid"


def test_zip_first_polyglot_saved_as_pdf_is_refused(tmp_path, kit, sealed):
    """A ZIP whose first member is a forged PDF, the sealed OFD after it: PDF readers show the forgery."""
    polyglot = build_zip({"forged.pdf": FORGED_PDF, **members(sealed)}, stored=True)
    for name in ("x.pdf", "x.ofd"):
        result = verdict_of(tmp_path, kit, name, polyglot)
        assert result.verdict == "not_valid" and "ambiguous" in result.error, result.error
    with pytest.raises(ContainerError, match="ambiguous"):
        stamp_bytes(polyglot, "x.pdf", kit.seal_der, kit.signer, ANCHOR)


def test_an_ofd_named_pdf_is_refused(tmp_path, kit, sealed):
    result = verdict_of(tmp_path, kit, "x.pdf", sealed)
    assert result.verdict == "not_valid" and "named .pdf" in result.error
    result = verdict_of(tmp_path, kit, "x.txt", sealed)
    assert result.verdict == "not_valid" and "neither .ofd nor .pdf" in result.error


def test_two_zips_concatenated_are_refused(tmp_path, kit, sealed, forged):
    result = verdict_of(tmp_path, kit, "x.ofd", forged + sealed)
    assert result.verdict == "not_valid" and "more than one end-of-central-directory" in result.error


def test_hidden_entry_as_prefix_is_refused(tmp_path, kit, sealed, forged):
    prefix = hidden_entry(b"OFD.xml", members(forged)["OFD.xml"])
    result = verdict_of(tmp_path, kit, "x.ofd", prefix + sealed)
    assert result.verdict == "not_valid" and "central directory does not end where" in result.error


def test_hidden_entry_in_a_gap_is_refused(tmp_path, kit, sealed, forged):
    second = local_headers(sealed)[1]
    gap = hidden_entry(b"Doc_0/Pages/Page_0/Content.xml", members(forged)["Doc_0/Pages/Page_0/Content.xml"])
    data = shift_offsets(sealed[:second] + gap + sealed[second:], second, len(gap))
    result = verdict_of(tmp_path, kit, "x.ofd", data)
    assert result.verdict == "not_valid" and "belong to no entry" in result.error, result.error


@pytest.mark.parametrize("how", ["trailing", "comment"])
def test_trailing_data_and_comments_are_refused(tmp_path, kit, sealed, how):
    tail = hidden_entry(b"OFD.xml", b"<forged/>")
    data = sealed[:-2] + struct.pack("<H", len(tail)) + tail if how == "comment" else sealed + tail
    result = verdict_of(tmp_path, kit, "x.ofd", data)
    assert result.verdict == "not_valid" and "does not end with its end-of-central-directory" in result.error


def test_local_header_disagreeing_with_the_directory_is_refused(tmp_path, kit, sealed):
    local = local_headers(sealed)[1]
    data = bytearray(sealed)
    data[local + 14] ^= 0xFF  # the local header's CRC; the central directory keeps the right one
    result = verdict_of(tmp_path, kit, "x.ofd", bytes(data))
    assert result.verdict == "not_valid" and "local header CRC/sizes differ" in result.error


def test_names_differing_only_in_case_are_refused(tmp_path, kit, sealed):
    data = build_zip({**members(sealed), "doc_0/document.xml": b"<forged/>"})
    result = verdict_of(tmp_path, kit, "x.ofd", data)
    assert result.verdict == "not_valid" and "differs only in case" in result.error


def test_identify_judges_content_and_name_together():
    assert identify(FORGED_PDF, "a.pdf") == "pdf"
    assert identify(FORGED_PDF, "<memory>") == "pdf"
    with pytest.raises(ContainerError, match=r"named \.ofd"):
        identify(FORGED_PDF, "a.ofd")
    with pytest.raises(ContainerError, match="not an OFD or PDF"):
        identify(b"hello", "a.pdf")


def test_pdf_containing_a_zip_is_refused(tmp_path, kit, sealed, monkeypatch):
    """PDF+ZIP polyglot: a PDF that carries a whole OFD in an unused stream, sealed by a tool that does
    not look: a zip tool finds the OFD, a PDF reader the PDF."""
    pymupdf = pytest.importorskip("pymupdf")
    from stamping.pdf import reading, stamp_pdf, verify_pdf
    from stamping.pdf.samples import make_sample_certificate_pdf

    doc = pymupdf.open(stream=make_sample_certificate_pdf(sample_business_licence_fields(3), "business_licence"))
    xref = doc.get_new_xref()
    doc.update_object(xref, "<<>>")
    doc.update_stream(xref, sealed, compress=False)
    polyglot = doc.tobytes(garbage=0)
    assert polyglot.startswith(b"%PDF-") and sealed in polyglot
    with pytest.raises(Exception, match="ambiguous"):
        stamp_pdf(polyglot, kit.seal_der, kit.signer, ANCHOR, path="p.pdf")
    with monkeypatch.context() as m:  # the attacker's own tool seals it anyway
        m.setattr(reading, "identify", lambda *a, **k: "pdf")
        signed = stamp_pdf(polyglot, kit.seal_der, kit.signer, ANCHOR, path="p.pdf")
        assert verify_pdf(signed, "p.pdf", kit.trust).valid  # the PDF signature itself is sound
    result = verdict_of(tmp_path, kit, "p.pdf", signed)
    assert result.verdict == "not_valid" and "ambiguous" in result.error, result.error


def test_bytes_hidden_after_a_deflate_stream_are_refused(kit, sealed):
    """Inside an entry's stored span, after the end of its deflate stream: invisible to a reader that
    trusts the sizes, a further entry to one that walks the stream."""
    from stamping.ofd.package import OfdError, OfdPackage

    parts = members(sealed)
    data = build_zip(parts)
    pkg = OfdPackage(data, "x.ofd")
    name = "Doc_0/Pages/Page_0/Content.xml"
    start, size = pkg.members[name].data_offset, pkg.members[name].info.compress_size
    extra = hidden_entry(b"OFD.xml", b"<forged/>")
    out = bytearray(data[:start + size] + extra + data[start + size:])
    # grow the entry's compressed size in both headers, move everything after it
    local = pkg.members[name].info.header_offset
    struct.pack_into("<I", out, local + 18, size + len(extra))
    out = bytearray(shift_offsets(bytes(out), start + 1, len(extra)))
    cd = struct.unpack_from("<I", out, len(out) - 22 + 16)[0]
    i = cd
    while out[i:i + 4] == b"PK\x01\x02":
        n, m, k = struct.unpack_from("<HHH", out, i + 28)
        if out[i + 46:i + 46 + n] == name.encode():
            struct.pack_into("<I", out, i + 20, size + len(extra))
        i += 46 + n + m + k
    with pytest.raises(OfdError, match="does not end where its deflate stream ends"):
        OfdPackage(bytes(out), "x.ofd").read(name)
