import io
import random
import subprocess
from datetime import UTC, datetime

import pymupdf
import pytest

from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.cms import parse_signed_data
from stamping.pdf.errors import PdfError
from stamping.pdf.samples import make_sample_certificate_pdf
from stamping.placement import AnchorNotFound, Placement
from tests.pdf.conftest import FIELDS
from tests.pdf.pyhanko_check import pyhanko_statuses

ANCHOR = Placement.parse("anchor:（盖章）")


def _contents(data: bytes, index: int = -1) -> bytes:
    """The CMS of the index-th signature, found through its /ByteRange like any reader."""
    doc = pymupdf.open(stream=data, filetype="pdf")
    sigs = [x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") == ("name", "/Sig")]
    br = [int(v) for v in doc.xref_get_key(sigs[index], "ByteRange")[1].strip("[]").split()]
    return bytes.fromhex(data[br[1] + 1:br[2] - 1].decode())


def _assert_pyhanko_valid(data: bytes, kit, count: int) -> None:
    statuses = pyhanko_statuses(data, kit.ca.root_der, [kit.ca.intermediate_der])
    assert len(statuses) == count
    for st in statuses:
        assert st.intact and st.valid, st.pretty_print_details()
        assert st.trusted, st.pretty_print_details()


def test_stamp_then_verify(kit, any_sample_pdf):
    out = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    assert out.startswith(any_sample_pdf)  # incremental: the original bytes are untouched
    result = verify_pdf(out, "a.pdf", kit.trust)
    assert result.error is None and len(result.signatures) == 1
    sig = result.signatures[0]
    assert result.valid, [(c.name, c.reason) for c in sig.checks if not c.ok]
    assert sig.es_id and sig.seal_name and sig.signer
    assert {"byte_range", "data_hash", "signer_signature", "maker_signature"} <= {c.name for c in sig.checks}
    # The seal sits on the anchor text.
    doc = pymupdf.open(stream=out, filetype="pdf")
    widget = next(doc[0].widgets())
    anchor = doc[0].search_for("（盖章）")[0]
    assert widget.rect.contains(anchor)


@pytest.mark.parametrize("container", ["pkcs7", "gbt35275"])
def test_pyhanko_accepts_one_and_two_seals(kit, any_sample_pdf, container):
    one = stamp_pdf(any_sample_pdf, kit.seal_der, kit.signer, ANCHOR, container=container)
    _assert_pyhanko_valid(one, kit, 1)
    two = stamp_pdf(one, kit.seal_der, kit.signer, Placement(page=0, x_mm=50, y_mm=60), container=container)
    _assert_pyhanko_valid(two, kit, 2)
    result = verify_pdf(two, "two.pdf", kit.trust)
    # The first seal signed an earlier revision; the update after it only adds the second seal.
    assert result.verdict == "valid_with_warnings" and len(result.signatures) == 2
    assert all(s.valid for s in result.signatures)
    assert result.warnings == [f"signature {result.signatures[0].location}: signed an earlier revision; "
                               "later updates only add further signatures"]
    assert "later incremental updates" in result.signatures[0].checks[0].reason


def _pypdf_copy(src: bytes) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(src)))
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _pyhanko_copy(src: bytes) -> bytes:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    buf = io.BytesIO()
    copy_into_new_writer(PdfFileReader(io.BytesIO(src))).write(buf)
    return buf.getvalue()


def _pyhanko_incremental(src: bytes) -> bytes:
    """A revision added by pyHanko (to an xref-stream file: pyHanko appends an xref stream)."""
    from pyhanko.pdf_utils.generic import TextStringObject
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(src))
    writer.root["/Lang"] = TextStringObject("zh-CN")
    writer.update_root()
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@pytest.mark.parametrize("producer", [_pypdf_copy, _pyhanko_copy, _pyhanko_incremental])
def test_inputs_from_other_producers(kit, producer):
    """Inputs written by pypdf and pyHanko stamp and validate too (pyHanko and our 验章)."""
    src = producer(make_sample_certificate_pdf(FIELDS, "营业执照", xref_stream=producer is _pyhanko_incremental))
    out = stamp_pdf(src, kit.seal_der, kit.signer, ANCHOR)
    assert out.startswith(src)
    _assert_pyhanko_valid(out, kit, 1)
    assert verify_pdf(out, "other.pdf", kit.trust).valid


def test_openssl_verifies_our_sm2_signature(kit, sample_pdf, tmp_path):
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    info = parse_signed_data(_contents(out))
    (tmp_path / "attrs.der").write_bytes(info.signed_attrs_der)
    (tmp_path / "sig.der").write_bytes(info.signature)
    (tmp_path / "cert.der").write_bytes(info.signer_cert)
    pub = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", tmp_path / "cert.der", "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    cmd = ["openssl", "dgst", "-sm3", "-verify", tmp_path / "pub.pem", "-sigopt", "distid:1234567812345678",
           "-signature", tmp_path / "sig.der", tmp_path / "attrs.der"]
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    (tmp_path / "attrs.der").write_bytes(info.signed_attrs_der[:-1] + bytes([info.signed_attrs_der[-1] ^ 1]))
    assert subprocess.run(cmd, capture_output=True).returncode != 0


