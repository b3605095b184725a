"""验章 of sealed PDFs: every signature field, its byte range, CMS, SM2 signature and seal.

A light reader (PyMuPDF's object access plus the raw bytes), not a full pyHanko validation, so a
batch verifies hundreds of files per second. Per signature the checks are:

- ``byte_range``: /ByteRange covers the whole file but the /Contents hole, or a complete earlier
  revision (the file then continues with later incremental updates); the hole is the /Contents of
  this very signature dictionary, a plain object of the signed revision (signature wrapping);
- only when updates follow the signed revision (never for SealFlow's single seals, so a batch pays
  nothing): ``later_changes`` — every later update is classified (``revisions.py``): only further
  signatures and DSS data are allowed, anything else is "document modified after sealing: …" naming
  the objects; ``rendering`` — the pages of the signed revision and of the whole file are rendered
  and compared outside the later signatures' widgets (``rendering.py``). Two independent lines: each
  alone makes the signature not valid. Updates that only add signatures leave the signature valid
  and add a file-level warning (valid_with_warnings: the reader shows more than this seal covers);
- ``cms``, ``algorithms``, ``data_hash`` (messageDigest = SM3 of the byte range),
  ``content_type``, ``signer_signature`` (SM2 over DER(signedAttrs), user id 1234567812345678);
- the seal carried in the CMS (``stamping.pdf.cms.SESEAL_ATTR_OID``): C's ``check_seal``
  (maker signature, signer in the certificate list, validity, chains, registry status);
- ``timestamp`` / ``signing_time`` / ``use_recorded``: the signature-time-stamp token (unsigned
  attribute) and the audit log, see :mod:`stamping.verdict.signing_time`.

Active content (JavaScript, Launch, SubmitForm, ImportData, RichMedia, XFA, embedded executables,
``active.py``) is a file-level warning, so the batch, which accepts only ``valid``, fails the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import pymupdf

from gmpki.gm.oids import SM2_SIGN, SM2_WITH_SM3, SM3
from gmpki.gm.sm2 import SM2PublicKey
from gmpki.gm.sm3 import new_sm3
from gmpki.pki.der import display_name
from stamping.pdf.active import active_content, docmdp_permission
from stamping.pdf.cms import CONTAINERS, CmsError, ParsedCms, parse_signed_data
from stamping.pdf.errors import MUPDF_ERRORS, PdfError
from stamping.pdf.reading import open_untrusted
from stamping.pdf.rendering import compare_rendering
from stamping.pdf.revisions import Revisions, analyse_later_updates
from stamping.pdf.sign import MAX_PDF_BYTES
from stamping.verdict.result import DocumentResult, SealStatusLookup, SignatureResult, SignatureUseLookup
from stamping.verdict.signing_time import check_recorded_use, judge_signing_time
from stamping.verdict.trust_cache import cached

if TYPE_CHECKING:
    from gmpki.pki.trust import TrustStore
    from stamping.ses.model import Seal

__all__ = ["verify_pdf"]

_HEX_DIGITS_AND_SPACE = b"0123456789abcdefABCDEF \t\r\n\f\x00"
_EOF_AT_END = re.compile(rb"%%EOF\s*$")
_SUBFILTERS = ("/adbe.pkcs7.detached", "/ETSI.CAdES.detached")
# Keys an incremental update may change in an object that existed when a seal was signed.


@dataclass
class _SigField:
    name: str
    sig_xref: int


def _ref(obj: tuple[str, str]) -> int | None:
    return int(obj[1].split()[0]) if obj[0] == "xref" else None


def _refs(array: tuple[str, str]) -> list[int]:
    return [int(m) for m in re.findall(r"(\d+)\s+\d+\s+R", array[1])] if array[0] == "array" else []


def _literal(doc: pymupdf.Document, xref: int, key: str) -> str:
    kind, value = doc.xref_get_key(xref, key)
    return value if kind == "string" else ""


def _signature_fields(doc: pymupdf.Document) -> list[_SigField]:
    """Signature fields (with a value) reachable from the AcroForm, in document order."""
    root = doc.pdf_catalog()
    form = doc.xref_get_key(root, "AcroForm")
    form_xref = _ref(form)
    fields = doc.xref_get_key(form_xref, "Fields") if form_xref else doc.xref_get_key(root, "AcroForm/Fields")
    if _ref(fields) is not None:
        fields = ("array", doc.xref_object(_ref(fields), compressed=True))
    out: list[_SigField] = []
    seen: set[int] = set()
    stack = [(x, "", "") for x in reversed(_refs(fields))]
    while stack and len(seen) < 10_000:
        xref, parent_name, parent_ft = stack.pop()
        if xref in seen:
            continue
        seen.add(xref)
        part = _literal(doc, xref, "T")
        name = f"{parent_name}.{part}" if parent_name and part else (part or parent_name)
        ft_kind, ft_value = doc.xref_get_key(xref, "FT")
        ft = ft_value if ft_kind == "name" else parent_ft
        value = _ref(doc.xref_get_key(xref, "V"))
        if ft == "/Sig" and value is not None:
            out.append(_SigField(name, value))
            continue
        stack.extend((k, name, ft) for k in reversed(_refs(doc.xref_get_key(xref, "Kids"))))
    unique: dict[int, _SigField] = {}
    for f in out:
        unique.setdefault(f.sig_xref, f)
    return list(unique.values())


class _SigDict:
    """The few keys of a signature dictionary we need. Read from the raw bytes when the object
    is a plain one (MuPDF would parse the whole /Contents hex string, ~0.4 ms), else via MuPDF."""

    _BR = re.compile(rb"/ByteRange\s*\[([\d\s]*)\]")
    _SUB = re.compile(rb"/SubFilter\s*(/[A-Za-z0-9.#_-]+)")
    _M = re.compile(rb"/M\s*\(D:(\d{14})")

    def __init__(self, doc: pymupdf.Document, data: bytes, xref: int) -> None:
        self.byte_range: list[int] | None = None
        self.sub_filter = ""
        self.m: datetime | None = None
        # (start, end) of the plain object in the file; None when it is not stored as a plain object
        self.span: tuple[int, int] | None = None
        raw = _raw_object(doc, data, xref)
        if raw is not None:
            self.span = (raw[1], raw[1] + len(raw[0]))
            raw = raw[0]
        if raw is not None:
            br, sub, m = self._BR.search(raw), self._SUB.search(raw), self._M.search(raw)
            self.byte_range = _ints(br.group(1).decode("ascii")) if br else None
            self.sub_filter = sub.group(1).decode("ascii") if sub else ""
            stamp = m.group(1).decode("ascii") if m else ""
        else:
            kind, value = doc.xref_get_key(xref, "ByteRange")
            self.byte_range = _ints(value.strip("[] ")) if kind == "array" else None
            kind, value = doc.xref_get_key(xref, "SubFilter")
            self.sub_filter = value if kind == "name" else ""
            found = re.match(r"D:(\d{14})", _literal(doc, xref, "M"))
            stamp = found.group(1) if found else ""
        if stamp:
            try:
                self.m = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            except ValueError:
                self.m = None


def _ints(text: str) -> list[int] | None:
    try:
        nums = [int(v) for v in text.split()]
    except ValueError:
        return None
    return nums if len(nums) == 4 else None


def _raw_object(doc: pymupdf.Document, data: bytes, xref: int) -> tuple[bytes, int] | None:
    """Bytes of object ``xref`` ('N G obj' … up to 'endobj') and their offset, when stored uncompressed."""
    try:
        kind, ofs = _entry(doc, xref)
    except (AttributeError, TypeError, *MUPDF_ERRORS):  # pragma: no cover - older PyMuPDF
        return None
    if kind != "n" or not 0 <= ofs < len(data):
        return None
    if not re.match(rb"\s*%d\s+\d+\s+obj" % xref, data[ofs:ofs + 40]):
        return None
    end = data.find(b"endobj", ofs)
    return (data[ofs:end], ofs) if end > 0 else None


def _is_hex_string(data: bytes, start: int, end: int) -> bool:
    """data[start:end] is '<' hex digits (and white space) '>' (translate runs in C, a regex 10× slower)."""
    return (data[start:start + 1] == b"<" and data[end - 1:end] == b">"
            and not data[start + 1:end - 1].translate(None, _HEX_DIGITS_AND_SPACE))


def _check_byte_range(result: SignatureResult, data: bytes, br: list[int] | None) -> tuple[int, int, int] | None:
    """(hole start, hole end, signed end) when the range is well-formed; adds the byte_range check."""
    n = len(data)
    if br is None:
        result.add("byte_range", False, "no /ByteRange of four integers")
        return None
    a0, a1, b0, b1 = br
    end = b0 + b1
    if a0 != 0 or a1 <= 0 or b0 <= a1 + 1 or b1 < 0 or end > n or not _is_hex_string(data, a1, b0):
        result.add("byte_range", False, f"/ByteRange {br} does not frame the /Contents hex string of this file")
        return None
    if end == n:
        result.add("byte_range", True, "covers the whole file except the signature value")
    elif _EOF_AT_END.search(data, max(0, end - 64), end):
        result.add("byte_range", True, f"covers the file up to byte {end}; {n - end} bytes of later "
                   "incremental updates follow")
    else:
        result.add("byte_range", False, f"covers up to byte {end} of {n}, which is not the end of a revision")
        return None
    return a1, b0, end


def _entry(doc: pymupdf.Document, num: int) -> tuple[str, int]:
    e = pymupdf.mupdf.ll_pdf_get_xref_entry_no_null(pymupdf._as_pdf_document(doc).m_internal, num)
    return str(e.type), int(e.ofs)


def _check_later_changes(result: SignatureResult, revisions: Revisions, signed_end: int, sig_xref: int) -> None:
    """Classify every update after the signed revision (``revisions.py``) and compare what the pages show
    (``rendering.py``); either finding makes the signature not valid."""
    doc = revisions.doc
    updates = analyse_later_updates(doc, revisions.data, signed_end, revisions)
    if docmdp_permission(doc) == (1, sig_xref):
        updates.modified("the signature certifies the document with DocMDP /P 1 (no changes allowed) "
                         "but later updates follow")
    if updates.modifications:
        result.add("later_changes", False, "document modified after sealing: " + "; ".join(updates.modifications))
    else:
        added = ", ".join(f"object {n}" for n in updates.new_signature_fields) or "none"
        result.add("later_changes", True, f"later updates only add signatures (fields: {added})"
                   + (" and DSS data" if updates.adds_dss else ""))
    try:
        diffs = compare_rendering(revisions.at(signed_end), doc, updates.new_widget_rects, revisions.pixmaps)
    except MUPDF_ERRORS as exc:
        result.add("rendering", False, f"document modified after sealing: cannot render a revision ({exc})")
        return
    if diffs:
        result.add("rendering", False, "document modified after sealing: "
                   + "; ".join(d.describe() for d in diffs[:10]))
    else:
        result.add("rendering", True, "every page looks as signed (outside later signatures' widgets)")


def _later_signatures_warning(sig: SignatureResult) -> list[str]:
    """The file-level warning for a signature over an earlier revision whose later updates only add
    signatures (valid_with_warnings: the reader shows more seals than this one covers)."""
    later = [c for c in sig.checks if c.name == "later_changes" and c.ok]
    if not later:
        return []
    return [f"signature {sig.location}: signed an earlier revision; later updates only add further signatures"
            + (" and DSS data" if later[0].reason.endswith("DSS data") else "")]


def _check_hole_in_signature(result: SignatureResult, sig: _SigDict, sig_xref: int, hole: tuple[int, int],
                             signed_end: int) -> bool:
    """The /Contents hole must be the value of this very signature dictionary, written in the signed
    revision (signature wrapping moves the ByteRange elsewhere, or defines the dictionary later)."""
    ofs, end = sig.span or (-1, -1)
    if not 0 <= ofs < hole[0] < hole[1] <= end <= signed_end:
        return result.add("byte_range", False, f"the signed /Contents hole is not inside signature object "
                          f"{sig_xref} of the signed revision (signature wrapping)")
    return True


@lru_cache(maxsize=256)
def _public_key(cert_der: bytes) -> SM2PublicKey:
    return SM2PublicKey.from_certificate(cert_der)


def _check_cms(result: SignatureResult, cms_info: ParsedCms, digest: bytes) -> bool:
    algos_ok = cms_info.digest_algorithm == SM3 and cms_info.signature_algorithm in (SM2_WITH_SM3, SM2_SIGN)
    result.add("algorithms", algos_ok, f"digest {cms_info.digest_algorithm}, signature {cms_info.signature_algorithm}")
    result.add("data_hash", cms_info.message_digest == digest,
               "messageDigest = SM3 of the signed byte range" if cms_info.message_digest == digest
               else "messageDigest differs from SM3 of the signed bytes: the file was changed")
    expected = CONTAINERS.get(cms_info.container, (None, None))[1]
    result.add("content_type", cms_info.content_type is not None and cms_info.content_type == expected,
               f"container {cms_info.container}, content type {cms_info.content_type}")
    try:
        key = _public_key(cms_info.signer_cert)
    except (ValueError, TypeError) as exc:
        result.add("signer_signature", False, f"signer certificate has no usable SM2 key: {exc}")
        return False
    ok = key.verify(cms_info.signature, cms_info.signed_attrs_der)
    result.add("signer_signature", ok, "SM2 signature over the signed attributes " + ("valid" if ok else "INVALID"))
    return ok


def _check_seal(result: SignatureResult, cms_info: ParsedCms, seal: Seal | None, signed_at: datetime | None,
                trust: TrustStore | None, status_lookup: SealStatusLookup | None) -> None:
    from stamping.ses.codec import SesFormatError, parse_seal
    from stamping.verdict.seal_checks import check_seal

    if cms_info.seal_der is None:
        result.add("seal", False, "no seal (SESeal) in the signature: a plain digital signature", kind="status")
        _chain_only(result, cms_info, signed_at, trust)
        return
    if seal is None:
        try:
            parse_seal(cms_info.seal_der)
        except SesFormatError as exc:
            result.add("seal", False, f"the embedded SESeal cannot be parsed: {exc}")
        return
    check_seal(result, seal, cms_info.signer_cert, signed_at, trust, status_lookup)


def _chain_only(result: SignatureResult, cms_info: ParsedCms, signed_at: datetime | None,
                trust: TrustStore | None) -> None:
    if trust is None:
        result.add("signer_chain", False, "no trust store given", kind="trust")
        return
    chain = trust.validate(cms_info.signer_cert, signed_at, extra_intermediates=cms_info.certificates)
    result.add("signer_chain", chain.ok, chain.reason, kind="trust")


def _verify_one(revisions: Revisions, field: _SigField, trust: TrustStore | None,
                status_lookup: SealStatusLookup | None, use_lookup: SignatureUseLookup | None = None
                ) -> SignatureResult:
    doc, data = revisions.doc, revisions.data
    result = SignatureResult(location=field.name)
    sig = _SigDict(doc, data, field.sig_xref)
    sub = sig.sub_filter
    if sub not in _SUBFILTERS:
        result.add("sub_filter", False, f"/SubFilter {sub} is not supported (expected /adbe.pkcs7.detached)")
        return result
    frame = _check_byte_range(result, data, sig.byte_range)
    if frame is None:
        return result
    hole_start, hole_end, signed_end = frame
    if not _check_hole_in_signature(result, sig, field.sig_xref, (hole_start, hole_end), signed_end):
        return result
    if signed_end < len(data):
        _check_later_changes(result, revisions, signed_end, field.sig_xref)
    try:
        blob = bytes.fromhex(data[hole_start + 1:hole_end - 1].decode("ascii"))
        cms_info = parse_signed_data(blob)
    except (ValueError, CmsError) as exc:
        result.add("cms", False, f"/Contents is not a CMS SignedData: {exc}")
        return result
    result.add("cms", True, f"CMS SignedData ({cms_info.container})")
    result.signer = display_name(cms_info.signer_cert)
    h = new_sm3()
    with memoryview(data) as view:
        h.update(view[:hole_start])
        h.update(view[hole_end:signed_end])
    digest = h.digest()
    _check_cms(result, cms_info, digest)
    seal = _seal_or_none(cms_info.seal_der)
    # No time at all (neither signingTime nor /M): judged now, as before.
    signed_at = judge_signing_time(result, claimed=cms_info.signing_time or sig.m or datetime.now(UTC),
                                   token=cms_info.time_stamp_token, signature_value=cms_info.signature,
                                   signer_cert=cms_info.signer_cert, seal=seal, trust=trust,
                                   status_lookup=status_lookup)
    result.signed_at = signed_at.isoformat() if signed_at else None
    _check_seal(result, cms_info, seal, signed_at, trust, status_lookup)
    if seal is not None:
        check_recorded_use(result, seal.es_id, cms_info.signature, use_lookup)
    return result


def _seal_or_none(seal_der: bytes | None) -> Seal | None:
    """The seal carried in the CMS, parsed once per signature (the codec memoizes it per process)."""
    from stamping.ses.codec import SesFormatError, parse_seal

    try:
        return parse_seal(seal_der) if seal_der is not None else None
    except SesFormatError:
        return None  # _check_seal reports it


def verify_pdf(data: bytes, path: str, trust: TrustStore | None, status_lookup: SealStatusLookup | None = None,
               *, max_bytes: int = MAX_PDF_BYTES, use_lookup: SignatureUseLookup | None = None) -> DocumentResult:
    """验章 of every signature in a PDF. Never raises for bad input: the reason is in ``error``."""
    result = DocumentResult(path=path, format="pdf")
    trust = cached(trust)  # the process-wide chain memo, as OFD 验章 uses (the chains were a tenth of the time)
    try:
        doc = open_untrusted(data, path, max_bytes)
    except PdfError as exc:
        result.error = exc.reason
        return result
    revisions = Revisions(doc, data)  # each revision opened once for all the signatures over earlier ones
    try:
        fields = _signature_fields(doc)
        if not fields:
            result.error = "no signatures: the document is not sealed"
            return result
        result.warnings.extend(f"active content: {what}" for what in active_content(doc, data))
        for f in fields:
            try:
                result.signatures.append(_verify_one(revisions, f, trust, status_lookup, use_lookup))
                result.warnings.extend(_later_signatures_warning(result.signatures[-1]))
            except MUPDF_ERRORS as exc:  # a damaged object under the signature dictionary
                sig = SignatureResult(location=f.name)
                sig.add("pdf_structure", False, f"unreadable signature objects: {exc}")
                result.signatures.append(sig)
    except MUPDF_ERRORS as exc:
        result.error = f"damaged PDF structure: {exc}"
    finally:
        revisions.close()
        doc.close()
    return result
