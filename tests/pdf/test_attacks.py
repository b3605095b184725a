"""Attacks on sealed PDFs (issue 12, PDF Insecurity classes), each built here by code on a file SealFlow
sealed: 验章 must say not_valid and name what changed, or stamping must refuse.

Two independent lines judge every later update: the structural classification (``later_changes``) and
the rendered pages (``rendering``); the tests check both where both can see the change.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.errors import PdfError
from stamping.placement import Placement
from tests.pdf.forge import (
    FONT,
    append_objstm_update,
    append_update,
    last_startxref,
    next_free_number,
    object_offset,
    page_object,
    text_stream,
    trailer_value,
)

ANCHOR = Placement.parse("anchor:（盖章）")
MODIFIED = "document modified after sealing: "


@pytest.fixture(scope="module")
def sealed(kit, sample_pdf) -> bytes:
    return stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)


def _failed(data: bytes, kit) -> dict[str, str]:
    result = verify_pdf(data, "forged.pdf", kit.trust)
    assert result.verdict == "not_valid", result.to_json()
    return {c.name: c.reason for s in result.signatures for c in s.checks if not c.ok}


def _with_pymupdf(data: bytes, tmp_path: Path, change) -> bytes:
    """An incremental update written by PyMuPDF (as a reader/editor would save it)."""
    path = tmp_path / "edit.pdf"
    path.write_bytes(data)
    doc = pymupdf.open(path)
    change(doc)
    doc.saveIncr()
    doc.close()
    out = path.read_bytes()
    assert out.startswith(data)
    return out


def _forged_page_objects(data: bytes) -> tuple[dict[int, bytes], int]:
    """A forged page (new content and font), not yet reachable: objects and the page's number."""
    n = next_free_number(data)
    font, content, page = n, n + 1, n + 2
    return {font: FONT, content: text_stream("FORGED 999"),
            page: b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595.2756 841.8898]/Contents %d 0 R"
                  b"/Resources<</Font<</FForge %d 0 R>>>>>>" % (content, font)}, page


# --- incremental saving attacks ----------------------------------------------------------------

def test_the_sealed_file_itself_is_valid(kit, sealed):
    assert verify_pdf(sealed, "sealed.pdf", kit.trust).verdict == "valid"


def test_an_update_with_a_new_catalog_and_page_tree_is_not_valid(kit, sealed):
    objects, page = _forged_page_objects(sealed)
    pages, catalog = page + 1, page + 2
    objects[page] = objects[page].replace(b"/Parent 2 0 R", b"/Parent %d 0 R" % pages)
    objects[pages] = b"<</Type/Pages/Kids[%d 0 R]/Count 1>>" % page
    form = pymupdf.open(stream=sealed, filetype="pdf").xref_get_key(1, "AcroForm")[1]  # the seal stays listed
    objects[catalog] = b"<</Type/Catalog/Pages %d 0 R/AcroForm %s>>" % (pages, form.encode())
    failed = _failed(append_update(sealed, objects, root=f"{catalog} 0 R"), kit)
    assert failed["later_changes"].startswith(MODIFIED)
    assert f"a new catalog (object {catalog}) replaces the signed one (object 1)" in failed["later_changes"]
    assert "page 1 differs in the region" in failed["rendering"]


def test_an_update_replacing_the_page_tree_is_not_valid(kit, sealed):
    objects, page = _forged_page_objects(sealed)
    objects[2] = b"<</Type/Pages/Kids[%d 0 R]/Count 1>>" % page
    failed = _failed(append_update(sealed, objects), kit)
    assert "object 2 (/Pages): /Kids changed" in failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_xref_resurrection_of_a_corrected_object_is_not_valid(kit, sample_pdf):
    """A correction made before sealing (a blue box added to content stream 6) disappears when a later
    xref row points object 6 back at its older definition, still inside the signed bytes."""
    box = b"0 0 1 rg 100 600 200 50 re f"
    corrected = append_update(sample_pdf, {6: b"<</Length %d>>stream\n%s\nendstream" % (len(box), box)})
    sealed = stamp_pdf(corrected, kit.seal_der, kit.signer, ANCHOR)
    assert verify_pdf(sealed, "s.pdf", kit.trust).verdict == "valid"
    forged = append_update(sealed, {}, rows=[(6, object_offset(sealed, 6, 0), "n")])
    failed = _failed(forged, kit)
    assert "object 6: the update at bytes" in failed["later_changes"]
    assert "xref resurrection" in failed["later_changes"]
    assert "page 1 differs in the region" in failed["rendering"]


