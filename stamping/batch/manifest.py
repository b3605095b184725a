"""The batch manifest: one row per certificate (电子证照) with the fields GB/T 36903 catalogues use.

A manifest is CSV (UTF-8, with or without BOM) or JSON (a list of objects, or ``{"documents": [...]}``).
Columns may be named by the English identifier or the Chinese term. Every row is checked before
anything is stamped; a bad row quarantines its document with the reasons, the rest go on.

A manifest comes from a records office that may be careless or hostile, so no row can stop the
batch: a row that cannot even be read (a CSV field over the csv module's limit, a JSON row nested
deeper than the parser recurses, a value that is a list or object) is quarantined as a row of its
own, and text with control characters (a NUL byte breaks file paths and PostgreSQL text) is refused.
Only the whole manifest being unreadable (not UTF-8, not JSON at all) stops a batch.

Files are opened with :func:`open_document`, the only way a batch file is read: every path
component is checked with ``lstat`` (no symlink, even one pointing inside the folder, since a
folder's meaning must not depend on links), the file must be a regular file (a FIFO would block
the reader forever, a device is not a document), and it is opened with ``O_NOFOLLOW|O_NONBLOCK``
and re-checked on the open descriptor, so a swap between check and open is caught. File names
are normalized (``./a.pdf`` is ``a.pdf``) before the duplicate check: one sealed file never
serves two records.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import re
import stat
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import BinaryIO

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
# A row that could not be read at all carries its reason under this key (no column can be named so).
UNREADABLE = "\x00unreadable"
# Longest text a manifest field may hold (a holder's name, a matter's title...); longer is a bad row.
MAX_FIELD_CHARS = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


SHOWN_FIELDS = ("licence_number", "holder_name")


@dataclass
class Rejection:
    """A manifest row or a document that is quarantined, with every reason found."""

    row: int
    file: str
    reasons: list[str] = field(default_factory=list)
    # What the row said for 证照编号 and holder (printable, bounded): a quarantined row in a report
    # is recognised by them, not by a blank. Never used for anything but showing.
    said: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class CheckedManifest:
    accepted: list[ManifestRecord]
    rejected: list[Rejection]


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Raw rows of a CSV or JSON manifest with canonical column names."""
    try:
        with open_document(path.parent, path.name) as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except NotADocument as exc:
        raise ManifestError(str(path), f"cannot be read ({exc})") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(str(path), f"is over the {MAX_MANIFEST_BYTES}-byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(str(path), f"is not UTF-8 (byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        rows = _json_rows(path, text)
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(text)
    else:
        raise ManifestError(str(path), "must be a .csv or .json file")
    if not rows:
        raise ManifestError(str(path), "lists no documents")
    return [_canonical(row) for row in rows]


def _csv_rows(text: str) -> list[dict[str, str]]:
    """Rows of a CSV manifest; a row the csv module refuses (a field over its 128 KiB limit, a NUL
    byte) becomes an unreadable row and reading goes on with the next line."""
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, str]] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            rows.append({UNREADABLE: f"CSV row cannot be read: {exc}"})
            continue
        if None in row:
            rows.append({UNREADABLE: "the row has more fields than the header"})
            continue
        rows.append({k: v if isinstance(v, str) else "" for k, v in row.items()})


