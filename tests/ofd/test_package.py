"""The safe OFD reader: real interop files open, hostile packages are refused with OfdError."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from stamping.ofd import OfdError, OfdPackage, open_ofd
from stamping.ofd import package as package_mod
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields

OFD_XML = (b'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" '
           b'Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>'
           b"</ofd:DocBody></ofd:OFD>")


def make_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["helloworld.ofd", "chineseDir.ofd", "Page5.ofd", "v4signed.ofd",
                                  "signedFile.ofd", "SESV4SignDoc.ofd"])
def test_interop_files_open(interop_dir, name):
    doc = open_ofd((interop_dir / name).read_bytes(), name)
    assert doc.page_count == (5 if name == "Page5.ofd" else 1)
    assert all(p.object_count > 0 for p in doc.pages)


def test_chinese_names_are_decoded(interop_dir):
    pkg = OfdPackage((interop_dir / "chineseDir.ofd").read_bytes(), "chineseDir.ofd")
    assert "Doc_0/Res/这是一个中文目录/数据文件.txt" in pkg.names()


def test_sample_certificate_text_and_layout():
    data = make_sample_certificate_ofd(sample_business_licence_fields(7), "business_licence")
    doc = open_ofd(data)
    assert doc.page_count == 1
    page = doc.pages[0]
    assert (page.width_mm, page.height_mm) == (210, 297)
    for needle in ("营业执照", "统一社会信用代码", "南宁市示例科技有限公司7", "（盖章）", "南宁市市场监督管理局"):
        assert needle in doc.text
    seal_line = next(t for t in page.texts if t.text == "（盖章）")
    assert seal_line.y_mm > 200  # the seal line sits in the lower part of the page


def test_member_bytes_and_crc(interop_dir):
    data = (interop_dir / "helloworld.ofd").read_bytes()
    pkg = OfdPackage(data, "h.ofd")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in pkg.names():
            assert pkg.read(name) == zf.read(name)


@pytest.mark.parametrize(("name", "reason"), [
    ("../evil.xml", "traversal"),
    ("Doc_0/../../evil.xml", "traversal"),
    ("/etc/passwd", "absolute"),
    ("Doc_0\\evil.xml", "backslash"),
    ("C:/evil.xml", "drive letter"),
])
def test_bad_names_refused(name, reason):
    data = make_zip([("OFD.xml", OFD_XML), (name, b"x")])
    with pytest.raises(OfdError) as err:
        OfdPackage(data, "bad.ofd")
    assert reason in err.value.reason
    assert err.value.path == "bad.ofd"


def test_duplicate_names_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("OFD.xml", OFD_XML)
        with pytest.warns(UserWarning):
            zf.writestr("OFD.xml", b"<x/>")
    with pytest.raises(OfdError, match="duplicate"):
        OfdPackage(buf.getvalue(), "dup.ofd")


def test_missing_ofd_xml_and_not_a_zip():
    with pytest.raises(OfdError, match=r"missing OFD\.xml"):
        OfdPackage(make_zip([("Doc_0/Document.xml", b"<x/>")]), "m.ofd")
    with pytest.raises(OfdError, match=r"named \.ofd but the content is a PDF"):
        OfdPackage(b"%PDF-1.7 not a zip", "p.ofd")
    with pytest.raises(OfdError, match="not an OFD or PDF file"):
        OfdPackage(b"junk", "j.ofd")


def test_missing_parts_are_named():
    with pytest.raises(OfdError, match=r"Doc_0/Document\.xml"):
        open_ofd(make_zip([("OFD.xml", OFD_XML)]), "m.ofd")


def test_too_many_entries(monkeypatch):
    monkeypatch.setattr(package_mod, "MAX_ENTRIES", 5)
    data = make_zip([("OFD.xml", OFD_XML)] + [(f"f{i}", b"") for i in range(6)])
    with pytest.raises(OfdError, match="too many entries"):
        OfdPackage(data, "many.ofd")


def test_zip_bomb_by_ratio():
    data = make_zip([("OFD.xml", OFD_XML), ("bomb.bin", b"\0" * (4 * 1024 * 1024))])
    with pytest.raises(OfdError, match="ratio"):
        OfdPackage(data, "bomb.ofd")


def test_zip_bomb_by_total_size(monkeypatch):
    monkeypatch.setattr(package_mod, "MAX_TOTAL_UNCOMPRESSED", 100_000)
    data = make_zip([("OFD.xml", OFD_XML)] + [(f"f{i}", b"a" * 30_000) for i in range(4)], zipfile.ZIP_STORED)
    with pytest.raises(OfdError, match="total uncompressed"):
        OfdPackage(data, "big.ofd")


def _lie_about_size(data: bytes, name: bytes, new_size: int) -> bytes:
    """Rewrite the declared uncompressed size of ``name`` in both headers (a lying bomb)."""
    out = bytearray(data)
    pos = 0
    while (pos := out.find(b"PK\x03\x04", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 26)[0]
        if out[pos + 30: pos + 30 + n] == name:
            struct.pack_into("<I", out, pos + 22, new_size)
        pos += 4
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46: pos + 46 + n] == name:
            struct.pack_into("<I", out, pos + 24, new_size)
        pos += 4
    return bytes(out)


@pytest.mark.parametrize("size", [3_000_000, 200_000])
def test_zip_bomb_lying_about_its_size(size):
    data = make_zip([("OFD.xml", OFD_XML), ("Doc_0/x.xml", b"<a>" + b"A" * size + b"</a>")])
    data = _lie_about_size(data, b"Doc_0/x.xml", 1000)
    pkg = OfdPackage(data, "liar.ofd")  # declared sizes look harmless
    with pytest.raises(OfdError, match="inflates beyond its declared size"):
        pkg.read("Doc_0/x.xml")


XXE = (b'<?xml version="1.0"?><!DOCTYPE ofd:OFD [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocRoot>&xxe;</ofd:DocRoot>'
       b"</ofd:DocBody></ofd:OFD>")
LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10))
          + b"]><ofd:OFD>&lol9;</ofd:OFD>")


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
def test_dtd_refused(payload):
    with pytest.raises(OfdError, match="DTD"):
        open_ofd(make_zip([("OFD.xml", payload)]), "evil.ofd")


def test_malformed_xml_named():
    with pytest.raises(OfdError, match=r"OFD\.xml: malformed XML"):
        open_ofd(make_zip([("OFD.xml", b"<ofd:OFD")]), "broken.ofd")


def test_resolve_locations(interop_dir):
    pkg = OfdPackage((interop_dir / "v4signed.ofd").read_bytes(), "v4signed.ofd")
    assert pkg.resolve("/Doc_0/Document.xml") == "Doc_0/Document.xml"
    assert pkg.resolve("Pages/Page_0/Content.xml", "Doc_0") == "Doc_0/Pages/Page_0/Content.xml"
    assert pkg.resolve("TPLS/Tpl_0/Content.xml", "Doc_0") == "Doc_0/Tpls/Tpl_0/Content.xml"  # case differs
    with pytest.raises(OfdError, match="escapes"):
        pkg.resolve("../../etc/passwd", "Doc_0")


def test_overlapping_entries_refused():
    data = bytearray(make_zip([("OFD.xml", OFD_XML), ("Doc_0/a.xml", b"<a/>" * 50)]))
    # point the second central-directory entry at the first local header (the "better zip bomb" trick)
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    struct.pack_into("<I", data, second + 42, 0)
    with pytest.raises(OfdError, match=r"names another file|overlaps"):
        OfdPackage(bytes(data), "overlap.ofd")


def test_local_name_mismatch_refused():
    data = make_zip([("OFD.xml", OFD_XML), ("Doc_0/a.xml", b"<a/>")])
    local = data.find(b"PK\x03\x04", 4)
    patched = data[:local + 30] + data[local + 30:].replace(b"Doc_0/a.xml", b"Doc_0/b.xml", 1)
    with pytest.raises(OfdError, match="local header names another file"):
        OfdPackage(patched, "mismatch.ofd")