@pytest.mark.parametrize("kind", ["FreeText", "Stamp", "opaque Square"])
def test_an_annotation_drawn_over_the_sealed_page_is_not_valid(kit, any_sample_pdf, tmp_path, kind):
    sealed = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)

    def annotate(doc: pymupdf.Document) -> None:
        page, rect = doc[0], pymupdf.Rect(80, 150, 400, 260)
        if kind == "FreeText":
            page.add_freetext_annot(rect, "持证主体: FORGED", fontsize=18, fill_color=(1, 1, 1))
        elif kind == "Stamp":
            page.add_stamp_annot(rect, stamp=0)
        else:
            annot = page.add_rect_annot(rect)
            annot.set_colors(stroke=(1, 1, 1), fill=(1, 1, 1))
            annot.update()

    failed = _failed(_with_pymupdf(sealed, tmp_path, annotate), kit)
    assert failed["later_changes"].startswith(MODIFIED)
    assert "added to the page or form (not a new signature)" in failed["later_changes"]
    assert "page 1 differs in the region" in failed["rendering"]


def test_showing_hidden_optional_content_is_not_valid(kit, tmp_path, sample_pdf):
    """Shadow 'hide': signed content in an optional-content group that is off; a later update turns it on."""
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    ocg = doc.add_ocg("forgery", on=False)
    doc[0].insert_text((80, 200), "FORGED 999", fontsize=24, oc=ocg)
    with_layer = doc.tobytes()
    doc.close()
    sealed = stamp_pdf(with_layer, kit.seal_der, kit.signer, ANCHOR)
    assert verify_pdf(sealed, "s.pdf", kit.trust).verdict == "valid"
    failed = _failed(_with_pymupdf(sealed, tmp_path, lambda d: d.set_layer(-1, on=[ocg], off=[])), kit)
    assert failed["later_changes"].startswith(MODIFIED)
    assert "page 1 differs" in failed["rendering"]


def test_a_content_stream_redefined_with_a_new_generation_is_not_valid(kit, sealed):
    box = b"1 1 1 rg 50 500 500 300 re f"
    forged = append_update(sealed, {6: b"<</Length %d>>stream\n%s\nendstream" % (len(box), box)}, gen=1)
    failed = _failed(forged, kit)
    assert "object 6 (stream): stream changed" in failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_a_page_redefined_inside_a_new_object_stream_is_not_valid(kit, any_sample_pdf):
    sealed = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    objects, page = _forged_page_update(sealed)
    content = next(n for n, body in objects.items() if b"stream" in body)
    forged = append_objstm_update(sealed, {n: b for n, b in objects.items() if n != content},
                                  {content: objects[content]})
    assert pymupdf.open(stream=forged, filetype="pdf").xref_get_key(-1, "Type") == ("name", "/XRef")
    failed = _failed(forged, kit)
    assert f"object {page} (page 1): /Contents, /Resources changed" in failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_a_rectangle_drawn_by_an_editor_save_is_not_valid(kit, any_sample_pdf, tmp_path):
    sealed = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)

    def change(doc: pymupdf.Document) -> None:
        doc[0].draw_rect(pymupdf.Rect(80, 150, 400, 260), color=(1, 1, 1), fill=(1, 1, 1))

    failed = _failed(_with_pymupdf(sealed, tmp_path, change), kit)
    assert failed["later_changes"].startswith(MODIFIED)
    assert "page 1 differs" in failed["rendering"]


# --- hiding the update from one kind of reader -----------------------------------------------------

def _forged_page_update(sealed: bytes) -> tuple[dict[int, bytes], int]:
    """Page 4 of the sealed file redefined to draw forged text on top of its signed content."""
    num, text = page_object(sealed)
    n = next_free_number(sealed)
    page = text.replace("/Contents[5 0 R 6 0 R 10 0 R]", f"/Contents[5 0 R 6 0 R 10 0 R {n} 0 R]")
    page = page.replace("/Resources 3 0 R", f"/Resources<</Font<</china-s 7 0 R/FForge {n + 1} 0 R>>>>")
    assert page.count(f"{n} 0 R") == 1 and page.count(f"{n + 1} 0 R") == 1
    return {num: page.encode(), n: text_stream("FORGED 999"), n + 1: FONT}, num


