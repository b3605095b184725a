"""验章 of OFD documents: every signature of every document body, ours or another vendor's.

Per signature (Signatures.xml entry):
- ``references``: every Reference's SM3 digest over the member's bytes; a failure names the member;
- ``coverage``: the References must cover the document root, every page content and every
  template page of the document as it is now — otherwise the page content could have been swapped without touching
  a signed byte. Other members that are not covered are reported in the reason but do not fail:
  anything added later can only change what is shown by changing a covered part (Document.xml,
  a page, a resource list), which the digests catch; and later seals' own files and
  Signatures.xml are necessarily uncovered by earlier seals.
- ``signed_value``: SignedValue.dat parses as an SES_Signature (V1, V4 or V5);
- the SES checks from :func:`stamping.verify.seal_checks.check_ses_signature` (dataHash =
  SM3(Signature.xml), the signer's and the maker's signatures, certList, validity, chains, status);
- ``property_info``: the SES propertyInfo names this Signature.xml;
- ``seal_esl``: Seal.esl, when present, equals the SESeal inside TBS_Sign byte for byte;
- ``stamp_annot``: each StampAnnot points at a page of the document;
- ``timestamp`` / ``signing_time`` / ``use_recorded``: the SES_Signature's timeStamp token and the
  audit log (:mod:`stamping.verify.signing_time`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from stamping.gm.sm3 import sm3
from stamping.ofd.document import read_document
from stamping.ofd.ofd_xml import read_doc_bodies
from stamping.ofd.package import OfdError, OfdPackage, folder_of
from stamping.ofd.signature import SM3_NAMES, SignatureInfo, read_signature
from stamping.ofd.signatures import SignatureEntry, read_signatures
from stamping.pki.trust import TrustStore
from stamping.ses.codec import SesFormatError, parse_signature
from stamping.verify.result import DocumentResult, SealStatusLookup, SignatureResult, SignatureUseLookup
from stamping.verify.seal_checks import check_ses_signature
from stamping.verify.trust_cache import cached

_DT_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S.%f",
               "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")


def parse_signature_datetime(value: str) -> datetime | None:
    """SignatureDateTime as producers write it: 20201010151120, 20201004072855.302Z,
    2020-04-22 16:22:44, ISO 8601 with or without zone. Naive times are taken as UTC."""
    v = (value or "").strip()
    if not v:
        return None
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        dt = None
        core = v[:-1] if v.endswith("Z") else v
        for fmt in _DT_FORMATS:
            try:
                dt = datetime.strptime(core, fmt)
                break
            except ValueError:
                continue
        if dt is None:
            return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _check_references(pkg: OfdPackage, sig: SignatureInfo, result: SignatureResult) -> set[str]:
    covered: set[str] = set()
    if sig.check_method not in SM3_NAMES:
        result.add("references", False, f"unsupported CheckMethod {sig.check_method!r}")
        return covered
    if not sig.references:
        result.add("references", False, "Signature.xml has no References")
        return covered
    bad: list[str] = []
    for ref in sig.references:
        if ref.member not in pkg:
            bad.append(f"{ref.file_ref} (missing from the package)")
            continue
        covered.add(ref.member)
        try:
            expected = base64.b64decode("".join(ref.check_value.split()), validate=True)
        except (binascii.Error, ValueError):
            bad.append(f"{ref.file_ref} (CheckValue is not base64)")
            continue
        if sm3(pkg.read(ref.member)) != expected:
            bad.append(f"{ref.file_ref} (digest mismatch)")
    if bad:
        result.add("references", False, "modified or missing: " + ", ".join(bad))
    else:
        result.add("references", True, f"{len(sig.references)} references match")
    return covered


def _check_coverage(pkg: OfdPackage, doc_member: str, page_members: list[str], covered: set[str],
                    own_files: set[str], result: SignatureResult) -> None:
    must = [doc_member, *page_members]
    missing = [m for m in must if m not in covered]
    extra = sorted(n for n in pkg.names() if n not in covered and n not in own_files)
    if missing:
        result.add("coverage", False, "not covered by the signature: " + ", ".join("/" + m for m in missing))
    elif extra:
        result.add("coverage", True, "covered; added after signing (not covered): "
                   + ", ".join("/" + m for m in extra[:20]) + (" …" if len(extra) > 20 else ""))
    else:
        result.add("coverage", True, "every part of the package is covered")


def _verify_one(pkg: OfdPackage, entry: SignatureEntry, doc_member: str, page_ids: dict[str, str] | None,
                must_cover: list[str], later_files: set[str], trust: TrustStore | None,
                status_lookup: SealStatusLookup | None, use_lookup: SignatureUseLookup | None = None
                ) -> SignatureResult:
    result = SignatureResult(location="/" + entry.member)
    if entry.member not in pkg:
        result.add("signature_xml", False, f"missing part /{entry.member}")
        return result
    try:
        sig = read_signature(pkg, entry.member)
    except OfdError as exc:
        result.add("signature_xml", False, exc.reason)
        return result
    dt = parse_signature_datetime(sig.signature_datetime)
    result.signed_at = dt.isoformat() if dt else (sig.signature_datetime or None)
    covered = _check_references(pkg, sig, result)
    _check_coverage(pkg, doc_member, must_cover, covered, later_files, result)
    for annot in sig.stamp_annots if page_ids is not None else ():
        if annot.page_ref not in page_ids:
            result.add("stamp_annot", False, f"StampAnnot {annot.id} points at page {annot.page_ref!r}, "
                       "which is not in the document")
            break
    if entry.type.lower() != "seal":
        result.add("signed_value", False, f"signature Type={entry.type} (GB/T 35275 SignedData) is not supported")
        return result
    if sig.signed_value_member not in pkg:
        result.add("signed_value", False, f"missing part /{sig.signed_value_member}")
        return result
    try:
        ses = parse_signature(pkg.read(sig.signed_value_member))
    except (SesFormatError, ValueError) as exc:
        result.add("signed_value", False, f"/{sig.signed_value_member}: not an SES_Signature: {exc}")
        return result
    except OfdError as exc:
        result.add("signed_value", False, exc.reason)
        return result
    result.add("signed_value", True, f"SES_Signature version {ses.version}")
    if isinstance(ses.time_info, datetime):
        result.signed_at = None  # the signed timeInfo beats SignatureDateTime; the checks fill it in
    check_ses_signature(result, ses, sm3(pkg.read(entry.member)), trust, status_lookup, use_lookup)
    expected_loc = "/" + entry.member
    prop = (ses.property_info or "").strip()
    try:
        same = prop == expected_loc or pkg.resolve(prop) == entry.member
    except OfdError:
        same = False
    result.add("property_info", same,
               f"propertyInfo {prop!r}" + ("" if same else f" does not name {expected_loc}"))
    if sig.seal_member:
        if sig.seal_member not in pkg:
            result.add("seal_esl", False, f"missing part /{sig.seal_member}")
        else:
            equal = pkg.read(sig.seal_member) == ses.seal_der
            result.add("seal_esl", equal, f"/{sig.seal_member} " + (
                "equals the seal inside the signature" if equal else "differs from the seal inside the signature"))
    return result


def verify_ofd(data: bytes, path: str, trust: TrustStore | None,
               status_lookup: SealStatusLookup | None = None, *,
               use_lookup: SignatureUseLookup | None = None) -> DocumentResult:
    """Verify every seal in an OFD package. Never raises for bad input: the reason goes in
    ``error`` (unreadable package) or in the failing checks (a broken signature)."""
    result = DocumentResult(path=path, format="ofd")
    trust = cached(trust)
    doc_error: str | None = None
    try:
        pkg = OfdPackage(data, path)
        for body in read_doc_bodies(pkg):
            if not body.signatures:
                continue
            if body.signatures not in pkg:
                raise OfdError(path, f"missing part /{body.signatures} (declared in OFD.xml)")
            # A broken Document.xml must not hide which signed part was changed: the signatures
            # are still checked (their References name the member), and the document fails.
            page_ids: dict[str, str] | None = None
            must_cover: list[str] = []
            try:
                doc = read_document(pkg, body.doc_root)
                page_ids = {p.id: p.member for p in doc.pages}
                must_cover = [*page_ids.values(), *doc.templates.values()]
            except OfdError as exc:
                doc_error = doc_error or exc.reason
            sig_list = read_signatures(pkg, body.signatures)
            all_sign_dirs = [folder_of(e.member) for e in sig_list.entries]
            for k, entry in enumerate(sig_list.entries):
                later = {body.signatures}
                for d in all_sign_dirs[k:]:
                    later.update(n for n in pkg.names() if folder_of(n) == d)
                result.signatures.append(
                    _verify_one(pkg, entry, body.doc_root, page_ids, must_cover, later, trust, status_lookup,
                                use_lookup))
    except OfdError as exc:
        result.error = exc.reason
        return result
    if doc_error:
        result.error = doc_error
    elif not result.signatures:
        result.error = "no signatures: the document is not sealed"
    return result
