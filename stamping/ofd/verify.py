"""验章 of OFD documents: every signature of every document body, ours or another vendor's.

Per signature (Signatures.xml entry):
- ``references``: every Reference's SM3 digest over the member's bytes; a failure names the member;
- ``coverage``: judged on what a reader displays (:mod:`stamping.ofd.coverage`): ``OFD.xml``, the
  ``Document.xml`` of the FIRST DocBody (the one readers open, whichever DocBody lists the
  signature) and every page's content must be covered, else the document shown is not the one
  signed (``not_valid``). A seal's own files and later seals' (Signature.xml, SignedValue.dat,
  Seal.esl) and Signatures.xml are necessarily uncovered and are not counted;
- ``drawn_parts`` (kind ``warning``): templates, resources, images, fonts, annotations and
  attachments the displayed document draws that are not covered → ``valid_with_warnings`` naming
  them. Other uncovered members (drawn by nothing) are named in the coverage reason only.
- ``signed_value``: SignedValue.dat parses as an SES_Signature (V1, V4 or V5) for Type=Seal, or as a
  GB/T 35275 SignedData for Type=Sign (digital signatures without a seal, checked by
  :mod:`stamping.ofd.digital_signature`; the SES checks below do not apply to them);
- the SES checks from :func:`stamping.verdict.seal_checks.check_ses_signature` (dataHash =
  SM3(Signature.xml), the signer's and the maker's signatures, certList, validity, chains, status);
- ``property_info``: the SES propertyInfo names this Signature.xml;
- ``seal_esl``: Seal.esl, when present, equals the SESeal inside TBS_Sign byte for byte;
- ``stamp_annot``: each StampAnnot points at a page of the document;
- ``timestamp`` / ``signing_time`` / ``use_recorded``: the SES_Signature's timeStamp token and the
  audit log (:mod:`stamping.verdict.signing_time`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from functools import lru_cache

from gmpki.gm.sm3 import sm3
from gmpki.pki.trust import TrustStore
from stamping.ofd.coverage import Displayed
from stamping.ofd.digital_signature import check_digital_signature
from stamping.ofd.document import read_document
from stamping.ofd.ofd_xml import read_doc_bodies
from stamping.ofd.package import OfdError, OfdPackage
from stamping.ofd.signature import SM3_NAMES, SignatureInfo, read_signature
from stamping.ofd.signatures import SignatureEntry, read_signatures
from stamping.ses.codec import SesFormatError, parse_signature
from stamping.verdict.result import DocumentResult, SealStatusLookup, SignatureResult, SignatureUseLookup
from stamping.verdict.seal_checks import check_ses_signature
from stamping.verdict.trust_cache import cached

_DT_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S.%f",
               "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")


def parse_signature_datetime(value: str) -> datetime | None:
    """SignatureDateTime as producers write it: 20201010151120, 20201004072855.302Z,
    2020-04-22 16:22:44, ISO 8601 with or without zone. Naive times are taken as UTC."""
    v = (value or "").strip()
    if not v:
        return None
    dt = None
    core = v[:-1] if v.endswith("Z") else v
    if len(core) == 14 and core.isascii() and core.isdigit():  # what SealFlow and most producers write
        try:  # exactly what strptime("%Y%m%d%H%M%S") reads from 14 digits, without its regex machinery
            return datetime(int(core[:4]), int(core[4:6]), int(core[6:8]), int(core[8:10]), int(core[10:12]),
                            int(core[12:]), tzinfo=UTC)
        except ValueError:
            pass  # not a valid date: the formats below decide, as before
    # The producers' fixed formats first: Python's fromisoformat reads "20261207101130" as the date
    # 2026-12-07, the separator "1" and the time 01:13:0 — a signing time nine hours off whenever the
    # hour is 10–23, which put honest signatures outside their certificate's validity.
    for fmt in _DT_FORMATS:
        try:
            dt = datetime.strptime(core, fmt)
            break
        except ValueError:
            continue
    if dt is None and ("-" in v[:10] or "T" in v):  # ISO 8601 with a zone: only in its extended form
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def _cached_sm3(data: bytes) -> bytes:
    return sm3(data)


def _digest(data: bytes) -> bytes:
    """SM3 of a referenced member. Large members are looked up by content first: the same Seal.esl
    (tens of KB, the seal picture) comes with every document of a batch, and a dict lookup of those
    bytes costs a tenth of hashing them with SM3 (a hit compares the bytes in full, so it is exact)."""
    return _cached_sm3(data) if len(data) >= 8192 else sm3(data)


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
        if _digest(pkg.read(ref.member)) != expected:
            bad.append(f"{ref.file_ref} (digest mismatch)")
    if bad:
        result.add("references", False, "modified or missing: " + ", ".join(bad))
    else:
        result.add("references", True, f"{len(sig.references)} references match")
    return covered


def _check_coverage(pkg: OfdPackage, displayed: Displayed | None, covered: set[str], later_files: set[str],
                    result: SignatureResult, drawn_cache: dict) -> None:
    if displayed is None:
        result.add("coverage", False, "the displayed document cannot be read, so coverage cannot be judged")
        return
    missing = [m for m in displayed.essential if m not in covered]
    # Later seals' own files (their Signature.xml, SignedValue.dat, Seal.esl) and Signatures.xml are
    # necessarily uncovered by an earlier seal; anything else uncovered is judged by the drawn walk.
    uncovered = sorted(n for n in pkg.names() if n not in covered and n not in later_files)
    drawn: dict[str, str] = {}
    if uncovered:  # only then is the drawn walk needed (once per document): SealFlow's seals cover all
        if "drawn" not in drawn_cache:
            drawn_cache["drawn"] = displayed.drawn(pkg)
        drawn = drawn_cache["drawn"]
    if missing:
        result.add("coverage", False, "what a reader displays is not covered by the signature: "
                   + ", ".join("/" + m for m in missing))
    else:
        idle = [n for n in uncovered if n not in drawn]
        result.add("coverage", True, "OFD.xml, the displayed Document.xml and every page are covered" + (
            "; not covered, drawn by nothing: " + ", ".join("/" + m for m in idle[:20])
            + (" …" if len(idle) > 20 else "") if idle else ""))
    shown = [f"/{m} ({drawn[m]})" for m in uncovered if m in drawn]
    if shown:
        result.add("drawn_parts", False, "parts the document draws are not covered by the signature: "
                   + ", ".join(shown), kind="warning")


def _verify_one(pkg: OfdPackage, entry: SignatureEntry, displayed: Displayed | None,
                page_ids: dict[str, str] | None, later_files: set[str], trust: TrustStore | None,
                status_lookup: SealStatusLookup | None, drawn_cache: dict,
                parsed: SignatureInfo | OfdError | None = None,
                use_lookup: SignatureUseLookup | None = None) -> SignatureResult:
    result = SignatureResult(location="/" + entry.member)
    if entry.member not in pkg:
        result.add("signature_xml", False, f"missing part /{entry.member}")
        return result
    try:
        if isinstance(parsed, OfdError):
            raise parsed
        sig = parsed or read_signature(pkg, entry.member)
    except OfdError as exc:
        result.add("signature_xml", False, exc.reason)
        return result
    dt = parse_signature_datetime(sig.signature_datetime)
    result.signed_at = dt.isoformat() if dt else (sig.signature_datetime or None)
    covered = _check_references(pkg, sig, result)
    _check_coverage(pkg, displayed, covered, later_files, result, drawn_cache)
    for annot in sig.stamp_annots if page_ids is not None else ():
        if annot.page_ref not in page_ids:
            result.add("stamp_annot", False, f"StampAnnot {annot.id} points at page {annot.page_ref!r}, "
                       "which is not in the document")
            break
    if sig.signed_value_member not in pkg:
        result.add("signed_value", False, f"missing part /{sig.signed_value_member}")
        return result
    if entry.type.lower() == "sign":  # 数字签名: GB/T 35275 SignedData, no seal
        check_digital_signature(result, pkg.read(sig.signed_value_member), pkg.read(entry.member), dt, trust)
        return result
    if entry.type.lower() != "seal":
        result.add("signed_value", False, f"unknown signature Type={entry.type!r} (Seal or Sign)")
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


def _parse(pkg: OfdPackage, entry: SignatureEntry) -> SignatureInfo | OfdError | None:
    if entry.member not in pkg:
        return None  # reported by _verify_one
    try:
        return read_signature(pkg, entry.member)
    except OfdError as exc:
        return exc


def _artefacts(entry: SignatureEntry, info: SignatureInfo | OfdError | None) -> set[str]:
    """A signature's own files: its Signature.xml, SignedValue.dat and Seal.esl."""
    if not isinstance(info, SignatureInfo):
        return {entry.member}
    return {entry.member, info.signed_value_member, *([info.seal_member] if info.seal_member else [])}


