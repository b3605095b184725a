"""Seal data as read from DER: 电子印章 (SESeal) and 电子签章 (SES_Signature).

Each object keeps the bytes it was parsed from (``der``) and the exact bytes that were signed
(``signed_bytes``), so verification never depends on a re-encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ExtData:
    """One ExtData of ExtensionDatas (an OID, the critical flag, the raw value)."""

    oid: str
    critical: bool
    value: bytes


@dataclass
class Seal:
    """An electronic seal (电子印章, SESeal) of version 1, 4 or 5."""

    version: int
    es_id: str  # 印章编码
    vid: str  # vendor id (厂商标识)
    seal_type: int
    name: str  # 印章名称
    cert_list_type: int  # 1: certificates, 2: certificate digests (V1 always 1)
    cert_list: list[bytes]  # type 1: DER certificates; type 2: the digest values
    create_date: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str  # "PNG", "GIF", "JPG", "SVG", "ofd", …
    picture_data: bytes = field(repr=False)
    picture_width_mm: int | float
    picture_height_mm: int | float
    maker_cert: bytes = field(repr=False)  # 制章者 certificate, DER
    sign_alg: str  # dotted OID
    signed_value: bytes = field(repr=False)  # maker's signature (DER or raw r||s)
    der: bytes = field(repr=False)  # the whole SESeal as found
    signed_bytes: bytes = field(repr=False)  # exactly what the maker signed
    # certListType 2: (digest algorithm name as written, digest value) pairs
    cert_digests: list[tuple[str, bytes]] = field(default_factory=list, repr=False)
    ext_datas: list[ExtData] = field(default_factory=list, repr=False)
    time_stamp: bytes | None = field(default=None, repr=False)  # V5: raw [0] element, if any
    header_id: str = "ES"


@dataclass
class SesSignature:
    """An electronic signature with a seal (电子签章, SES_Signature) of version 1, 4 or 5."""

    version: int
    seal: Seal
    seal_der: bytes = field(repr=False)  # the SESeal inside TBS_Sign, original bytes
    time_info: datetime | str  # V1 keeps the text time when it cannot be read as a date
    data_hash: bytes
    property_info: str
    signer_cert: bytes = field(repr=False)  # 签章者 certificate, DER
    sign_alg: str
    signature: bytes = field(repr=False)  # DER or raw r||s
    der: bytes = field(repr=False)
    signed_bytes: bytes = field(repr=False)  # exactly what the signer signed (TBS_Sign)
    time_stamp: bytes | None = field(default=None, repr=False)  # RFC 3161 token, if any
    ext_datas: list[ExtData] = field(default_factory=list, repr=False)