def test_cms_contents(kit, sample_pdf):
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    for container, data_oid in (("pkcs7", "1.2.840.113549.1.7.1"), ("gbt35275", "1.2.156.10197.6.1.4.2.1")):
        out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR, signed_at=at, container=container)
        info = parse_signed_data(_contents(out))
        assert info.container == container and info.content_type == data_oid
        assert info.digest_algorithm == "1.2.156.10197.1.401"
        assert info.signature_algorithm == "1.2.156.10197.1.501"
        assert info.seal_der == kit.seal_der and info.signing_time == at
        assert info.signer_cert == kit.signer.certificate


def test_any_changed_signed_byte_is_detected(kit, sample_pdf):
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    doc = pymupdf.open(stream=out, filetype="pdf")
    sig = next(x for x in range(1, doc.xref_length()) if doc.xref_get_key(x, "Type") == ("name", "/Sig"))
    br = [int(v) for v in doc.xref_get_key(sig, "ByteRange")[1].strip("[]").split()]
    signed = list(range(0, br[1])) + list(range(br[2], br[2] + br[3]))
    rng = random.Random(20261123)
    positions = [*rng.sample(signed, 60), 0, br[1] - 1, br[2], len(out) - 1]
    for pos in positions:
        bad = bytearray(out)
        bad[pos] ^= 1 << rng.randrange(8)
        result = verify_pdf(bytes(bad), "t.pdf", kit.trust)
        assert not result.intact, f"change at byte {pos} not detected"


def test_change_after_signing_is_reported(kit, sample_pdf, tmp_path):
    """An incremental update that rewrites page content (not just adds a seal) is flagged."""
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    path = tmp_path / "forged.pdf"
    path.write_bytes(out)
    doc = pymupdf.open(path)  # PyMuPDF writes incremental updates to files only
    doc[0].insert_text((100, 100), "forged", fontsize=20)
    doc.saveIncr()
    doc.close()
    buf = path.read_bytes()
    assert buf.startswith(out)
    result = verify_pdf(buf, "forged.pdf", kit.trust)
    assert not result.intact
    failed = {c.name: c.reason for c in result.signatures[0].checks if not c.ok}
    assert set(failed) == {"later_changes", "rendering"}  # two independent lines both see it
    assert failed["later_changes"].startswith("document modified after sealing: ")
    assert "page 1 differs in the region" in failed["rendering"]


def test_anchor_not_found_names_file_and_text(kit, sample_pdf):
    with pytest.raises(AnchorNotFound) as err:
        stamp_pdf(sample_pdf, kit.seal_der, kit.signer, Placement.parse("anchor:不存在的字"), path="x/cert.pdf")
    assert "x/cert.pdf" in str(err.value) and "不存在的字" in str(err.value)


def test_anchor_offset_and_fixed_position(kit, sample_pdf):
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, Placement.parse("anchor:发证机关,dx=30,dy=-10"))
    doc = pymupdf.open(stream=out, filetype="pdf")
    hit = doc[0].search_for("发证机关")[0]
    rect = next(doc[0].widgets()).rect
    mm = 72 / 25.4
    assert abs(rect.x0 + rect.width / 2 - ((hit.x0 + hit.x1) / 2 + 30 * mm)) < 0.5
    assert abs(rect.y0 + rect.height / 2 - ((hit.y0 + hit.y1) / 2 - 10 * mm)) < 0.5
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, Placement(page=-1, x_mm=105, y_mm=148.5))
    rect = next(pymupdf.open(stream=out, filetype="pdf")[0].widgets()).rect
    assert abs(rect.x0 + rect.width / 2 - 105 * mm) < 0.5 and abs(rect.y0 + rect.height / 2 - 148.5 * mm) < 0.5


def test_cross_page_seal(kit):
    src = make_sample_certificate_pdf(FIELDS, "营业执照", pages=3)
    out = stamp_pdf(src, kit.seal_der, kit.signer, Placement.parse("cross,y=150"))
    doc = pymupdf.open(stream=out, filetype="pdf")
    rects = [[w.rect for w in page.widgets()] for page in doc]
    assert all(len(r) == 1 for r in rects)
    for page, (rect,) in zip(doc, rects, strict=True):
        assert abs(rect.x1 - page.rect.width) < 0.01  # the slice sits at the right edge
    assert len({w.field_name for page in doc for w in page.widgets()}) == 1  # one seal, one signature
    result = verify_pdf(out, "multi.pdf", kit.trust)
    assert result.valid and len(result.signatures) == 1
    _assert_pyhanko_valid(out, kit, 1)


