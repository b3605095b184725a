"""asn1crypto schemas of the seal data structures (电子印章数据).

GB/T 38540-2020 (SES version 4), GM/T 0031-2025 (version 5 = V4 + an optional timestamp in
SESeal) and GM/T 0031-2014 (version 1, read and verify only). Field names follow the
standard; see ``/work/shared/reference/seal-formats.md`` for the structures.

Where the standard has an untagged CHOICE decided by another field (``certList`` picked by
``certListType``), the schema holds ``Any`` and :mod:`stamping.ses.codec` parses it with the
alternative the type names. Dates use X.509's ``Time`` (UTCTime or GeneralizedTime): the
standard says GeneralizedTime for V4 and UTCTime for V1, and both are seen in the wild.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto.x509 import Time


class SESHeader(core.Sequence):
    _fields = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertList(core.SequenceOf):
    """``certs``: the signer certificates (DER X.509 each), certListType 1."""

    _child_spec = core.OctetString


class CertDigestObj(core.Sequence):
    _fields = [
        ("type", core.PrintableString),
        ("value", core.OctetString),
    ]


class CertDigestList(core.SequenceOf):
    """``certDigestList``: digests of the signer certificates, certListType 2."""

    _child_spec = CertDigestObj


class ESPropertyInfoV4(core.Sequence):
    """SES_ESPropertyInfo (V4/V5)."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", core.Any),  # untagged CHOICE of CertList / CertDigestList
        ("create_date", Time),
        ("valid_start", Time),
        ("valid_end", Time),
    ]


class ESPropertyInfoV1(core.Sequence):
    """SES_ESPropertyInfo of GM/T 0031-2014: no certListType, certList is always certificates."""

    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list", CertList),
        ("create_date", Time),
        ("valid_start", Time),
        ("valid_end", Time),
    ]


class ESPictureInfo(core.Sequence):
    """SES_ESPictrueInfo (sic in the standard): picture type, data, width and height in mm."""

    _fields = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class ExtData(core.Sequence):
    _fields = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class SealInfoV4(core.Sequence):
    """SES_SealInfo (V4/V5): what the seal maker (制章者) signs."""

    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", ESPropertyInfoV4),
        ("picture", ESPictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SealInfoV1(core.Sequence):
    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", ESPropertyInfoV1),
        ("picture", ESPictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SESealV4(core.Sequence):
    """SESeal (V4; V5 adds an optional [0] timestamp, kept as raw bytes)."""

    _fields = [
        ("eseal_info", SealInfoV4),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
        ("time_stamp", core.Any, {"optional": True}),
    ]


class SignInfoV1(core.Sequence):
    _fields = [
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
        ("sign_data", core.OctetBitString),
    ]


class SESealV1(core.Sequence):
    _fields = [
        ("eseal_info", SealInfoV1),
        ("sign_info", SignInfoV1),
    ]


class TBSSignV4(core.Sequence):
    """TBS_Sign (V4/V5): what the signer (签章者) signs. ``eseal`` stays raw: it is parsed
    separately (V4 or V5) and its original bytes are what the seal check needs."""

    _fields = [
        ("version", core.Integer),
        ("eseal", core.Any),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SESSignatureV4(core.Sequence):
    _fields = [
        ("to_sign", TBSSignV4),
        ("cert", core.OctetString),
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


class TBSSignV1(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", core.Any),
        ("time_info", core.OctetBitString),  # text time, e.g. "20200422101807"
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class SESSignatureV1(core.Sequence):
    _fields = [
        ("to_sign", TBSSignV1),
        ("signature", core.OctetBitString),
    ]


class Elements(core.SequenceOf):
    """Any SEQUENCE, seen as its raw elements: used to tell versions apart."""

    _child_spec = core.Any