def test_objects_appended_without_a_cross_reference_are_not_valid(kit, sealed):
    objects, _ = _forged_page_update(sealed)
    failed = _failed(append_update(sealed, objects, with_xref=False), kit)
    assert "not a complete incremental update" in failed["later_changes"]


def test_an_update_whose_startxref_points_back_into_the_signed_part_is_not_valid(kit, sealed):
    objects, _ = _forged_page_update(sealed)
    failed = _failed(append_update(sealed, objects, startxref=last_startxref(sealed)), kit)
    assert "points outside the update" in failed["later_changes"]


def test_duplicate_rows_for_one_object_are_not_valid(kit, sealed):
    objects, page = _forged_page_update(sealed)
    forged = append_update(sealed, objects, rows=[(page, object_offset(sealed, page, 0), "n")])
    failed = _failed(forged, kit)
    assert f"object {page} is listed twice" in failed["later_changes"]


def test_a_hybrid_cross_reference_in_a_later_update_is_not_valid(kit, sealed):
    objects, _ = _forged_page_update(sealed)
    failed = _failed(append_update(sealed, objects, trailer_extra=b"/XRefStm 0"), kit)
    assert "hybrid cross-reference" in failed["later_changes"]


def test_freeing_a_signed_object_is_not_valid(kit, sealed):
    failed = _failed(append_update(sealed, {}, rows=[(6, 0, "f")]), kit)
    assert "object 6 is freed" in failed["later_changes"]


def test_a_prev_that_skips_a_revision_is_not_valid(kit, sealed):
    """Two updates; the second's /Prev jumps over the first to the signed revision, so readers that
    follow /Prev and readers that scan the file see different objects."""
    info = int(trailer_value(sealed, "Info").split()[0])
    first = append_update(sealed, {info: b"<</Producer(editor)>>"})
    objects, _ = _forged_page_update(first)
    failed = _failed(append_update(first, objects, prev=last_startxref(sealed)), kit)
    assert "/Prev does not lead back to the previous revision" in failed["later_changes"]


def test_an_object_hidden_beside_a_harmless_update_is_not_valid(kit, sealed):
    """The update's xref names only the Info dictionary; a repairing reader would also take the page."""
    objects, page = _forged_page_update(sealed)
    info = int(trailer_value(sealed, "Info").split()[0])
    hidden = append_update(sealed, objects, with_xref=False)
    forged = append_update(hidden, {info: b"<</Producer(editor)>>"}, prev=last_startxref(sealed))
    failed = _failed(forged, kit)
    assert f"object {page} at byte" in failed["later_changes"] and "not the one its cross-reference names" in \
        failed["later_changes"]


def test_an_object_hidden_behind_a_fake_stream_keyword_is_not_valid(kit, sealed):
    """'stream' written in a dictionary's string makes the hidden page look like stream data."""
    objects, page = _forged_page_update(sealed)
    info = int(trailer_value(sealed, "Info").split()[0])
    decoy = append_update(sealed, {info: b"<</Producer(stream)>>"}, with_xref=False)
    hidden = append_update(decoy, objects, with_xref=False)
    forged = append_update(hidden, {info: b"<</Producer(editor)>>"}, prev=last_startxref(sealed))
    failed = _failed(forged, kit)
    assert f"object {page} at byte" in failed["later_changes"]


def test_object_text_inside_a_real_stream_of_the_update_is_data(kit, sealed):
    """The page drawn by the text below is only bytes of a stream: no finding for it (nothing hidden)."""
    n = next_free_number(sealed)
    body = b"4 0 obj <</Type/Page>> endobj"
    stream = b"<</Length %d>>stream\n%s\nendstream" % (len(body), body)
    info = int(trailer_value(sealed, "Info").split()[0])
    # the stream is reachable from nothing drawn: it is reported only as an added object
    failed = _failed(append_update(sealed, {n: stream, info: b"<</Producer(editor)>>"}), kit)
    assert failed["later_changes"] == f"{MODIFIED}object {n} (stream) added"


# --- signatures that draw (Sneaky Signature) ------------------------------------------------------