def test_page_out_of_range(kit, sample_pdf):
    with pytest.raises(PdfError, match="out of range"):
        stamp_pdf(sample_pdf, kit.seal_der, kit.signer, Placement(page=3, x_mm=10, y_mm=10))


def _encrypted(sample: bytes) -> bytes:
    doc = pymupdf.open(stream=sample, filetype="pdf")
    return doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")


@pytest.mark.parametrize("case", ["encrypted", "truncated", "not_pdf", "huge", "empty", "garbage_xref"])
def test_hostile_inputs(kit, sample_pdf, case):
    data, limit = {
        "encrypted": (_encrypted(sample_pdf), None),
        "truncated": (sample_pdf[: len(sample_pdf) * 2 // 3], None),
        "not_pdf": (b"PK\x03\x04 this is a zip, not a PDF" * 10, None),
        "huge": (sample_pdf + b"\n%" + b"x" * 5000, 4096),
        "empty": (b"", None),
        "garbage_xref": (sample_pdf.replace(b"startxref", b"startxreX"), None),
    }[case]
    kwargs = {"max_bytes": limit} if limit else {}
    with pytest.raises(PdfError) as err:
        stamp_pdf(data, kit.seal_der, kit.signer, ANCHOR, path=f"in/{case}.pdf", **kwargs)
    assert err.value.path == f"in/{case}.pdf" and err.value.reason
    result = verify_pdf(data, f"in/{case}.pdf", kit.trust, **kwargs)
    assert not result.intact and (result.error or not result.signatures)


def test_untrusted_root_is_intact_but_not_trusted(kit, sample_pdf, tmp_path):
    from gmpki.pki.ca import DemoCA
    from gmpki.pki.trust import TrustStore

    other = DemoCA.create(tmp_path / "other", name="Other CA")
    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    result = verify_pdf(out, "a.pdf", TrustStore([other.root_der]))
    assert result.intact and not result.trusted


def test_rotated_page_anchor(kit):
    doc = pymupdf.open()
    page = doc.new_page()
    page.set_rotation(90)
    page.insert_text((100, 400), "发证机关：某某局（盖章）", fontname="china-s", fontsize=14, rotate=90)
    src = doc.tobytes()
    out = stamp_pdf(src, kit.seal_der, kit.signer, ANCHOR)
    stamped = pymupdf.open(stream=out, filetype="pdf")[0]
    widget = next(stamped.widgets())
    anchor = stamped.search_for("（盖章）")[0]  # unrotated coordinates, like widget rects
    assert widget.rect.contains(anchor)
    assert verify_pdf(out, "rot.pdf", kit.trust).valid


def test_registry_status_is_checked(kit, sample_pdf):
    from stamping.verdict.result import SealStatus

    out = stamp_pdf(sample_pdf, kit.seal_der, kit.signer, ANCHOR)
    seen = []

    def revoked(es_id, at):
        seen.append(es_id)
        return SealStatus.REVOKED

    result = verify_pdf(out, "a.pdf", kit.trust, revoked)
    assert seen and result.intact and not result.valid
    assert any(c.name == "seal_status" and not c.ok for c in result.signatures[0].checks)
    assert result.signatures[0].seal_picture_png  # shown in the HTML report
    assert verify_pdf(out, "a.pdf", kit.trust, lambda es_id, at: SealStatus.ACTIVE).valid


def test_signer_must_be_in_the_seal_cert_list(kit, sample_pdf):
    from gmpki.keys.signer import SoftwareSigner
    from stamping.ses.make import SealBindingError

    key, cert = kit.ca.issue_unit_signer("另一个单位", "91450100MA5L000001")
    with pytest.raises(SealBindingError):
        stamp_pdf(sample_pdf, kit.seal_der, SoftwareSigner(key, cert), ANCHOR)


def test_three_seals_verify_with_each_revision_opened_once(kit, sample_pdf, monkeypatch):
    """A seal over an earlier revision needs the revision it signed and each one after it. They are opened
    once per file, not once per signature (that was 6 opens for three seals, growing with their square)."""
    data = sample_pdf
    for x in (40, 90, 140):
        data = stamp_pdf(data, kit.seal_der, kit.signer, Placement(page=0, x_mm=x, y_mm=60))
    opened: list[int] = []
    real_open = pymupdf.open

    def counting_open(*args, **kwargs):
        opened.append(len(kwargs.get("stream") or b""))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(pymupdf, "open", counting_open)
    result = verify_pdf(data, "three.pdf", kit.trust)
    assert result.verdict == "valid_with_warnings" and len(result.signatures) == 3
    later = [c for s in result.signatures for c in s.checks if c.name in ("later_changes", "rendering")]
    assert len(later) == 4 and all(c.ok for c in later)  # the first two seals: updates and pages checked
    assert len(opened) == 3 == len(set(opened))  # the file and its two earlier revisions, once each