def _reason(exc: ValueError) -> str:
    """What to tell the reader: an OfdError's reason, else the value that could not be read."""
    return exc.reason if isinstance(exc, OfdError) else f"unreadable value: {exc}"


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
        bodies = read_doc_bodies(pkg)
        # Readers open the first DocBody: that document is what every signature must cover.
        displayed: Displayed | None = None
        try:
            displayed = Displayed(read_document(pkg, bodies[0].doc_root))
        except ValueError as exc:  # OfdError, or a value the standard's type refuses (a box "0 0 210:97")
            doc_error = _reason(exc)
        drawn_cache: dict = {}
        for body in bodies:
            if not body.signatures:
                continue
            if body.signatures not in pkg:
                raise OfdError(path, f"missing part /{body.signatures} (declared in OFD.xml)")
            # A broken Document.xml must not hide which signed part was changed: the signatures
            # are still checked (their References name the member), and the document fails.
            page_ids: dict[str, str] | None = None
            try:
                doc = displayed.doc if displayed and body is bodies[0] else read_document(pkg, body.doc_root)
                page_ids = {p.id: p.member for p in doc.pages}
            except ValueError as exc:
                doc_error = doc_error or _reason(exc)
            sig_list = read_signatures(pkg, body.signatures)
            parsed = [_parse(pkg, e) for e in sig_list.entries]
            for k, entry in enumerate(sig_list.entries):
                later = {body.signatures}
                for j in range(k, len(parsed)):  # this seal's own files and those of later seals
                    later |= _artefacts(sig_list.entries[j], parsed[j])
                result.signatures.append(_verify_one(pkg, entry, displayed, page_ids, later, trust,
                                                     status_lookup, drawn_cache, parsed[k], use_lookup))
    except ValueError as exc:  # never raises for bad input: an unreadable value fails the document
        result.error = _reason(exc)
        return result
    if doc_error:
        result.error = doc_error
    elif not result.signatures:
        result.error = "no signatures: the document is not sealed"
    return result
