"""Retention, 档号, the 四性检测 catalogue and scanners — no object store needed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.checks import CATALOGUE, ClamAVScanner, NoScanner, items_for
from archive.checks.catalogue import PROPERTIES, STAGES
from archive.checks.items import CHECKS
from archive.retention import (
    PERMANENT_UNTIL,
    RetentionError,
    check_archival_code,
    make_archival_code,
    retain_until,
    retention_code,
    split_archival_code,
)
from kernel.settings import Settings


@pytest.mark.parametrize(("value", "code"), [("永久", "Y"), ("定期30年", "D30"), ("30年", "D30"), ("D10", "D10"),
                                             ("长期", "D30"), ("短期", "D10")])
def test_retention_codes(value, code):
    assert retention_code(value) == code


def test_unknown_retention_refused():
    with pytest.raises(RetentionError, match="保管期限"):
        retention_code("五年")


def test_retain_until():
    at = datetime(2024, 2, 29, 10, 0, tzinfo=UTC)
    assert retain_until("永久", at) == PERMANENT_UNTIL
    assert retain_until("D30", at) == datetime(2054, 2, 28, 23, 59, 59, tzinfo=UTC)
    assert retain_until("D10", at) == datetime(2034, 2, 28, 23, 59, 59, tzinfo=UTC)


def test_archival_code_format_and_pattern():
    code = make_archival_code("X001", "ZZ", 2026, "定期10年", 42)
    assert code == "X001-ZZ·2026-D10-000042"
    pattern = Settings().archive_code_pattern
    assert check_archival_code(code, pattern) is None
    assert split_archival_code(code) == ("X001-ZZ·2026-D10-", 42)
    for bad in ("X001-ZZ-2026-D10-000042", "X001-ZZ·26-D10-1", "X001-ZZ·2026-D20-000042", "x001-ZZ·2026-Y-0001"):
        assert check_archival_code(bad, pattern) is not None, bad


def test_catalogue_is_complete_data():
    codes = [i.code for i in CATALOGUE]
    assert len(codes) == len(set(codes))
    for stage in STAGES:
        items = items_for(stage)
        assert {i.property for i in items} == set(PROPERTIES)
        assert all(i.code.startswith(stage + "-") for i in items)
    # every item names a check function that exists
    assert {i.check for i in CATALOGUE} <= set(CHECKS)


def test_no_scanner_never_passes(tmp_path: Path):
    f = tmp_path / "a.pdf"
    f.write_bytes(b"%PDF-1.7")
    out = NoScanner().scan([f])
    assert out[f].status == "not_performed"


def test_clamav_failure_is_not_a_pass(tmp_path: Path):
    f = tmp_path / "a.pdf"
    f.write_bytes(b"%PDF-1.7")
    # A scanner binary that fails (as clamscan does without its signature database) → not performed.
    for exe in ("/bin/false", str(tmp_path / "missing-clamscan")):
        out = ClamAVScanner(exe).scan([f])
        assert out[f].status == "not_performed", exe
