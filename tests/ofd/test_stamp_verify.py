"""stamp_ofd + verify_ofd: our seals verify, originals stay byte for byte, tampering is named."""

from __future__ import annotations

import pytest

from stamping.ofd import open_ofd
from stamping.ofd.signature import read_signature
from stamping.ofd.stamp import AnchorNotFound, stamp_ofd
from stamping.ofd.verify import parse_signature_datetime, verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement

from .helpers import flip_byte, members, raw_members


def at(x: float, y: float, page: int = 0) -> Placement:
    return Placement(page=page, x_mm=x, y_mm=y, anchor_text=None, offset_mm=(0.0, 0.0), cross_page=False)


def anchor(text: str, dx: float = 0.0, dy: float = 0.0) -> Placement:
    return Placement(page=None, x_mm=None, y_mm=None, anchor_text=text, offset_mm=(dx, dy), cross_page=False)


def failing(result) -> list[str]:
    return [f"{c.name}: {c.reason}" for s in result.signatures for c in s.checks if not c.ok]


@pytest.fixture(scope="module")
def certificate() -> bytes:
    return make_sample_certificate_ofd(sample_business_licence_fields(1), "business_licence")


@pytest.fixture(scope="module")
def sealed(kit, certificate) -> bytes:
    return stamp_ofd(certificate, kit.seal_der, kit.signer, anchor("（盖章）"))


@pytest.mark.parametrize("name", ["helloworld.ofd", "chineseDir.ofd", "Page5.ofd"])
def test_stamp_interop_inputs(kit, interop_dir, name):
    src = (interop_dir / name).read_bytes()
    out = stamp_ofd(src, kit.seal_der, kit.signer, at(150, 240))
    result = verify_ofd(out, name, kit.trust)
    assert result.valid, failing(result)
    before, after = members(src), members(out)
    raw_before, raw_after = raw_members(src), raw_members(out)
    for member, content in before.items():
        if member == "OFD.xml":
            continue  # gains <Signatures> on the first seal
        assert after[member] == content
        assert raw_after[member] == raw_before[member]  # copied without recompressing
    assert b"<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>" in after["OFD.xml"]
    # the pages still read the same (our usability check)
    assert open_ofd(out).text == open_ofd(src).text


def test_signature_xml_contents(kit, sealed):
    doc = open_ofd(sealed)
    entry = doc.signatures.entries[0]
    info = read_signature(doc.package, entry.member)
    assert entry.member == "Doc_0/Signs/Sign_0/Signature.xml"
    assert info.check_method == "1.2.156.10197.1.401"
    refs = {r.member for r in info.references}
    assert "Doc_0/Signs/Sign_0/Seal.esl" in refs and "OFD.xml" in refs
    assert "Doc_0/Signs/Signatures.xml" not in refs
    assert info.seal_member == "Doc_0/Signs/Sign_0/Seal.esl"
    (annot,) = info.stamp_annots
    assert annot.page_ref == doc.pages[0].id
    # centred on the （盖章） line
    seal_line = next(t for t in doc.pages[0].texts if t.text == "（盖章）")
    x, y, w, h = annot.boundary
    assert abs((x + w / 2) - (seal_line.x_mm + seal_line.width_mm / 2)) < 1
    assert abs((y + h / 2) - (seal_line.y_mm + seal_line.height_mm / 2)) < 1
    assert w > 20 and h > 20
    assert members(sealed)["Doc_0/Signs/Sign_0/Seal.esl"] == kit.seal_der


def test_result_fields(kit, sealed):
    result = verify_ofd(sealed, "cert.ofd", kit.trust)
    assert result.valid and result.intact and result.trusted, failing(result)
    (sig,) = result.signatures
    assert sig.es_id == "45010000000001"
    assert sig.seal_name == "南宁市示例市场监督管理局公章"
    assert sig.signed_at and sig.seal_picture_png
    names = {c.name for c in sig.checks}
    assert {"references", "coverage", "seal_esl", "property_info"} <= names


def test_untrusted_without_roots(kit, sealed):
    result = verify_ofd(sealed, "cert.ofd", None)
    assert result.intact and not result.trusted and not result.valid


