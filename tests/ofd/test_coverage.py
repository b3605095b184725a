"""OFD coverage judged on what a reader displays (issue 12 item 4): the first DocBody's document,
its pages and what they draw. Every signature here is genuine (the kit's seal and key); only what it
covers differs, as with another vendor's software."""

from __future__ import annotations

import re

import pytest

from stamping.ofd.package import OfdError
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement

from .helpers import build_zip, members, resign

ANCHOR = Placement(page=None, x_mm=None, y_mm=None, anchor_text="（盖章）", offset_mm=(0.0, 0.0), cross_page=False)
PAGE = "Doc_0/Pages/Page_0/Content.xml"
TEMPLATE = "Doc_0/Tpls/Tpl_0/Content.xml"
NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'


def checks(result) -> dict[str, tuple[bool, str]]:
    (sig,) = result.signatures
    return {c.name: (c.ok, c.reason) for c in sig.checks}


def with_template(doc: bytes) -> bytes:
    """The sample certificate with a background template page drawn under page 1."""
    parts = members(doc)
    parts["Doc_0/Document.xml"] = parts["Doc_0/Document.xml"].replace(
        b"<ofd:PublicRes>", b'<ofd:TemplatePage ID="900" BaseLoc="Tpls/Tpl_0/Content.xml"/><ofd:PublicRes>')
    parts[PAGE] = parts[PAGE].replace(b"<ofd:Content>", b'<ofd:Template TemplateID="900"/><ofd:Content>', 1)
    parts[TEMPLATE] = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {NS}><ofd:Content><ofd:Layer ID="901"/>'
                       "</ofd:Content></ofd:Page>").encode()
    return build_zip(parts)


@pytest.fixture(scope="module")
def certificate() -> bytes:
    return with_template(make_sample_certificate_ofd(sample_business_licence_fields(5), "business_licence"))


@pytest.fixture(scope="module")
def sealed(kit, certificate) -> bytes:
    return stamp_ofd(certificate, kit.seal_der, kit.signer, ANCHOR)


def test_our_seal_covers_everything_displayed(kit, sealed):
    result = verify_ofd(sealed, "t.ofd", kit.trust)
    assert result.verdict == "valid", result.to_json()
    assert not result.all_warnings


def test_unsigned_docbody_put_first_over_uncovered_ofd_xml_is_not_valid(kit, sealed):
    """The attack: a signature that leaves OFD.xml out lets a forged, unsigned document be shown first."""
    signed = resign(sealed, kit, drop=("OFD.xml",))
    parts = members(signed)
    forged_page = parts[PAGE].replace("南宁市示例科技有限公司".encode(), "南宁市冒名顶替有限公司".encode())
    assert forged_page != parts[PAGE]
    for name in ("Document.xml", "PublicRes.xml", "Pages/Page_0/Content.xml", "Tpls/Tpl_0/Content.xml"):
        parts[f"Doc_1/{name}"] = forged_page if name.startswith("Pages") else parts[f"Doc_0/{name}"]
    parts["OFD.xml"] = re.sub(rb"<ofd:DocBody>", b"<ofd:DocBody><ofd:DocRoot>Doc_1/Document.xml</ofd:DocRoot>"
                              b"</ofd:DocBody><ofd:DocBody>", parts["OFD.xml"], count=1)
    result = verify_ofd(build_zip(parts), "t.ofd", kit.trust)
    assert result.verdict == "not_valid"
    ok, reason = checks(result)["coverage"]
    assert not ok and "/OFD.xml" in reason and "/Doc_1/Document.xml" in reason and "/Doc_1/Pages" in reason
    assert checks(result)["references"][0]  # the signature itself is intact: only coverage tells


def test_uncovered_ofd_xml_alone_is_not_valid(kit, sealed):
    result = verify_ofd(resign(sealed, kit, drop=("OFD.xml",)), "t.ofd", kit.trust)
    assert result.verdict == "not_valid"
    assert "/OFD.xml" in checks(result)["coverage"][1]


@pytest.mark.parametrize("part", ["Doc_0/Document.xml", PAGE])
def test_uncovered_document_or_page_is_not_valid(kit, sealed, part):
    result = verify_ofd(resign(sealed, kit, drop=(part,)), "t.ofd", kit.trust)
    assert result.verdict == "not_valid"
    ok, reason = checks(result)["coverage"]
    assert not ok and "/" + part in reason


def test_uncovered_template_is_a_warning_naming_it(kit, sealed):
    result = verify_ofd(resign(sealed, kit, drop=(TEMPLATE,)), "t.ofd", kit.trust)
    assert result.verdict == "valid_with_warnings", result.to_json()
    assert result.all_warnings == [f"drawn_parts: parts the document draws are not covered by the signature: "
                                   f"/{TEMPLATE} (template)"]
    assert result.to_json()["verdict"] == "valid_with_warnings" and not result.valid