def test_a_new_signature_field_reusing_the_sealed_value_is_not_a_signature(kit, sealed):
    """A widget that reuses the existing /Sig value to look like a signature and paints over the page."""
    doc = pymupdf.open(stream=sealed, filetype="pdf")
    sig = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") == ("name", "/Sig"))
    page_num, page_text = page_object(sealed)
    annots = doc.xref_get_key(page_num, "Annots")[1]
    doc.close()
    assert f"/Annots{annots}" in page_text
    n = next_free_number(sealed)
    ap = b"1 1 1 rg 0 0 400 300 re f"
    objects = {
        n: b"<</Type/XObject/Subtype/Form/BBox[0 0 400 300]/Length %d>>stream\n%s\nendstream" % (len(ap), ap),
        n + 1: b"<</Type/Annot/Subtype/Widget/FT/Sig/T(Fake)/V %d 0 R/Rect[50 400 450 700]/F 4/P %d 0 R"
               b"/AP<</N %d 0 R>>>>" % (sig, page_num, n),
        page_num: page_text.replace(f"/Annots{annots}", f"/Annots{annots[:-1]} {n + 1} 0 R]").encode(),
    }
    failed = _failed(append_update(sealed, objects), kit)
    assert f"object {n + 1} (/Annot /Widget) added to the page or form (not a new signature)" in \
        failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_a_signature_widget_outside_the_form_is_not_valid(kit, sealed):
    """A widget of a 'signature' that the form does not list is never verified, so it may not draw."""
    page_num, page_text = page_object(sealed)
    annots = pymupdf.open(stream=sealed, filetype="pdf").xref_get_key(page_num, "Annots")[1]
    n = next_free_number(sealed)
    ap = b"1 1 1 rg 0 0 400 300 re f"
    objects = {
        n: b"<</Type/XObject/Subtype/Form/BBox[0 0 400 300]/Length %d>>stream\n%s\nendstream" % (len(ap), ap),
        n + 1: b"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/adbe.pkcs7.detached/ByteRange[0 1 2 3]/Contents<00>>>",
        n + 2: b"<</Type/Annot/Subtype/Widget/FT/Sig/T(Fake)/V %d 0 R/Rect[50 400 450 700]/F 4/P %d 0 R"
               b"/AP<</N %d 0 R>>>>" % (n + 1, page_num, n),
        page_num: page_text.replace(f"/Annots{annots}", f"/Annots{annots[:-1]} {n + 2} 0 R]").encode(),
    }
    failed = _failed(append_update(sealed, objects), kit)
    assert f"signature field {n + 2} is not in the form's /Fields" in failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_a_later_signature_dictionary_reusing_the_signed_byte_range_is_not_valid(kit, sealed):
    """Signature wrapping: a /Sig written after the seal points its /ByteRange at the seal's hole, so the
    seal's CMS would verify a second time for a field that was never signed."""
    doc = pymupdf.open(stream=sealed, filetype="pdf")
    form = int(doc.xref_get_key(doc.pdf_catalog(), "AcroForm")[1].split()[0])
    form_text = doc.xref_object(form, compressed=True)
    sig = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") == ("name", "/Sig"))
    doc.close()
    start = object_offset(sealed, sig)
    sig_body = sealed[sealed.index(b"obj", start) + 3:sealed.index(b"endobj", start)].strip()
    n = next_free_number(sealed)
    fields = form_text[form_text.index("/Fields[") + 8:form_text.index("]", form_text.index("/Fields["))]
    objects = {n: sig_body, n + 1: b"<</FT/Sig/T(Copy)/V %d 0 R>>" % n,
               form: form_text.replace(f"/Fields[{fields}]", f"/Fields[{fields} {n + 1} 0 R]").encode()}
    result = verify_pdf(append_update(sealed, objects), "wrapped.pdf", kit.trust)
    assert result.verdict == "not_valid"
    copy = next(s for s in result.signatures if s.location == "Copy")
    assert [c.reason for c in copy.checks if not c.ok] == [
        f"the signed /Contents hole is not inside signature object {n} of the signed revision (signature wrapping)"]


