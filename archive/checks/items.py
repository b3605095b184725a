"""The check function of each 四性检测 item. Each takes a :class:`RecordContext` and returns (status, reason).

Statuses: ``pass``, ``fail``, ``not_applicable``, ``not_performed`` — never ``pass`` for something
that was not looked at.
"""

from __future__ import annotations

import io
import json
import platform
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pymupdf
from lxml import etree

from archive.checks.scanner import ScanOutcome
from archive.retention import RETENTION_ALIASES, check_archival_code
from stamping.ofd.reader import open_ofd

PASS, FAIL, NA, NOT_PERFORMED = "pass", "fail", "not_applicable", "not_performed"
Outcome = tuple[str, str]

MANDATORY = ("licence_id", "licence_number", "licence_type", "holder_name", "holder_code",
             "issuer_name", "issue_date", "valid_from", "related_matter", "retention")
MAX_LENGTHS = {"licence_id": 128, "licence_number": 64, "licence_type": 100, "holder_name": 200,
               "holder_code": 32, "issuer_name": 200, "issuer_code": 32, "issue_date": 10,
               "valid_from": 10, "valid_until": 10, "related_matter": 200, "retention": 8}
DATE_FIELDS = ("issue_date", "valid_from", "valid_until")
ALLOWED_FORMATS = ("ofd", "pdf")
PACKAGE_REQUIRED = ("metadata.json", "metadata.xml", "verification.json")
# Files describing the package itself, not listed in metadata.json's file list.
PACKAGE_SELF = {"metadata.json", "checks.json", "manifest-sm3.txt"}
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class BatchFacts:
    """What checks about one record need to know of its batch."""

    registered_count: int = 0
    registered_bytes: int = 0
    actual_count: int = 0
    actual_bytes: int = 0
    duplicate_ids: set[str] = field(default_factory=set)
    duplicate_numbers: set[str] = field(default_factory=set)
    numbering_gaps: list[str] = field(default_factory=list)


@dataclass
class RecordContext:
    record: dict[str, str]
    archival_code: str
    code_pattern: str
    document_name: str
    data: bytes
    declared_format: str
    declared_size: int | None
    carried_sm3: str
    actual_sm3: str
    verification: dict | None
    batch: BatchFacts
    scan: ScanOutcome | None = None
    package_files: dict[str, bytes] | None = None
    software: str = ""
    _opened: Outcome | None = None


def sniff(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "ofd"
    return ""


# -- 真实性 -----------------------------------------------------------------------------------
def seals_verify(ctx: RecordContext) -> Outcome:
    v = ctx.verification
    if v is None:
        return NOT_PERFORMED, "no verification result"
    if v.get("error"):
        return FAIL, f"verification error: {v['error']}"
    sigs = v.get("signatures") or []
    if not sigs:
        return FAIL, "the document carries no seal"
    if v.get("valid"):
        return PASS, f"{len(sigs)} seal(s) verify: intact, trusted, valid"
    failed = [f"{c['name']}: {c.get('reason', '')}" for s in sigs for c in s.get("checks", []) if not c.get("ok")]
    return FAIL, "seal verification failed: " + "; ".join(failed)[:500]


def metadata_length(ctx: RecordContext) -> Outcome:
    bad = [f"{k} ({len(ctx.record.get(k, ''))} > {n})" for k, n in MAX_LENGTHS.items()
           if len(ctx.record.get(k, "") or "") > n]
    return (FAIL, "too long: " + ", ".join(bad)) if bad else (PASS, "every field within its length")


def metadata_format(ctx: RecordContext) -> Outcome:
    bad = []
    for k in DATE_FIELDS:
        value = ctx.record.get(k, "") or ""
        if not value:
            continue
        if not _DATE.match(value):
            bad.append(f"{k}={value!r} is not YYYY-MM-DD")
            continue
        try:
            date.fromisoformat(value)
        except ValueError:
            bad.append(f"{k}={value!r} is not a date")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "dates are ISO 8601 (YYYY-MM-DD)")