def test_uncovered_resource_and_image_are_warnings(kit, sealed):
    parts = members(sealed)
    res = parts["Doc_0/PublicRes.xml"].replace(
        b"</ofd:Fonts>", b'</ofd:Fonts><ofd:MultiMedias><ofd:MultiMedia ID="950" Type="Image">'
        b"<ofd:MediaFile>logo.png</ofd:MediaFile></ofd:MultiMedia></ofd:MultiMedias>")
    extra = {"Doc_0/PublicRes.xml": res, "Doc_0/Res/logo.png": b"\x89PNG\r\n\x1a\nfake"}
    signed = resign(sealed, kit, extra=extra, drop=("Doc_0/PublicRes.xml", "Doc_0/Res/logo.png"))
    result = verify_ofd(signed, "t.ofd", kit.trust)
    assert result.verdict == "valid_with_warnings"
    (warning,) = result.all_warnings
    assert "/Doc_0/PublicRes.xml (resource)" in warning and "/Doc_0/Res/logo.png (image)" in warning


def test_uncovered_member_that_nothing_draws_is_named_but_not_a_warning(kit, sealed):
    signed = resign(sealed, kit, extra={"Doc_0/notes.txt": b"x"}, drop=("Doc_0/notes.txt",))
    result = verify_ofd(signed, "t.ofd", kit.trust)
    assert result.verdict == "valid"
    assert "/Doc_0/notes.txt" in checks(result)["coverage"][1]


def test_second_seal_keeps_the_first_valid_without_warnings(kit, sealed):
    twice = stamp_ofd(sealed, kit.seal_der, kit.signer, Placement(page=0, x_mm=60, y_mm=60))
    result = verify_ofd(twice, "t.ofd", kit.trust)
    assert len(result.signatures) == 2 and result.verdict == "valid", result.to_json()


def test_stamping_refuses_to_break_a_signature_that_protects_signatures_xml(kit, sealed):
    protective = resign(sealed, kit, add=("Doc_0/Signs/Signatures.xml",))
    assert verify_ofd(protective, "t.ofd", kit.trust).verdict == "valid"
    with pytest.raises(OfdError, match=r"protects /Doc_0/Signs/Signatures\.xml, which a new seal must change"):
        stamp_ofd(protective, kit.seal_der, kit.signer, ANCHOR, path="t.ofd")


def test_stamping_another_vendors_sealed_invoice_keeps_its_seal_intact(kit, interop_dir):
    src = (interop_dir / "v4signed.ofd").read_bytes()
    out = stamp_ofd(src, kit.seal_der, kit.signer, Placement(page=0, x_mm=60, y_mm=60), path="v4signed.ofd")
    theirs, ours = verify_ofd(out, "v4signed.ofd", kit.trust).signatures
    assert theirs.intact and not theirs.trusted  # as before: their test CA is not ours
    assert ours.valid, ours.to_json()


def test_sealflow_verify_exits_3_for_warnings_and_shows_them(kit, sealed, tmp_path, capsys):
    import json

    from sealflow.cli import main

    warned = tmp_path / "warned.ofd"
    warned.write_bytes(resign(sealed, kit, drop=(TEMPLATE,)))
    good = tmp_path / "good.ofd"
    good.write_bytes(sealed)
    trust = ["--no-registry", "--trust", str(kit.trust_pem_path)]
    assert main(["verify", *trust, str(good)]) == 0
    capsys.readouterr()
    assert main(["verify", *trust, str(warned), str(good)]) == 3
    text = capsys.readouterr().out
    assert "VALID-WITH-WARNINGS" in text and "⚠ drawn_parts: parts the document draws are not covered" in text
    report = tmp_path / "r.html"
    assert main(["verify", *trust, "--json", "--html", str(report), str(warned)]) == 3
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "valid_with_warnings" and doc["valid"] is False and doc["intact"] and doc["trusted"]
    assert doc["warnings"] == [f"drawn_parts: parts the document draws are not covered by the signature: "
                               f"/{TEMPLATE} (template)"]
    html = report.read_text(encoding="utf-8")
    assert "有效但有警告 valid with warnings" in html and f"/{TEMPLATE} (template)" in html
    # any not_valid document wins over warnings
    assert main(["verify", *trust, str(warned), str(tmp_path / "x.ofd")]) == 2  # missing file: usage error
    bad = tmp_path / "bad.ofd"
    bad.write_bytes(resign(sealed, kit, drop=("OFD.xml",)))
    assert main(["verify", *trust, str(warned), str(bad)]) == 1
