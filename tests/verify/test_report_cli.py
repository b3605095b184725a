"""Reports (JSON, HTML) and the ``sealflow verify`` contract: exit codes and the --json shape."""

from __future__ import annotations

import json

import pytest

from sealflow.cli import main
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.verdict.result import DocumentResult, SignatureResult
from stamping.verify.dispatch import sniff_format, verify_file
from stamping.verify.report import render_html, results_to_json

PNG = b"\x89PNG\r\n\x1a\n-not-really"


def crafted() -> DocumentResult:
    sig = SignatureResult(signer="<script>alert(1)</script>", seal_name="公章 & <b>", es_id="4501",
                          signed_at="2026-01-01T00:00:00+00:00", seal_picture_png=PNG, location="/Doc_0/x")
    sig.add("references", False, 'modified: /Doc_0/<img src=x onerror="y">')
    sig.add("signer_chain", True, "chain ok", kind="trust")
    return DocumentResult(path="a<b>.ofd", format="ofd", signatures=[sig])


def test_html_escapes_everything_and_embeds_picture():
    html = render_html([crafted()])
    assert "<script>" not in html and "<img src=x" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "data:image/png;base64," in html
    assert "references" in html and "signer_chain" in html and "chain ok" in html
    assert "2026-01-01T00:00:00+00:00" in html
    assert "无效" in html  # the verdict


def test_json_shape():
    (doc,) = results_to_json([crafted()])
    assert {"path", "format", "intact", "trusted", "valid", "signatures", "error"} <= doc.keys()
    (sig,) = doc["signatures"]
    assert {"signer", "seal_name", "es_id", "signed_at", "intact", "trusted", "checks"} <= sig.keys()
    assert sig["checks"][0]["name"] == "references" and sig["checks"][0]["ok"] is False
    assert doc["valid"] is False and sig["intact"] is False
    json.dumps(doc)  # serialisable (the picture bytes are not in JSON)


def test_sniff():
    assert sniff_format(b"PK\x03\x04....") == "ofd"
    assert sniff_format(b"\n\n%PDF-1.7") == "pdf"
    assert sniff_format(b"hello") == "unknown"


def test_verify_file_never_raises(tmp_path):
    missing = verify_file(tmp_path / "nope.ofd", None)
    assert missing.error and "cannot read" in missing.error
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"garbage")
    assert verify_file(junk, None).error == "not an OFD or PDF file"
    bad_zip = tmp_path / "bad.ofd"
    bad_zip.write_bytes(b"PK\x03\x04" + b"\0" * 50)
    result = verify_file(bad_zip, None)
    assert result.format == "ofd" and "zip" in result.error.lower() and not result.valid


@pytest.fixture
def unsigned(tmp_path):
    path = tmp_path / "docs" / "unsigned.ofd"
    path.parent.mkdir()
    path.write_bytes(make_sample_certificate_ofd(sample_business_licence_fields(), "business_licence"))
    (path.parent / "notes.txt").write_text("ignored by folder expansion")
    return path


def test_cli_unsigned_is_exit_1_with_json(unsigned, capsys):
    rc = main(["verify", "--no-registry", "--json", str(unsigned.parent)])
    assert rc == 1
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, list) and len(out) == 1
    assert out[0]["path"] == str(unsigned) and out[0]["format"] == "ofd"
    assert out[0]["valid"] is False and "not sealed" in out[0]["error"]