def metadata_code_list(ctx: RecordContext) -> Outcome:
    bad = []
    if ctx.record.get("retention", "") not in RETENTION_ALIASES:
        bad.append(f"保管期限 {ctx.record.get('retention')!r} not in the code list")
    if ctx.declared_format not in ALLOWED_FORMATS:
        bad.append(f"format {ctx.declared_format!r} not in {ALLOWED_FORMATS}")
    kind = ctx.record.get("holder_code_kind")
    if kind and kind not in ("credit_code", "id_number"):
        bad.append(f"holder_code_kind {kind!r} unknown")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "保管期限, format and holder-code type within their code lists")


def metadata_plausible(ctx: RecordContext) -> Outcome:
    try:
        issued = date.fromisoformat(ctx.record.get("issue_date", ""))
        start = date.fromisoformat(ctx.record.get("valid_from", ""))
        end_raw = ctx.record.get("valid_until", "") or ""
        end = date.fromisoformat(end_raw) if end_raw else None
    except ValueError:
        return FAIL, "dates cannot be read"
    bad = []
    if issued > date.today():
        bad.append(f"issue_date {issued} is in the future")
    if issued.year < 1949:
        bad.append(f"issue_date {issued} is implausibly early")
    if end is not None and end < start:
        bad.append(f"valid_until {end} before valid_from {start}")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "dates plausible")


def metadata_characters(ctx: RecordContext) -> Outcome:
    bad = [k for k, v in ctx.record.items() if isinstance(v, str) and _ILLEGAL.search(v)]
    return (FAIL, "illegal characters in: " + ", ".join(bad)) if bad else (PASS, "no control characters")


def archival_code(ctx: RecordContext) -> Outcome:
    why = check_archival_code(ctx.archival_code, ctx.code_pattern)
    return (FAIL, why) if why else (PASS, f"档号 {ctx.archival_code} well-formed")


def metadata_unique(ctx: RecordContext) -> Outcome:
    bad = []
    if ctx.record.get("licence_id") in ctx.batch.duplicate_ids:
        bad.append(f"证照标识 {ctx.record.get('licence_id')} appears more than once")
    if ctx.record.get("licence_number") in ctx.batch.duplicate_numbers:
        bad.append(f"证照编号 {ctx.record.get('licence_number')} appears more than once")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "证照标识 and 证照编号 unique in the batch and the archive")


def identifiers(ctx: RecordContext) -> Outcome:
    from stamping.identifiers import check_credit_code, check_id_number, check_licence_id

    bad = []
    lid = ctx.record.get("licence_id", "")
    if lid and (why := check_licence_id(lid)):
        bad.append(f"证照标识: {why}")
    code = ctx.record.get("holder_code", "")
    kind = ctx.record.get("holder_code_kind") or ("id_number" if code[:1].isdigit() and len(code) == 18
                                                  and code[:6].isdigit() and code[6:8] in ("19", "20") else
                                                  "credit_code")
    check = check_id_number if kind == "id_number" else check_credit_code
    if code and (why := check(code)):
        bad.append(f"持证主体代码: {why}")
    issuer = ctx.record.get("issuer_code", "")
    if issuer and (why := check_credit_code(issuer)):
        bad.append(f"颁发机构代码: {why}")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "check characters correct")


def content_attributes(ctx: RecordContext) -> Outcome:
    bad = []
    if ctx.declared_size is not None and ctx.declared_size != len(ctx.data):
        bad.append(f"size {len(ctx.data)} != recorded {ctx.declared_size}")
    actual = sniff(ctx.data)
    if actual != ctx.declared_format:
        bad.append(f"content is {actual or 'unknown'}, recorded as {ctx.declared_format}")
    if not ctx.document_name.lower().endswith("." + ctx.declared_format):
        bad.append(f"file name {ctx.document_name} does not end in .{ctx.declared_format}")
    if ctx.carried_sm3 and ctx.carried_sm3 != ctx.actual_sm3:
        bad.append("SM3 differs from the digest recorded at stamping")
    return (FAIL, "; ".join(bad)) if bad else (PASS, "name, size, format and digest match the file")


def metadata_content_link(ctx: RecordContext) -> Outcome:
    v = ctx.verification or {}
    vpath = str(v.get("path", ""))
    if vpath and vpath.replace("\\", "/").rsplit("/", 1)[-1] != ctx.document_name.rsplit("/", 1)[-1]:
        return FAIL, f"verification result is for {vpath}, not {ctx.document_name}"
    return PASS, f"metadata and verification result refer to {ctx.document_name}"