def test_second_seal_keeps_first_valid(kit, sealed):
    twice = stamp_ofd(sealed, kit.seal_der, kit.signer, at(60, 240))
    result = verify_ofd(twice, "twice.ofd", kit.trust)
    assert len(result.signatures) == 2
    assert result.valid, failing(result)
    doc = open_ofd(twice)
    assert doc.signatures.max_sign_id == 2
    assert [e.member for e in doc.signatures.entries] == ["Doc_0/Signs/Sign_0/Signature.xml",
                                                         "Doc_0/Signs/Sign_1/Signature.xml"]
    # the first seal's files are covered by the second
    second = read_signature(doc.package, "Doc_0/Signs/Sign_1/Signature.xml")
    assert "Doc_0/Signs/Sign_0/SignedValue.dat" in {r.member for r in second.references}


@pytest.mark.parametrize("name", ["v4signed.ofd", "signedFile.ofd", "SESV4SignDoc.ofd"])
def test_second_seal_on_foreign_file(kit, interop_dir, name):
    src = (interop_dir / name).read_bytes()
    out = stamp_ofd(src, kit.seal_der, kit.signer, at(150, 100))
    result = verify_ofd(out, name, kit.trust)
    theirs, ours = result.signatures
    assert theirs.intact, failing(result)
    assert ours.valid, failing(result)
    doc = open_ofd(out)
    before = open_ofd(src).signatures
    assert doc.signatures.max_sign_id == before.max_sign_id + 1
    assert doc.signatures.entries[-1].id == str(before.max_sign_id + 1)
    assert [e.member for e in doc.signatures.entries][:-1] == [e.member for e in before.entries]


@pytest.mark.parametrize("member", ["OFD.xml", "Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml",
                                    "Doc_0/PublicRes.xml", "Doc_0/Signs/Sign_0/Seal.esl"])
def test_tampered_member_is_named(kit, sealed, member):
    result = verify_ofd(flip_byte(sealed, member), "t.ofd", kit.trust)
    assert not result.intact
    assert any("/" + member in f for f in failing(result)), failing(result)


def test_tampered_signature_xml(kit, sealed):
    from .helpers import replace_member

    name = "Doc_0/Signs/Sign_0/Signature.xml"
    xml = members(sealed)[name]
    # a well-formed change: the signing time's last digit
    i = xml.index(b"</ofd:SignatureDateTime>") - 2
    changed = xml[:i] + (b"1" if xml[i:i + 1] != b"1" else b"2") + xml[i + 1:]
    result = verify_ofd(replace_member(sealed, name, changed), "t.ofd", kit.trust)
    assert not result.intact
    assert any(f.startswith("data_hash") for f in failing(result)), failing(result)
    # a change that breaks the XML is named too
    result = verify_ofd(flip_byte(sealed, name, 0.2), "t.ofd", kit.trust)
    assert not result.intact
    assert any(name in f for f in failing(result)), failing(result)


@pytest.mark.parametrize("at_", [0.5, 0.99])
def test_tampered_signed_value(kit, sealed, at_):
    result = verify_ofd(flip_byte(sealed, "Doc_0/Signs/Sign_0/SignedValue.dat", at_), "t.ofd", kit.trust)
    assert not result.intact, failing(result)


def test_anchor_not_found(kit, certificate):
    with pytest.raises(AnchorNotFound) as err:
        stamp_ofd(certificate, kit.seal_der, kit.signer, anchor("不存在的文字"), path="in/cert.ofd")
    assert "不存在的文字" in str(err.value) and "in/cert.ofd" in str(err.value)


def test_anchor_with_offset(kit, certificate):
    out = stamp_ofd(certificate, kit.seal_der, kit.signer, anchor("发证日期" if False else "登记机关", dx=30, dy=5))
    doc = open_ofd(out)
    info = read_signature(doc.package, doc.signatures.entries[0].member)
    line = next(t for t in doc.pages[0].texts if t.text.startswith("登记机关"))
    x, y, w, h = info.stamp_annots[0].boundary
    assert line.x_mm + 30 < x + w / 2 < line.x_mm + line.width_mm + 30
    assert abs((y + h / 2) - (line.y_mm + line.height_mm / 2 + 5)) < 0.5


def test_cross_page_seal(kit, interop_dir):
    src = (interop_dir / "Page5.ofd").read_bytes()
    placement = Placement(page=None, x_mm=None, y_mm=150, anchor_text=None, offset_mm=(0.0, 0.0), cross_page=True)
    out = stamp_ofd(src, kit.seal_der, kit.signer, placement)
    result = verify_ofd(out, "p5.ofd", kit.trust)
    assert result.valid, failing(result)
    doc = open_ofd(out)
    info = read_signature(doc.package, doc.signatures.entries[0].member)
    assert [a.page_ref for a in info.stamp_annots] == [p.id for p in doc.pages]
    widths = []
    for k, a in enumerate(info.stamp_annots):
        x, y, w, h = a.boundary
        cx, _, cw, _ = a.clip
        widths.append(cw)
        assert abs(cx - k * cw) < 0.02  # slice k of the picture
        assert abs((x + cx + cw) - 210) < 0.02  # that slice ends at the right edge
        assert abs(y + h / 2 - 150) < 0.01
    assert abs(sum(widths) - w) < 0.05