def test_a_later_signature_widget_with_a_script_is_not_valid(kit, sealed):
    """A new signature field (listed in the form, with its own /Sig) whose widget runs JavaScript when
    the page opens: scripts can change what is shown, so they are a modification, not a signature."""
    doc = pymupdf.open(stream=sealed, filetype="pdf")
    form = int(doc.xref_get_key(doc.pdf_catalog(), "AcroForm")[1].split()[0])
    form_text = doc.xref_object(form, compressed=True)
    page_num, page_text = page_object(sealed)
    annots = doc.xref_get_key(page_num, "Annots")[1]
    doc.close()
    n = next_free_number(sealed)
    fields = form_text[form_text.index("/Fields[") + 8:form_text.index("]", form_text.index("/Fields["))]
    objects = {
        n: b"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/adbe.pkcs7.detached/ByteRange[0 1 2 3]/Contents<00>>>",
        n + 1: b"<</Type/Annot/Subtype/Widget/FT/Sig/T(Later)/V %d 0 R/Rect[0 0 0 0]/P %d 0 R"
               b"/AA<</PO<</S/JavaScript/JS(this.getField('x').value='FORGED')>>>>>>" % (n, page_num),
        form: form_text.replace(f"/Fields[{fields}]", f"/Fields[{fields} {n + 1} 0 R]").encode(),
        page_num: page_text.replace(f"/Annots{annots}", f"/Annots{annots[:-1]} {n + 1} 0 R]").encode(),
    }
    failed = _failed(append_update(sealed, objects), kit)
    assert f"a later signature brings active content: JavaScript action (object {n + 1})" in \
        failed["later_changes"]


# --- shadow attacks prepared before sealing -------------------------------------------------------

def test_defining_an_object_the_signed_page_already_referred_to_is_not_valid(kit, sample_pdf):
    """The signed page lists annotation 99, which does not exist (nothing drawn); a later update
    defines it — through the DSS, which is otherwise allowed."""
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    doc.xref_set_key(doc.page_xref(0), "Annots", "[99 0 R]")
    prepared = doc.tobytes()
    doc.close()
    sealed = stamp_pdf(prepared, kit.seal_der, kit.signer, ANCHOR)
    assert verify_pdf(sealed, "s.pdf", kit.trust).verdict == "valid"
    doc = pymupdf.open(stream=sealed, filetype="pdf")
    catalog = doc.xref_object(doc.pdf_catalog(), compressed=True)
    doc.close()
    annot = b"<</Type/Annot/Subtype/FreeText/Rect[80 500 400 600]/Contents(FORGED)/DA(/Helv 24 Tf 0 g)/F 4>>"
    forged = append_update(sealed, {99: annot, 1: catalog[:-2].encode() + b"/DSS<</Certs[99 0 R]>>>>"})
    failed = _failed(forged, kit)
    assert "object 99 is referenced by object(s) [4] of the signed revision, where it did not exist" in \
        failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


def test_metadata_that_is_also_page_content_may_not_change(kit, sample_pdf):
    """One stream is both the XMP metadata (which may change) and part of the page (which may not)."""
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    shadow = doc.get_new_xref()
    doc.update_object(shadow, "<</Type/Metadata/Subtype/XML>>")
    doc.update_stream(shadow, b" ")
    doc.xref_set_key(doc.pdf_catalog(), "Metadata", f"{shadow} 0 R")
    doc.xref_set_key(doc.page_xref(0), "Contents", f"[5 0 R 6 0 R 10 0 R {shadow} 0 R]")
    prepared = doc.tobytes()
    doc.close()
    sealed = stamp_pdf(prepared, kit.seal_der, kit.signer, ANCHOR)
    assert verify_pdf(sealed, "s.pdf", kit.trust).verdict == "valid"
    box = b"1 1 1 rg 50 500 500 300 re f"
    forged = append_update(sealed, {shadow: b"<</Type/Metadata/Subtype/XML/Length %d>>stream\n%s\nendstream"
                                    % (len(box), box)})
    failed = _failed(forged, kit)
    assert f"object {shadow} (/Metadata /XML): stream changed" in failed["later_changes"]
    assert "page 1 differs" in failed["rendering"]


# --- active content and certification ---------------------------------------------------------------

def _with_catalog_key(data: bytes, key: str, value: str, **save) -> bytes:
    doc = pymupdf.open(stream=data, filetype="pdf")
    doc.xref_set_key(doc.pdf_catalog(), key, value)
    out = doc.tobytes(**save)
    doc.close()
    return out


@pytest.mark.parametrize("action, found", [
    ("<</S/JavaScript/JS(app.alert(1))>>", "JavaScript action"),
    ("<</S/Launch/F(calc.exe)>>", "Launch action"),
    ("<</S/SubmitForm/F(https://example.invalid/x)>>", "SubmitForm action"),
    ("<</S/ImportData/F(data.fdf)>>", "ImportData action"),
])
def test_stamping_refuses_an_open_action(kit, sample_pdf, action, found):
    pdf = _with_catalog_key(sample_pdf, "OpenAction", action)
    with pytest.raises(PdfError, match=found):
        stamp_pdf(pdf, kit.seal_der, kit.signer, ANCHOR, path="js.pdf")


