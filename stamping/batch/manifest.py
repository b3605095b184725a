"""The batch manifest: one row per certificate (电子证照) with the fields GB/T 36903 catalogues use.

A manifest is CSV (UTF-8, with or without BOM) or JSON (a list of objects, or ``{"documents": [...]}``).
Columns may be named by the English identifier or the Chinese term. Every row is checked before
anything is stamped; a bad row quarantines its document with the reasons, the rest go on.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from stamping.identifiers import check_credit_code, check_id_number, check_licence_id

MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "file": ("文件", "文件名"),
    "format": ("格式", "文件格式"),
    "licence_id": ("证照标识",),
    "licence_number": ("证照编号",),
    "licence_type": ("证照类型", "证照类型名称"),
    "holder_name": ("持证主体",),
    "holder_code": ("持证主体代码",),
    "issuer_name": ("颁发机构", "证照颁发机构", "证照颁发机构名称"),
    "issuer_code": ("颁发机构代码", "证照颁发机构代码"),
    "issue_date": ("颁发日期", "证照颁发日期"),
    "valid_from": ("有效期起始", "有效期起始日期"),
    "valid_until": ("有效期截至", "有效期截止日期"),
    "related_matter": ("关联事项", "关联事项名称"),
    "retention": ("保管期限",),
    # Optional: a licence sealed before is sealed again only as a declared 换发 (renewal) or 补发
    # (replacement of a lost one), with the reason; both are recorded in the audit log.
    "reissue": ("换发补发", "换补发"),
    "reissue_reason": ("换发补发原因", "换补发原因"),
}
REISSUE_KINDS = ("换发", "补发")
REQUIRED = (
    "file", "licence_id", "licence_number", "licence_type", "holder_name", "holder_code",
    "issuer_name", "issue_date", "valid_from", "related_matter", "retention",
)
RETENTION_CODES = {"永久": "Y", "Y": "Y", "30年": "D30", "定期30年": "D30", "D30": "D30",
                   "10年": "D10", "定期10年": "D10", "D10": "D10"}
OPEN_ENDED = {"", "长期", "永久", "-"}
FORMATS = ("pdf", "ofd")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read: nothing in the batch is stamped."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class ManifestRecord:
    """One certificate of the batch, checked."""

    row: int
    file: str
    format: str
    licence_id: str
    licence_number: str
    licence_type: str
    holder_name: str
    holder_code: str
    holder_code_kind: str  # "credit_code" (统一社会信用代码) | "id_number" (公民身份号码)
    issuer_name: str
    issuer_code: str
    issue_date: str
    valid_from: str
    valid_until: str  # "" when open-ended (长期)
    related_matter: str
    retention: str  # Y | D30 | D10
    reissue: str = ""  # "" | 换发 | 补发
    reissue_reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Rejection:
    """A manifest row or a document that is quarantined, with every reason found."""

    row: int
    file: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class CheckedManifest:
    accepted: list[ManifestRecord]
    rejected: list[Rejection]


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Raw rows of a CSV or JSON manifest with canonical column names."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ManifestError(str(path), f"cannot be read ({exc.strerror})") from None
    if size > MAX_MANIFEST_BYTES:
        raise ManifestError(str(path), f"is {size} bytes, over the {MAX_MANIFEST_BYTES}-byte limit")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), f"is not UTF-8 (byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, text)
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        raise ManifestError(str(path), "must be a .csv or .json file")
    if not rows:
        raise ManifestError(str(path), "lists no documents")
    return [_canonical(row) for row in rows]


def _json_rows(path: Path, text: str) -> list[dict[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(str(path), f"is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if isinstance(data, dict):
        data = data.get("documents")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ManifestError(str(path), 'must be a JSON list of objects or {"documents": [...]}')
    return [{str(k): "" if v is None else str(v) for k, v in r.items()} for r in data]


def _canonical(row: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in row.items():
        name = (key or "").strip()
        for canonical, aliases in COLUMN_ALIASES.items():
            if name == canonical or name in aliases:
                name = canonical
                break
        out[name] = (value or "").strip()
    return out


def _parse_date(value: str) -> date | None:
    for candidate in (value, value.replace("/", "-"), value.replace(".", "-")):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    if len(value) == 8 and value.isdigit():
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            return None
    return None


def _check_file_name(name: str) -> str | None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if not name or pure.is_absolute() or ".." in pure.parts or ":" in name:
        return f"file name {name!r} must be a relative path inside the batch folder"
    return None


def detect_format(head: bytes) -> str | None:
    """``pdf`` or ``ofd`` from a file's first bytes, None when neither."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "ofd"
    return None