def package_structure(ctx: RecordContext) -> Outcome:
    if ctx.package_files is None:
        return NOT_PERFORMED, "package not built"
    content = [n for n in ctx.package_files if n.startswith("content/")]
    missing = [n for n in PACKAGE_REQUIRED if n not in ctx.package_files]
    if missing or len(content) != 1:
        return FAIL, f"missing {missing}, content files {len(content)}"
    return PASS, "content/, metadata.json, metadata.xml, verification.json present"


# -- 完整性 -----------------------------------------------------------------------------------
def totals(ctx: RecordContext) -> Outcome:
    b = ctx.batch
    if ctx.declared_size is None or not b.registered_count:
        return NOT_PERFORMED, "no registration form counts"
    summary = (f"batch registered {b.registered_count} items / {b.registered_bytes} bytes, "
               f"found {b.actual_count} / {b.actual_bytes}")
    if ctx.declared_size != len(ctx.data):
        return FAIL, f"this record: {len(ctx.data)} bytes, registered {ctx.declared_size}; {summary}"
    if (b.registered_count, b.registered_bytes) != (b.actual_count, b.actual_bytes):
        return PASS, f"this record as registered; {summary} (the differing records are rejected)"
    return PASS, summary


def mandatory_metadata(ctx: RecordContext) -> Outcome:
    missing = [k for k in MANDATORY if not ctx.record.get(k)]
    return (FAIL, "missing: " + ", ".join(missing)) if missing else (PASS, "mandatory items present")


def item_numbers(ctx: RecordContext) -> Outcome:
    gaps = ctx.batch.numbering_gaps
    return (FAIL, "件号 not continuous: " + "; ".join(gaps[:5])) if gaps else (PASS, "件号 continuous")


def content_complete(ctx: RecordContext) -> Outcome:
    data = ctx.data
    if not data:
        return FAIL, "no content"
    if ctx.declared_format == "pdf" and b"%%EOF" not in data[-2048:]:
        return FAIL, "PDF is truncated (no %%EOF at its end)"
    if ctx.declared_format == "ofd" and b"PK\x05\x06" not in data[-65557:]:
        return FAIL, "OFD package is truncated (no zip end record)"
    return PASS, f"{len(data)} bytes, complete"


def package_complete(ctx: RecordContext) -> Outcome:
    if ctx.package_files is None:
        return NOT_PERFORMED, "package not built"
    try:
        meta = json.loads(ctx.package_files["metadata.json"])
    except (KeyError, ValueError) as exc:
        return FAIL, f"metadata.json unreadable: {exc}"
    listed = {f["name"] for f in meta.get("files", [])}
    present = {n for n in ctx.package_files if n not in PACKAGE_SELF}
    if listed != present:
        return FAIL, f"metadata lists {sorted(listed ^ present)} differently from the package"
    return PASS, f"{len(present) + 1} files, as listed"


# -- 可用性 -----------------------------------------------------------------------------------
def metadata_readable(ctx: RecordContext) -> Outcome:
    if ctx.package_files is None:
        return NOT_PERFORMED, "package not built"
    try:
        json.loads(ctx.package_files["metadata.json"])
        etree.fromstring(ctx.package_files["metadata.xml"],
                         etree.XMLParser(resolve_entities=False, no_network=True))
    except Exception as exc:
        return FAIL, f"metadata unreadable: {exc}"
    return PASS, "metadata.json and metadata.xml parse"


def allowed_format(ctx: RecordContext) -> Outcome:
    fmt = sniff(ctx.data)
    if fmt not in ALLOWED_FORMATS:
        return FAIL, "not an archival format (OFD or PDF)"
    return PASS, {"ofd": "OFD (GB/T 33190)", "pdf": "PDF"}[fmt]


def _open(ctx: RecordContext) -> Outcome:
    if ctx._opened is not None:
        return ctx._opened
    fmt = sniff(ctx.data)
    if fmt == "pdf":
        try:
            ctx._opened = _pdf_opens(ctx.data)
        except Exception as exc:
            ctx._opened = (FAIL, f"PDF does not open: {exc}")
    elif fmt == "ofd":
        try:
            doc = open_ofd(ctx.data, ctx.document_name)
            ctx._opened = (PASS, f"OFD opens, {doc.page_count} page(s)") if doc.page_count else (
                FAIL, "OFD has no pages")
        except Exception as exc:
            ctx._opened = (FAIL, f"OFD does not open: {exc}")
    else:
        ctx._opened = (FAIL, "unknown format")
    return ctx._opened


