"""The registry's rules that need no database: identifiers, seal names, type codes, esIDs.

Seal names (decided here, see README of the registry):

* 电子私章 and 电子职务章: the name equals the holder's ID-card name exactly (the rules say so for
  personal seals; a position seal is the personal name seal of a head or representative).
* 法定名称章: the name equals the unit's legal name exactly.
* 内设机构章 and 分支机构章: the legal name of the unit followed by the body's name
  (e.g. 某市人民政府 + 办公室), as physical seals of internal bodies carry the full name of the unit
  they belong to; a branch with its own 统一社会信用代码 is registered as its own unit instead.
* 业务专用章: the legal name, then the purpose, ending with 专用章 (e.g. 某市人民政府合同专用章).

Type codes (the SESeal ``property.type``; the standard leaves them to the business): 1 法定名称章,
2 电子私章 (the same two values GM/T 0031 V1 uses for unit and personal seals), 3 内设机构章,
4 分支机构章, 5 业务专用章, 6 电子职务章.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime

from stamping import identifiers
from stamping.registry.errors import InvalidInput, NameMismatch
from stamping.registry.models import OfficialType, SealKind

RENEWAL_WINDOW_DAYS = 30

TYPE_CODES: dict[tuple[str, str | None], int] = {
    (SealKind.OFFICIAL, OfficialType.LEGAL_NAME): 1,
    (SealKind.PERSONAL, None): 2,
    (SealKind.OFFICIAL, OfficialType.INTERNAL_BODY): 3,
    (SealKind.OFFICIAL, OfficialType.BRANCH): 4,
    (SealKind.OFFICIAL, OfficialType.BUSINESS): 5,
    (SealKind.POSITION, None): 6,
}



def normalise_name(name: str) -> str:
    """Names compare after Unicode NFC and outer whitespace removal (full-width forms stay as typed)."""
    return unicodedata.normalize("NFC", name).strip()


credit_code_check = identifiers.credit_code_check_char
id_number_check = identifiers.id_number_check_char


def check_credit_code(code: str) -> str:
    """The normalised 统一社会信用代码, or InvalidInput saying what is wrong."""
    code = code.strip().upper()
    if why := identifiers.check_credit_code(code):
        raise InvalidInput(f"{code!r}: {why}; copy it from the unit's business licence")
    return code


def check_id_number(number: str) -> str:
    """The normalised 公民身份号码, or InvalidInput saying what is wrong (never echoing the whole number)."""
    number = number.strip().upper()
    if why := identifiers.check_id_number(number):
        raise InvalidInput(f"公民身份号码 {number[:6]}…: {why}; copy it from the ID card")
    return number


def seal_kind(kind: str, official_type: str | None) -> tuple[SealKind, OfficialType | None]:
    try:
        k = SealKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown seal kind {kind!r}; use one of {', '.join(SealKind)}") from None
    if k is SealKind.OFFICIAL:
        try:
            return k, OfficialType(official_type or OfficialType.LEGAL_NAME)
        except ValueError:
            raise InvalidInput(f"unknown official seal type {official_type!r}; use one of "
                               f"{', '.join(OfficialType)}") from None
    if official_type:
        raise InvalidInput(f"a {k.value} seal has no official sub-type (got {official_type!r})")
    return k, None


def type_code(kind: SealKind, official_type: OfficialType | None) -> int:
    return TYPE_CODES[(kind, official_type)]


def check_seal_name(kind: SealKind, official_type: OfficialType | None, name: str, unit_name: str,
                    holder_name: str | None) -> str:
    """The normalised seal name, or :class:`NameMismatch` saying which rule it breaks."""
    name, unit_name = normalise_name(name), normalise_name(unit_name)
    if not name:
        raise InvalidInput("the seal name is empty")
    if kind in (SealKind.PERSONAL, SealKind.POSITION):
        if holder_name is None:
            raise InvalidInput(f"a {kind.value} seal needs its holder (a person with an ID card)")
        if name != normalise_name(holder_name):
            raise NameMismatch(f"a {kind.value} seal's name must equal the holder's ID-card name "
                               f"{normalise_name(holder_name)!r}, not {name!r}; use the name exactly as on the ID card")
        return name
    if official_type is OfficialType.LEGAL_NAME:
        if name != unit_name:
            raise NameMismatch(f"an official seal (法定名称章) must carry the unit's legal name {unit_name!r}, "
                               f"not {name!r}; rename the unit first if its legal name changed")
        return name
    if not name.startswith(unit_name) or len(name) == len(unit_name):
        raise NameMismatch(f"a {official_type.value if official_type else 'official'} seal's name must be the unit's "
                           f"legal name {unit_name!r} followed by the body or purpose (e.g. {unit_name}办公室), "
                           f"not {name!r}")
    if official_type is OfficialType.BUSINESS and (not name.endswith("专用章") or len(name) <= len(unit_name) + 3):
        raise NameMismatch(f"a business seal (业务专用章) is named legal name + purpose + 专用章, e.g. "
                           f"{unit_name}合同专用章, not {name!r}")
    return name


def new_es_id(region: str, at: datetime) -> str:
    """A new 印章编码: 6-digit region code, year, 8 random digits (unique key; collisions retried)."""
    return f"{region}{at.year:04d}{secrets.randbelow(10**8):08d}"


demo_credit_code = identifiers.make_credit_code  # a valid code from 17 characters (demo and tests)
demo_id_number = identifiers.make_id_number  # a valid number from 17 digits (demo and tests)