def _check_row(row_no: int, row: dict[str, str], folder: Path) -> tuple[ManifestRecord | None, Rejection]:
    rejection = Rejection(row_no, row.get("file", ""))
    reasons = rejection.reasons
    for name in REQUIRED:
        if not row.get(name):
            reasons.append(f"{name} is missing")
    licence_id = row.get("licence_id", "")
    if licence_id and (why := check_licence_id(licence_id)):
        reasons.append(why)
    holder_code = row.get("holder_code", "")
    holder_kind = _holder_code_kind(holder_code)
    check = check_id_number if holder_kind == "id_number" else check_credit_code
    if holder_code and (why := check(holder_code)):
        reasons.append(f"holder_code: {why}")
    issuer_code = row.get("issuer_code", "")
    if issuer_code and (why := check_credit_code(issuer_code)):
        reasons.append(f"issuer_code: {why}")
    dates: dict[str, date | None] = {}
    for name in ("issue_date", "valid_from", "valid_until"):
        value = row.get(name, "")
        if name == "valid_until" and value in OPEN_ENDED:
            dates[name] = None
            continue
        if not value:
            continue
        parsed = _parse_date(value)
        if parsed is None:
            reasons.append(f"{name} {value!r} is not a date (YYYY-MM-DD)")
        dates[name] = parsed
    if dates.get("valid_from") and dates.get("valid_until") and dates["valid_until"] < dates["valid_from"]:
        reasons.append("valid_until is before valid_from")
    if dates.get("issue_date") and dates["issue_date"] > date.today():
        reasons.append("issue_date is in the future")
    retention = RETENTION_CODES.get(row.get("retention", ""))
    if row.get("retention") and retention is None:
        reasons.append(f"retention {row['retention']!r} must be 永久, 30年 or 10年 (Y, D30, D10)")
    reissue = row.get("reissue", "").strip()
    if reissue and reissue not in REISSUE_KINDS:
        reasons.append(f"reissue {reissue!r} must be 换发 or 补发 (or empty)")
    if reissue and not row.get("reissue_reason", "").strip():
        reasons.append(f"reissue {reissue} needs its reason in reissue_reason (换发补发原因)")
    declared = (row.get("format") or Path(row.get("file", "")).suffix.lstrip(".")).lower()
    if declared not in FORMATS:
        reasons.append(f"format {declared or '(none)'!r} must be pdf or ofd")
    file_name = row.get("file", "")
    if file_name and (why := _check_file_name(file_name)):
        reasons.append(why)
    elif file_name:
        reasons.extend(_check_document(folder / file_name, declared))
    if reasons:
        return None, rejection
    record = ManifestRecord(
        row=row_no, file=file_name, format=declared, licence_id=licence_id,
        licence_number=row["licence_number"], licence_type=row["licence_type"],
        holder_name=row["holder_name"], holder_code=holder_code, holder_code_kind=holder_kind,
        issuer_name=row["issuer_name"], issuer_code=issuer_code,
        issue_date=_iso(dates.get("issue_date")), valid_from=_iso(dates.get("valid_from")),
        valid_until=_iso(dates.get("valid_until")), related_matter=row["related_matter"],
        retention=retention or "", reissue=reissue, reissue_reason=row.get("reissue_reason", "").strip(),
    )
    return record, rejection


def _holder_code_kind(code: str) -> str:
    """公民身份号码 when the code reads as one (17 digits, a birth date, digit or X), else 统一社会信用代码."""
    if re.fullmatch(r"\d{6}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dX]", code):
        return "id_number"
    return "credit_code"


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def _check_document(path: Path, declared: str) -> list[str]:
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return [f"file {path.name} is not in the batch folder"]
    if size > MAX_DOCUMENT_BYTES:
        return [f"file {path.name} is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit"]
    actual = detect_format(head)
    if actual is None:
        return [f"file {path.name} is neither a PDF nor an OFD package"]
    if declared in FORMATS and actual != declared:
        return [f"file {path.name} is declared {declared} but is a {actual}"]
    return []


def check_manifest(rows: list[dict[str, str]], folder: Path) -> CheckedManifest:
    """Check every row and its file; duplicates of 证照标识, 证照编号 or file are all rejected."""
    accepted: list[ManifestRecord] = []
    rejected: list[Rejection] = []
    counts = {key: Counter(r.get(key, "") for r in rows) for key in ("licence_id", "licence_number", "file")}
    for index, row in enumerate(rows, start=2):  # row 1 is the CSV header
        record, rejection = _check_row(index, row, folder)
        for key in ("licence_id", "licence_number", "file"):
            value = row.get(key, "")
            if value and counts[key][value] > 1:
                rejection.reasons.append(f"{key} {value} appears {counts[key][value]} times in the manifest")
        if record is not None and not rejection.reasons:
            accepted.append(record)
        else:
            rejected.append(rejection)
    return CheckedManifest(accepted, rejected)
