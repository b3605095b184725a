"""Identifiers and naming rules without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stamping.registry import InvalidInput, NameMismatch
from stamping.registry.models import OfficialType, SealKind
from stamping.registry.rules import (
    check_credit_code,
    check_id_number,
    check_seal_name,
    demo_credit_code,
    demo_id_number,
    new_es_id,
)


def test_published_examples() -> None:
    assert check_id_number("11010519491231002x") == "11010519491231002X"  # GB 11643 example
    assert check_credit_code("91350100M000100Y43") == "91350100M000100Y43"  # GB 32100 example
    for bad in ("11010519491231002", "110105194912310021", "1101051949123100XX"):
        with pytest.raises(InvalidInput):
            check_id_number(bad)
    for bad in ("91350100M000100Y44", "91350100M000100Y4", "91350100M000100YI3"):
        with pytest.raises(InvalidInput):
            check_credit_code(bad)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHJKLMNPQRTUWXY", min_size=17, max_size=17))
def test_credit_code_check_character_catches_one_changed_character(body: str) -> None:
    code = demo_credit_code("91" + body[2:8].translate(str.maketrans("ABCDEFGHJKLMNPQRTUWXY", "0" * 21)) + body[8:])
    assert check_credit_code(code) == code
    alt = "1" if code[10] != "1" else "2"
    with pytest.raises(InvalidInput):
        check_credit_code(code[:10] + alt + code[11:])


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789", min_size=6, max_size=6), st.dates(min_value=date(1900, 1, 1),
       max_value=date(2020, 12, 31)), st.text(alphabet="0123456789", min_size=3, max_size=3))
def test_id_number_check_digit_catches_one_changed_digit(region: str, born: date, seq: str) -> None:
    number = demo_id_number(f"{region}{born:%Y%m%d}{seq}")
    assert check_id_number(number) == number
    alt = "1" if number[5] != "1" else "2"
    with pytest.raises(InvalidInput):
        check_id_number(number[:5] + alt + number[6:])


def test_names() -> None:
    unit = "南宁市某局"
    assert check_seal_name(SealKind.OFFICIAL, OfficialType.LEGAL_NAME, f" {unit} ", unit, None) == unit
    assert check_seal_name(SealKind.OFFICIAL, OfficialType.BUSINESS, unit + "财务专用章", unit, None)
    with pytest.raises(NameMismatch):
        check_seal_name(SealKind.OFFICIAL, OfficialType.BUSINESS, unit + "专用章", unit, None)  # no purpose
    with pytest.raises(NameMismatch):
        check_seal_name(SealKind.PERSONAL, None, "张三之印", unit, "张三")
    # NFC: a decomposed form of the same name is the same name
    assert check_seal_name(SealKind.PERSONAL, None, "Zoe\u0301", unit, "Zo\u00e9") == "Zo\u00e9"


def test_es_id_shape() -> None:
    es_id = new_es_id("450000", datetime(2026, 5, 1, tzinfo=UTC))
    assert len(es_id) == 18 and es_id.startswith("4500002026") and es_id.isdigit()