def _pdf_opens(data: bytes) -> Outcome:
    """Open the PDF with MuPDF, refuse it when it needs a password or has no page, and interpret its
    first page's content into text (fonts, content stream): a reader can show it.

    MuPDF's own calls (``pymupdf.mupdf``) rather than ``pymupdf.Document``, which also reads the
    metadata and the outline and wraps each rectangle in Python: the same engine and the same steps
    (what ``pymupdf.open`` + ``doc[0].get_text()`` did; tests/archive/test_check_opens.py passes on
    both) at ~60 % of the CPU (issue 19). One difference: ``pymupdf.Document`` hides MuPDF's messages
    while it opens a file; here a damaged file's repair messages reach stderr, as page errors did.
    """
    mu = pymupdf.mupdf
    doc = mu.fz_open_document_with_stream("pdf", mu.fz_open_buffer(mu.fz_new_buffer_from_copied_data(data)))
    if mu.fz_needs_password(doc):
        return FAIL, "PDF is encrypted"
    pages = mu.fz_count_pages(doc)
    if pages < 1:
        return FAIL, "PDF has no pages"
    mu.FzStextPage(mu.fz_load_page(doc, 0), mu.FzStextOptions())  # parse the first page's content
    return PASS, f"PDF opens with PyMuPDF, {pages} page(s)"


def content_opens(ctx: RecordContext) -> Outcome:
    return _open(ctx)


def environment(ctx: RecordContext) -> Outcome:
    env = ctx.software or f"SealFlow on Python {platform.python_version()}"
    return PASS, f"recorded: {env}"


def no_encryption(ctx: RecordContext) -> Outcome:
    fmt = sniff(ctx.data)
    if fmt == "pdf":
        status, reason = _open(ctx)
        if status == FAIL and "encrypted" in reason:
            return FAIL, reason
        if b"/Encrypt" in ctx.data[-4096:] and status != PASS:
            return FAIL, "PDF trailer names /Encrypt"
        return (PASS, "PDF not encrypted") if status == PASS else (NOT_PERFORMED, f"PDF unreadable: {reason}")
    if fmt == "ofd":
        try:
            with zipfile.ZipFile(io.BytesIO(ctx.data)) as zf:
                for info in zf.infolist():
                    if info.flag_bits & 0x1:
                        return FAIL, f"OFD member {info.filename} is encrypted"
                    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                        return FAIL, f"OFD member {info.filename} uses compression method {info.compress_type}"
        except zipfile.BadZipFile as exc:
            return FAIL, f"OFD is not a readable zip: {exc}"
        return PASS, "OFD members stored or deflated, none encrypted"
    return NA, "unknown format"


# -- 安全性 -----------------------------------------------------------------------------------
def malware(ctx: RecordContext) -> Outcome:
    if ctx.scan is None:
        return NOT_PERFORMED, "no malware scanner ran"
    return ctx.scan.status, ctx.scan.reason


def no_foreign_files(ctx: RecordContext) -> Outcome:
    if ctx.package_files is None:
        return NOT_PERFORMED, "package not built"
    allowed = set(PACKAGE_REQUIRED) | PACKAGE_SELF | {f"content/{ctx.document_name}"}
    foreign = sorted(set(ctx.package_files) - allowed)
    return (FAIL, f"foreign files: {foreign}") if foreign else (PASS, "only the package's own files")


def fixity(ctx: RecordContext) -> Outcome:
    if not ctx.carried_sm3:
        return NOT_PERFORMED, "no SM3 digest was recorded at stamping to compare with"
    if ctx.carried_sm3 != ctx.actual_sm3:
        return FAIL, "the document changed since stamping (SM3 differs)"
    return PASS, "SM3 equals the digest recorded at stamping"


CHECKS: dict[str, Callable[[RecordContext], Outcome]] = {
    name: fn for name, fn in globals().items()
    if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") == __name__
    and name not in {"sniff", "BatchFacts", "RecordContext"}
}
