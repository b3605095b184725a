"""保管期限 (retention periods) and 档号 (archival reference codes, DA/T 13-2022 style).

Retention codes in 档号: 永久 → ``Y``, 定期30年 → ``D30``, 定期10年 → ``D10``. Older systems still
carry 长期 and 短期; they are accepted and mapped to the current periods as archives practice does
after the 2006 change: 长期 (formerly 16–50 years) → ``D30`` and 短期 (up to 15 years) → ``D10``.

Retain-until dates feed S3 Object Lock. 永久 becomes 9999-12-31, which SeaweedFS accepts (checked);
the fixed periods count whole years from the archiving date.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

RETENTION_ALIASES: dict[str, str] = {
    "Y": "Y", "永久": "Y",
    "D30": "D30", "定期30年": "D30", "30年": "D30", "定期 30年": "D30",
    "D10": "D10", "定期10年": "D10", "10年": "D10", "定期 10年": "D10",
    # Legacy periods (pre-2006 tables), documented mapping.
    "长期": "D30", "短期": "D10",
}
RETENTION_NAMES = {"Y": "永久", "D30": "定期30年", "D10": "定期10年"}
RETENTION_YEARS = {"D30": 30, "D10": 10}
PERMANENT_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


class RetentionError(ValueError):
    """A 保管期限 or 档号 that cannot be used."""


def retention_code(value: str) -> str:
    """The DA/T 13 code (Y, D30, D10) of a 保管期限 written any accepted way."""
    code = RETENTION_ALIASES.get(value.strip())
    if code is None:
        raise RetentionError(f"unknown 保管期限 {value!r}: use 永久, 定期30年 or 定期10年 (Y, D30, D10)")
    return code


def retain_until(code: str, archived: datetime) -> datetime:
    """When Object Lock may release the record: archiving date + the period (永久 → 9999-12-31)."""
    code = retention_code(code)
    if code == "Y":
        return PERMANENT_UNTIL
    years = RETENTION_YEARS[code]
    start = archived.astimezone(UTC)
    try:
        end = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        end = start.replace(year=start.year + years, day=28)
    # Retention runs to the end of the day, so that the record outlives the period, never less.
    return datetime(end.year, end.month, end.day, 23, 59, 59, tzinfo=UTC)


def make_archival_code(fonds: str, category: str, year: int, retention: str, item: int, digits: int = 6) -> str:
    """档号 = 全宗号-门类代码·年度-保管期限-件号, e.g. ``X001-ZZ·2026-Y-000001``."""
    return f"{fonds}-{category}·{year:04d}-{retention_code(retention)}-{item:0{digits}d}"


def code_prefix(fonds: str, category: str, year: int, retention: str) -> str:
    """The 档号 up to the 件号: numbering is continuous within one such prefix."""
    return f"{fonds}-{category}·{year:04d}-{retention_code(retention)}-"


def check_archival_code(code: str, pattern: str) -> str | None:
    """None when ``code`` is a well-formed 档号 under the configured pattern, else the reason."""
    if not re.fullmatch(pattern, code):
        return f"档号 {code!r} does not match the pattern {pattern}"
    return None


def split_archival_code(code: str) -> tuple[str, int]:
    """(prefix up to 件号, 件号 as a number)."""
    prefix, _, item = code.rpartition("-")
    if not item.isdigit():
        raise RetentionError(f"档号 {code!r} has no numeric 件号")
    return prefix + "-", int(item)