def test_cli_usage_errors(tmp_path, capsys):
    assert main(["verify", "--no-registry", str(tmp_path / "missing.ofd")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["verify", "--no-registry", str(empty)]) == 2
    assert main(["verify", "--no-registry", "--trust", str(tmp_path / "nope.pem"), str(empty)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["verify"])
    assert exc.value.code == 2


def test_cli_html_report(unsigned, tmp_path, capsys):
    out = tmp_path / "report" / "r.html"
    assert main(["verify", "--no-registry", "--html", str(out), str(unsigned)]) == 1
    html = out.read_text(encoding="utf-8")
    assert "unsigned.ofd" in html and "not sealed" in html
    assert "INVALID" in capsys.readouterr().out


def _seal_one(kit, tmp_path):
    from stamping.ofd.stamp import stamp_ofd
    from stamping.placement import Placement

    data = make_sample_certificate_ofd(sample_business_licence_fields(2), "business_licence")
    path = tmp_path / "sealed.ofd"
    path.write_bytes(stamp_ofd(data, kit.seal_der, kit.signer, Placement(page=None, anchor_text="（盖章）")))
    return path


def test_cli_valid_document_exit_0(kit, tmp_path, capsys):
    path = _seal_one(kit, tmp_path)
    report = tmp_path / "r.html"
    rc = main(["verify", "--no-registry", "--json", "--trust", str(kit.trust_pem_path), "--html", str(report),
               str(path)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    (doc,) = out
    assert doc["valid"] and doc["intact"] and doc["trusted"] and doc["error"] is None
    (sig,) = doc["signatures"]
    assert sig["es_id"] == "45010000000001" and sig["intact"] and sig["trusted"]
    assert all(c["ok"] for c in sig["checks"])
    html = report.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "45010000000001" in html and "maker_signature" in html
    # without the root: intact but not trusted → exit 1
    assert main(["verify", "--no-registry", "--json", str(path)]) == 1
    (doc,) = json.loads(capsys.readouterr().out)
    assert doc["intact"] and not doc["trusted"] and not doc["valid"]


def test_cli_interop_intact_not_trusted(interop_dir, capsys):
    rc = main(["verify", "--no-registry", "--json", str(interop_dir / "v4signed.ofd"),
               str(interop_dir / "SESV4SignDoc.ofd"), str(interop_dir / "helloworld.ofd")])
    assert rc == 1
    v4, ses, hello = json.loads(capsys.readouterr().out)
    assert v4["intact"] and not v4["trusted"] and v4["signatures"][0]["es_id"] == "50011200000399"
    assert ses["intact"] and not ses["trusted"]
    assert hello["error"] and not hello["intact"]


def warned() -> DocumentResult:
    sig = SignatureResult(signer="甲", seal_name="公章", es_id="4501", location="/Doc_0/x")
    sig.add("references", True, "ok")
    sig.add("signer_chain", True, "chain ok", kind="trust")
    sig.add("drawn_parts", False, "not covered: /Doc_0/Tpls/Tpl_0/Content.xml (template)", kind="warning")
    return DocumentResult(path="w.ofd", format="ofd", signatures=[sig])


def test_html_shows_the_three_verdicts_and_the_warnings():
    untrusted = crafted()
    untrusted.signatures[0].checks[0].ok = True
    untrusted.signatures[0].checks[1].ok = False
    html = render_html([warned(), crafted(), untrusted])
    assert "有效但有警告 valid with warnings" in html and "b-warn" in html
    assert "⚠ drawn_parts: not covered: /Doc_0/Tpls/Tpl_0/Content.xml (template)" in html
    assert "⚠ 警告" in html  # the warning check's row
    assert "无效 not valid" in html and "完整但不受信任 intact, not trusted" in html
    assert "1 有效但有警告 valid with warnings · 2 无效 not valid" in html


def test_batch_reasons_name_the_verdict_and_the_warning():
    from stamping.verify.report import verdict_reasons

    assert verdict_reasons(warned()) == [
        "verdict valid_with_warnings: SealFlow batches accept only valid",
        "warning: drawn_parts: not covered: /Doc_0/Tpls/Tpl_0/Content.xml (template)"]
    assert verdict_reasons(crafted()) == ['references: modified: /Doc_0/<img src=x onerror="y">']
    assert verdict_reasons(DocumentResult("a.ofd", "ofd", error="boom")) == ["boom"]


def test_html_opens_with_one_line_per_file_saying_why_in_chinese_with_the_technical_name_small():
    tampered = crafted()
    untrusted = crafted()
    untrusted.signatures[0].checks[0].ok = True
    untrusted.signatures[0].checks[1].ok = False
    junk = DocumentResult("junk.pdf", "pdf", error="not an OFD or PDF file")
    html = render_html([warned(), tampered, untrusted, junk])
    overview = html[html.index("verdict per file"):html.index('<h2 id="d1">')]
    lines = overview.split("<tr>")[2:]
    assert len(lines) == 4  # one line per file, before any file's details
    assert "有效但有警告" in lines[0] and "验章警告：部分显示内容不在签名保护范围内" in lines[0]
    assert "<small>drawn_parts: not covered" in lines[0]
    assert "无效" in lines[1] and "验章未通过：被签名的文件内容被改动" in lines[1]
    assert "<small>references: modified" in lines[1]
    assert "签章完整，但签章人证书不受信任" in lines[2]
    assert "文件已损坏或不是 PDF/OFD" in lines[3] and "<small>not an OFD or PDF file</small>" in lines[3]
    assert "True" not in html and "False" not in html  # 是 / 否, not Python's booleans
    assert html.count("data:image/png;base64,") == 1  # two signatures with one seal: the picture once
    assert "2026年01月01日 08:00:00（北京时间）" in html