def test_page_out_of_range(kit, interop_dir):
    from stamping.ofd import OfdError

    with pytest.raises(OfdError, match="out of range"):
        stamp_ofd((interop_dir / "helloworld.ofd").read_bytes(), kit.seal_der, kit.signer, at(100, 100, page=3))


@pytest.mark.parametrize(("value", "iso"), [
    ("20201010151120", "2020-10-10T15:11:20+00:00"),
    # hours 10–23 in the compact form: fromisoformat alone read these as 01:13:0 / 03:00:0 the same day
    ("20261207101130Z", "2026-12-07T10:11:30+00:00"),
    ("20261207230000", "2026-12-07T23:00:00+00:00"),
    ("20201004072855.302Z", "2020-10-04T07:28:55.302000+00:00"),
    ("2026-08-04 10:08:09", "2026-08-04T10:08:09+00:00"),
    ("2026-08-04T10:08:09+08:00", "2026-08-04T10:08:09+08:00"),
])
def test_signature_datetime_formats(value, iso):
    assert parse_signature_datetime(value).isoformat() == iso


def test_coverage_rules(kit, sealed):
    # A member added after signing is reported but does not fail the seal.
    import io
    import zipfile

    from .helpers import replace_member

    buf = io.BytesIO(sealed)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("Doc_0/Res/added.txt", b"later")
    result = verify_ofd(buf.getvalue(), "added.ofd", kit.trust)
    coverage = next(c for c in result.signatures[0].checks if c.name == "coverage")
    assert coverage.ok and "/Doc_0/Res/added.txt" in coverage.reason
    assert result.valid
    # A signature whose References leave out a page fails, naming the page.
    sig_xml = members(sealed)["Doc_0/Signs/Sign_0/Signature.xml"]
    start = sig_xml.index(b'<ofd:Reference FileRef="/Doc_0/Pages/Page_0/Content.xml">')
    end = sig_xml.index(b"</ofd:Reference>", start) + len(b"</ofd:Reference>")
    stripped = replace_member(sealed, "Doc_0/Signs/Sign_0/Signature.xml", sig_xml[:start] + sig_xml[end:])
    result = verify_ofd(stripped, "stripped.ofd", kit.trust)
    assert any(f.startswith("coverage") and "/Doc_0/Pages/Page_0/Content.xml" in f for f in failing(result))


def test_hostile_input_is_refused_before_stamping(kit):
    from stamping.ofd import OfdError

    from .test_package import XXE, make_zip

    with pytest.raises(OfdError, match="DTD"):
        stamp_ofd(make_zip([("OFD.xml", XXE)]), kit.seal_der, kit.signer, at(100, 100), path="evil.ofd")


def test_other_namespace_and_relative_baseloc(kit, interop_dir):
    from .helpers import replace_member

    src = (interop_dir / "helloworld.ofd").read_bytes()
    for name, content in members(src).items():
        if name.endswith(".xml"):
            src = replace_member(src, name, content.replace(b"http://www.ofdspec.org/2016", b"http://www.ofdspec.org"))
    out = stamp_ofd(src, kit.seal_der, kit.signer, at(100, 100))
    assert verify_ofd(out, "ns.ofd", kit.trust).valid
    sigs = members(out)["Doc_0/Signs/Signatures.xml"]
    relative = sigs.replace(b'BaseLoc="/Doc_0/Signs/Sign_0/Signature.xml"', b'BaseLoc="Sign_0/Signature.xml"')
    assert relative != sigs
    result = verify_ofd(replace_member(out, "Doc_0/Signs/Signatures.xml", relative), "rel.ofd", kit.trust)
    assert result.valid, failing(result)


def test_status_lookup_is_consulted(kit, sealed):
    from stamping.verdict.result import SealStatus

    seen = []

    def revoked(es_id, at):
        seen.append((es_id, at))
        return SealStatus.REVOKED

    result = verify_ofd(sealed, "cert.ofd", kit.trust, revoked)
    assert seen and seen[0][0] == "45010000000001"
    assert result.intact and result.trusted and not result.valid
    assert any(f.startswith("seal_status") and "revoked" in f for f in failing(result))