def test_stamping_refuses_javascript_hidden_in_an_object_stream(kit, sample_pdf):
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    action = doc.get_new_xref()
    doc.update_object(action, "<</S/JavaScript/JS(app.alert(1))>>")
    doc.xref_set_key(doc.pdf_catalog(), "OpenAction", f"{action} 0 R")
    pdf = doc.tobytes(use_objstms=1, deflate=True)
    doc.close()
    assert b"/JavaScript" not in pdf  # only inside a compressed object stream
    with pytest.raises(PdfError, match="JavaScript action"):
        stamp_pdf(pdf, kit.seal_der, kit.signer, ANCHOR, path="js.pdf")


def test_stamping_refuses_a_javascript_name_written_with_escapes(kit, sample_pdf):
    pdf = _with_catalog_key(sample_pdf, "OpenAction", "<</S/JavaScript/JS(app.alert(1))>>")
    # same length, so every cross-reference offset stays right
    pdf = pdf.replace(b"/S/JavaScript/JS(app.alert\\(1\\))", b"/S/J#61vaScript/J#53(alert\\(1\\))")
    assert b"/JavaScript" not in pdf and b"/JS" not in pdf
    with pytest.raises(PdfError, match="JavaScript action"):
        stamp_pdf(pdf, kit.seal_der, kit.signer, ANCHOR, path="js.pdf")


def test_stamping_refuses_xfa_names_tree_javascript_and_executables(kit, sample_pdf):
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    doc.embfile_add("run.exe", b"MZ\x90\x00 not really", filename="run.exe")
    with_exe = doc.tobytes()
    doc.close()
    with pytest.raises(PdfError, match="embedded executable"):
        stamp_pdf(with_exe, kit.seal_der, kit.signer, ANCHOR, path="exe.pdf")
    xfa = _with_catalog_key(sample_pdf, "AcroForm", "<</Fields[]/XFA(<xdp/>)>>")
    with pytest.raises(PdfError, match="XFA form"):
        stamp_pdf(xfa, kit.seal_der, kit.signer, ANCHOR, path="xfa.pdf")
    js = _with_catalog_key(sample_pdf, "Names", "<</JavaScript<</Names[(a)<</S/JavaScript/JS(x)>>]>>>>")
    with pytest.raises(PdfError, match="JavaScript names tree"):
        stamp_pdf(js, kit.seal_der, kit.signer, ANCHOR, path="js.pdf")


def test_text_that_mentions_javascript_is_no_finding(kit, sample_pdf):
    doc = pymupdf.open(stream=sample_pdf, filetype="pdf")
    doc.set_metadata({"title": "/JS /S /JavaScript notes"})
    pdf = doc.tobytes()
    doc.close()
    assert verify_pdf(stamp_pdf(pdf, kit.seal_der, kit.signer, ANCHOR), "t.pdf", kit.trust).verdict == "valid"


def test_verify_reports_javascript_signed_by_another_program(kit, sample_pdf, monkeypatch):
    """A file some other signer sealed with JavaScript inside: the seal is intact, the verdict is a warning."""
    import stamping.pdf.sign as sign

    monkeypatch.setattr(sign, "active_content", lambda doc, data: [])
    pdf = _with_catalog_key(sample_pdf, "OpenAction", "<</S/JavaScript/JS(app.alert(1))>>")
    result = verify_pdf(stamp_pdf(pdf, kit.seal_der, kit.signer, ANCHOR), "js.pdf", kit.trust)
    assert result.verdict == "valid_with_warnings" and all(s.valid for s in result.signatures)
    assert any(w.startswith("active content: JavaScript action (object") for w in result.warnings)


def test_an_open_action_added_after_sealing_is_not_valid(kit, sealed):
    n = next_free_number(sealed)
    doc = pymupdf.open(stream=sealed, filetype="pdf")
    catalog = doc.xref_object(doc.pdf_catalog(), compressed=True)
    doc.close()
    forged = append_update(sealed, {n: b"<</S/JavaScript/JS(app.alert(1))>>",
                                     1: catalog[:-2].encode() + b"/OpenAction %d 0 R>>" % n})
    failed = _failed(forged, kit)
    assert "object 1 (catalog): /OpenAction changed" in failed["later_changes"]