def _json_rows(path: Path, text: str) -> list[dict[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(str(path), f"is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        data = _rows_one_by_one(path, text)
    if isinstance(data, dict):
        data = data.get("documents")
    if not isinstance(data, list):
        raise ManifestError(str(path), 'must be a JSON list of objects or {"documents": [...]}')
    return [_json_row(r) for r in data]


def _json_row(row: object) -> dict[str, str]:
    if not isinstance(row, dict):
        return {UNREADABLE: f"a manifest row must be a JSON object, not {type(row).__name__}"}
    out: dict[str, str] = {}
    for key, value in row.items():
        if isinstance(value, dict | list):
            return {UNREADABLE: f"field {str(key)[:40]!r} must be text, not a JSON {type(value).__name__}"}
        out[str(key)] = "" if value is None else str(value)
    return out


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
MAX_JSON_DEPTH = 64


def _rows_one_by_one(path: Path, text: str) -> list[object]:
    """The rows of a manifest too deeply nested for ``json.loads``: the row array is split with an
    iterative scanner (no recursion), each row parsed alone; a row nested too deep is unreadable."""
    depth, row_depth, start, last_string = 0, 0, -1, ""
    spans: list[tuple[int, int, int]] = []  # (start, end, deepest nesting inside the row)
    deepest = 0
    for token in _JSON_TOKENS.finditer(text):
        tok = token.group()
        if tok[0] == '"':
            if depth == 1:
                last_string = tok
            continue
        if tok in "[{":
            depth += 1
            if row_depth == 0 and tok == "[" and (depth == 1 or (depth == 2 and last_string == '"documents"')):
                row_depth, start, deepest = depth, token.end(), 0
                continue
            deepest = max(deepest, depth - row_depth)
        elif tok in "]}":
            if depth == row_depth and start >= 0:
                spans.append((start, token.start(), deepest))
                row_depth, start = -1, -1
            depth -= 1
        elif tok == "," and depth == row_depth and start >= 0:
            spans.append((start, token.start(), deepest))
            start, deepest = token.end(), 0
    if row_depth == 0:
        raise ManifestError(str(path), 'must be a JSON list of objects or {"documents": [...]}')
    if start >= 0:  # the row array never closes: its last row is read (and found broken) all the same
        spans.append((start, len(text), deepest))
    rows: list[object] = []
    for begin, end, nesting in spans:
        piece = text[begin:end].strip()
        if not piece:
            continue
        if nesting > MAX_JSON_DEPTH:
            rows.append({UNREADABLE: f"the row is nested {nesting} levels deep; a row is a flat object of text"})
            continue
        try:
            rows.append(json.loads(piece))
        except (json.JSONDecodeError, RecursionError):
            rows.append({UNREADABLE: "the row is not valid JSON"})
    return rows


def _canonical(row: dict[str, str]) -> dict[str, str]:
    if set(row) == {UNREADABLE}:
        return row  # made by the readers above: the reason is ours
    if any(_CONTROL.search(key or "") for key in row):
        return {UNREADABLE: "a column name holds control characters"}
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


def normalize_file_name(name: str) -> str:
    """The file name as one spelling: ``./a.pdf``, ``a//b.pdf`` and ``x/../a.pdf`` read as the file they name."""
    return posixpath.normpath(name.replace("\\", "/")) if name else name


def _check_file_name(name: str) -> str | None:
    normal = normalize_file_name(name)
    if (not name or _CONTROL.search(name) or normal.startswith("/") or normal == "."
            or ".." in normal.split("/") or ":" in name):
        return f"file name {name!r} must be a relative path inside the batch folder"
    return None


def _printable(text: str, limit: int = 200) -> str:
    """Text safe to store and show: control characters escaped (PostgreSQL text holds no NUL), bounded."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def detect_format(head: bytes) -> str | None:
    """``pdf`` or ``ofd`` from a file's first bytes, None when neither."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "ofd"
    return None


def _check_row(row_no: int, row: dict[str, str], folder: Path) -> tuple[ManifestRecord | None, Rejection]:
    rejection = Rejection(row_no, _printable(row.get("file", "")),
                          said={key: _printable(str(row.get(key) or ""), 100) for key in SHOWN_FIELDS})
    reasons = rejection.reasons
    if UNREADABLE in row:
        reasons.append(_printable(row[UNREADABLE], 300))
        return None, rejection
    for name, value in row.items():
        if len(value) > MAX_FIELD_CHARS:
            reasons.append(f"field {_printable(name, 40)!r} is {len(value)} characters, "
                           f"over the {MAX_FIELD_CHARS} limit")
        elif name != "file" and _CONTROL.search(value):
            reasons.append(f"field {_printable(name, 40)!r} holds control characters")
    if reasons:
        return None, rejection
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
        reasons.append(_printable(why, 400))
    elif file_name:
        file_name = normalize_file_name(file_name)
        reasons.extend(_check_document(folder, file_name, declared))
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


class NotADocument(OSError):
    """A manifest's file that must not be read: missing, a link, a FIFO, a device, a folder."""


def open_document(folder: Path, name: str) -> BinaryIO:
    """Open ``folder/name`` for reading only if every component is a real (non-link) folder and the
    last a regular file inside ``folder``; raises :class:`NotADocument` with the reason otherwise."""
    parts = normalize_file_name(name).split("/")
    if _check_file_name(name) is not None:
        raise NotADocument(f"file name {_printable(name)!r} must be a relative path inside the batch folder")
    here = Path(folder)
    for index, part in enumerate(parts):
        here = here / part
        try:
            info = os.lstat(here)
        except OSError:
            raise NotADocument(f"file {_printable(name)} is not in the batch folder") from None
        if stat.S_ISLNK(info.st_mode):
            raise NotADocument(f"file {_printable(name)} is a symbolic link; only regular files are read")
        last = index == len(parts) - 1
        if not last and not stat.S_ISDIR(info.st_mode):
            raise NotADocument(f"file {_printable(name)} is not in the batch folder")
        if last and not stat.S_ISREG(info.st_mode):
            raise NotADocument(f"file {_printable(name)} is {_file_kind(info.st_mode)}, not a regular file")
    try:
        fd = os.open(here, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NotADocument(f"file {_printable(name)} cannot be opened ({exc.strerror})") from None
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
        os.close(fd)
        raise NotADocument(f"file {_printable(name)} changed while it was being checked")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return next((label for test, label in kinds if test(mode)), "not a regular file")


def _check_document(folder: Path, name: str, declared: str) -> list[str]:
    try:
        with open_document(folder, name) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
    except NotADocument as exc:
        return [str(exc)]
    shown = _printable(Path(name).name)
    if size > MAX_DOCUMENT_BYTES:
        return [f"file {shown} is {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte limit"]
    actual = detect_format(head)
    if actual is None:
        return [f"file {shown} is neither a PDF nor an OFD package"]
    if declared in FORMATS and actual != declared:
        return [f"file {shown} is declared {declared} but is a {actual}"]
    return []


def check_manifest(rows: list[dict[str, str]], folder: Path) -> CheckedManifest:
    """Check every row and its file; duplicates of 证照标识, 证照编号 or file are all rejected
    (file names compared after normalization, so ``./a.pdf`` and ``a.pdf`` are one file)."""
    accepted: list[ManifestRecord] = []
    rejected: list[Rejection] = []
    keys = {"licence_id": str.strip, "licence_number": str.strip, "file": normalize_file_name}
    counts = {key: Counter(norm(r.get(key, "")) for r in rows if UNREADABLE not in r) for key, norm in keys.items()}
    for index, row in enumerate(rows, start=2):  # row 1 is the CSV header
        record, rejection = _check_row(index, row, folder)
        for key, norm in keys.items():
            value = norm(row.get(key, ""))
            if value and counts[key][value] > 1:
                rejection.reasons.append(
                    f"{key} {_printable(value)} appears {counts[key][value]} times in the manifest")
        if record is not None and not rejection.reasons:
            accepted.append(record)
        else:
            rejected.append(rejection)
    return CheckedManifest(accepted, rejected)


def quarantine_table(rows: list[tuple[int, str, list[str]]], limit: int = 500) -> str:
    """A readable table of quarantined rows (row, file, reasons) for the task log an operator reads.

    Only what the manifest row already said is shown (file names, field names, identifiers), each
    cell made printable and bounded; past ``limit`` rows a last line says how many were left out.
    """
    if not rows:
        return "no row quarantined"
    shown = [(str(row), _printable(file, 60), _printable("; ".join(reasons), 300))
             for row, file, reasons in rows[:limit]]
    widths = [max(len(cells[i]) for cells in [("row", "file", "reasons"), *shown]) for i in range(2)]
    lines = [f"{'row':>{widths[0]}}  {'file':<{widths[1]}}  reasons"]
    lines += [f"{r:>{widths[0]}}  {f:<{widths[1]}}  {why}" for r, f, why in shown]
    if len(rows) > limit:
        lines.append(f"… and {len(rows) - limit} more quarantined rows (see the batch report)")
    return "\n".join(lines)
