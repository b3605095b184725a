"""Check characters of the identifiers a certificate manifest carries.

- 统一社会信用代码 (GB 32100-2015): 18 characters, mod-31 check character.
- 公民身份号码 (GB 11643-1999): 18 characters, ISO 7064 MOD 11-2 check character, a real birth date.
- 证照标识 (GB/T 36904-2018): ``1.2.156.3005.2.<type>.<issuer>.<serial>.<version>.<check>``, the
  check character by ISO 7064 MOD 37,36 over type+issuer+serial+version without the dots
  (confirmed against a real identifier, see tests).
Each ``check_*`` returns ``None`` when valid, else the reason in words.
"""

from __future__ import annotations

import re
from datetime import date

CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LICENCE_ID_PREFIX = "1.2.156.3005.2."
_LICENCE_ID_RE = re.compile(
    r"^1\.2\.156\.3005\.2\.(?P<type>[0-9A-Z]{21})\.(?P<issuer>[0-9A-Z]{18})\."
    r"(?P<serial>[0-9A-Z]{1,32})\.(?P<version>\d{3})\.(?P<check>[0-9A-Z])$"
)


def credit_code_check_char(first17: str) -> str:
    total = sum(CREDIT_CODE_CHARSET.index(c) * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def check_credit_code(code: str) -> str | None:
    """统一社会信用代码: None when valid, else why not."""
    if len(code) != 18:
        return f"统一社会信用代码 must have 18 characters, not {len(code)}"
    bad = sorted({c for c in code if c not in CREDIT_CODE_CHARSET})
    if bad:
        return f"统一社会信用代码 contains characters outside its alphabet: {''.join(bad)}"
    expected = credit_code_check_char(code[:17])
    if code[17] != expected:
        return f"统一社会信用代码 check character is {code[17]}, expected {expected}"
    return None


def id_number_check_char(first17: str) -> str:
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def check_id_number(number: str) -> str | None:
    """公民身份号码: None when valid, else why not."""
    if len(number) != 18:
        return f"公民身份号码 must have 18 characters, not {len(number)}"
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        return "公民身份号码 must be 17 digits followed by a digit or X"
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return f"公民身份号码 carries an impossible birth date {number[6:14]}"
    if born > date.today() or born.year < 1850:
        return f"公民身份号码 carries an implausible birth date {born.isoformat()}"
    expected = id_number_check_char(number[:17])
    if number[17] != expected:
        return f"公民身份号码 check character is {number[17]}, expected {expected}"
    return None


def mod37_36_check_char(text: str) -> str:
    """ISO 7064 MOD 37,36 (hybrid system) check character over 0-9A-Z."""
    modulus = 36
    product = modulus
    for ch in text:
        total = (product + _ALNUM36.index(ch)) % modulus or modulus
        product = (total * 2) % (modulus + 1)
    return _ALNUM36[(modulus + 1 - product) % modulus]


def make_licence_id(type_code: str, issuer_code: str, serial: str, version: str = "001") -> str:
    """A GB/T 36904 证照标识 with its check character."""
    body = f"{type_code}.{issuer_code}.{serial}.{version}"
    return f"{LICENCE_ID_PREFIX}{body}.{mod37_36_check_char(body.replace('.', ''))}"


def check_licence_id(licence_id: str) -> str | None:
    """证照标识 (GB/T 36904): None when valid, else why not."""
    match = _LICENCE_ID_RE.match(licence_id)
    if not match:
        return (
            "证照标识 must read 1.2.156.3005.2.<21-char type code>.<18-char issuer code>."
            "<serial>.<3-digit version>.<check char>"
        )
    if reason := check_credit_code(match["type"][:18]):
        return f"证照标识 type code: {reason}"
    if reason := check_credit_code(match["issuer"]):
        return f"证照标识 issuer code: {reason}"
    body = match["type"] + match["issuer"] + match["serial"] + match["version"]
    expected = mod37_36_check_char(body)
    if match["check"] != expected:
        return f"证照标识 check character is {match['check']}, expected {expected}"
    return None


def make_credit_code(first17: str) -> str:
    return first17 + credit_code_check_char(first17)


def make_id_number(first17: str) -> str:
    return first17 + id_number_check_char(first17)
