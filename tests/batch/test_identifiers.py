from hypothesis import given, settings
from hypothesis import strategies as st

from stamping.identifiers import (
    CREDIT_CODE_CHARSET,
    check_credit_code,
    check_id_number,
    check_licence_id,
    make_credit_code,
    make_id_number,
    make_licence_id,
)

REAL_LICENCE_ID = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"


def test_real_identifiers_pass() -> None:
    assert check_licence_id(REAL_LICENCE_ID) is None
    assert check_credit_code("11100000000013338W") is None
    assert check_credit_code("91350100M000100Y43") is None
    assert check_id_number("11010519491231002X") is None


def test_wrong_check_characters_are_named() -> None:
    assert "expected U" in check_licence_id(REAL_LICENCE_ID[:-1] + "V")
    assert "expected W" in check_credit_code("11100000000013338X")
    assert "expected X" in check_id_number("110105194912310021")
    assert "impossible birth date" in check_id_number("110105194913310021")
    assert "18 characters" in check_credit_code("123")
    assert "alphabet" in check_credit_code("11100000000013338I")
    assert "must read" in check_licence_id("1.2.3")


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=CREDIT_CODE_CHARSET, min_size=17, max_size=17), st.integers(0, 16))
def test_any_single_substitution_in_a_credit_code_is_caught(body: str, pos: int) -> None:
    code = make_credit_code(body)
    assert check_credit_code(code) is None
    replacement = CREDIT_CODE_CHARSET[(CREDIT_CODE_CHARSET.index(code[pos]) + 1) % 31]
    assert check_credit_code(code[:pos] + replacement + code[pos + 1:]) is not None


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=12))
def test_licence_ids_we_make_check_and_any_changed_serial_fails(serial: str) -> None:
    licence_id = make_licence_id("11100000000013338W011", "11430000006122244L", serial)
    assert check_licence_id(licence_id) is None
    head, _, tail = licence_id.rpartition(".")
    parts = head.split(".")
    parts[-2] = ("1" if serial[0] != "1" else "2") + serial[1:]
    assert check_licence_id(".".join(parts) + "." + tail) is not None


def test_id_numbers_we_make_check() -> None:
    assert check_id_number(make_id_number("11010519800101123")) is None