def _certified(sample: bytes, p: int) -> bytes:
    """A DocMDP certification as another program writes it (the signature value is not checked here)."""
    doc = pymupdf.open(stream=sample, filetype="pdf")
    sig = doc.get_new_xref()
    doc.update_object(sig, f"<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/adbe.pkcs7.detached/Reference[<</Type/SigRef"
                           f"/TransformMethod/DocMDP/TransformParams<</Type/TransformParams/P {p}/V/1.2>>>>]>>")
    doc.xref_set_key(doc.pdf_catalog(), "Perms", f"<</DocMDP {sig} 0 R>>")
    out = doc.tobytes()
    doc.close()
    return out


def test_stamping_refuses_a_document_certified_with_no_changes_allowed(kit, sample_pdf):
    with pytest.raises(PdfError, match=r"certified with DocMDP /P 1 \(no changes allowed"):
        stamp_pdf(_certified(sample_pdf, 1), kit.seal_der, kit.signer, ANCHOR, path="cert.pdf")


@pytest.mark.parametrize("p", [2, 3])
def test_a_document_certified_for_form_filling_and_signatures_is_stamped(kit, sample_pdf, p):
    out = stamp_pdf(_certified(sample_pdf, p), kit.seal_der, kit.signer, ANCHOR, path="cert.pdf")
    assert verify_pdf(out, "cert.pdf", kit.trust).verdict == "valid"


# --- what stays allowed ------------------------------------------------------------------------------

def test_every_earlier_seal_keeps_verifying_after_more_seals(kit, any_sample_pdf):
    one = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    two = stamp_pdf(one, kit.seal_der, kit.signer, Placement(page=0, x_mm=50, y_mm=60))
    three = stamp_pdf(two, kit.seal_der, kit.signer, Placement(page=0, x_mm=150, y_mm=60))
    result = verify_pdf(three, "three.pdf", kit.trust)
    assert [s.verdict for s in result.signatures] == ["valid"] * 3
    assert result.verdict == "valid_with_warnings" and len(result.warnings) == 2
    for sig in result.signatures[:2]:
        checks = {c.name: (c.ok, c.reason) for c in sig.checks}
        assert checks["later_changes"][0] and checks["later_changes"][1].startswith("later updates only add "
                                                                                    "signatures")
        assert checks["rendering"][0]


def test_validation_data_added_by_pyhanko_is_allowed(kit, sealed):
    """DSS (long-term validation data) as pyHanko appends it is not a modification."""
    import io

    from pyhanko.sign.validation.dss import DocumentSecurityStore

    out = io.BytesIO(sealed)
    DocumentSecurityStore.add_dss(out, sig_contents=None, certs=[_asn1_cert(kit.signer.certificate)])
    result = verify_pdf(out.getvalue(), "dss.pdf", kit.trust)
    sig = result.signatures[0]
    assert result.verdict == "valid_with_warnings", result.to_json()
    assert [c.reason for c in sig.checks if c.name == "later_changes"] == [
        "later updates only add signatures (fields: none) and DSS data"]


def _asn1_cert(der: bytes):
    from asn1crypto import x509

    return x509.Certificate.load(der)



def _other_signer():
    """pyHanko with an ad-hoc ECDSA certificate: another program's signer."""
    import datetime as dt

    from asn1crypto import keys as akeys
    from asn1crypto import x509 as ax509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return signers.SimpleSigner(signing_cert=ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
                                signing_key=akeys.PrivateKeyInfo.load(der_key),
                                cert_registry=SimpleCertificateStore())


def test_a_signature_added_by_another_program_keeps_the_seal_valid(kit, any_sample_pdf):
    """pyHanko signs after our seal (new field, visible widget, its own xref kind and /Info update):
    our seal stays valid, with the warning that it covers an earlier revision."""
    import io

    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    sealed = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(sealed)),
                           signers.PdfSignatureMetadata(field_name="Other"), signer=_other_signer(),
                           new_field_spec=fields.SigFieldSpec("Other", box=(300, 100, 450, 160)))
    result = verify_pdf(out.getvalue(), "two.pdf", kit.trust)
    ours = result.signatures[0]
    assert ours.verdict == "valid", [(c.name, c.reason) for c in ours.checks if not c.ok]
    assert {c.name for c in ours.checks} >= {"later_changes", "rendering"}
    assert result.warnings == [f"signature {ours.location}: signed an earlier revision; later updates only add "
                               "further signatures"]
