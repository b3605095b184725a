"""Issue X.509 v3 certificates signed with SM2-with-SM3 (asn1crypto builds, our SM2 signs).

Subjects: a unit signer carries its 统一社会信用代码 as organizationIdentifier (2.5.4.97, X.520),
a person signer its 公民身份号码 as serialNumber (2.5.4.5); the CN is the name in both.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import x509

import gmpki.pki  # noqa: F401  (registers GM OIDs with asn1crypto)
from gmpki.gm.oids import SM2_WITH_SM3
from gmpki.gm.sm2 import SM2PublicKey
from gmpki.gm.sm3 import sm3
from gmpki.keys.signer import Signer

CA_USAGE = ("key_cert_sign", "crl_sign")
SIGNER_USAGE = ("digital_signature", "non_repudiation")


@dataclass(frozen=True)
class Subject:
    common_name: str
    organization: str | None = None
    organization_identifier: str | None = None  # 统一社会信用代码
    serial_number: str | None = None  # 公民身份号码
    country: str = "CN"

    def to_name(self) -> x509.Name:
        values: dict[str, str] = {"country_name": self.country}
        if self.organization:
            values["organization_name"] = self.organization
        if self.organization_identifier:
            values["organization_identifier"] = self.organization_identifier
        if self.serial_number:
            values["serial_number"] = self.serial_number
        values["common_name"] = self.common_name
        return x509.Name.build(values, use_printable=False)


def key_identifier(public_key: SM2PublicKey) -> bytes:
    """SKI: the first 20 bytes of SM3 over the public point (RFC 5280 §4.2.1.2 allows any method)."""
    return sm3(public_key.point)[:20]


def _time(value: datetime) -> x509.Time:
    value = value.astimezone(UTC).replace(microsecond=0)
    return x509.Time({"utc_time": value} if value.year < 2050 else {"general_time": value})


def issue_certificate(
    *, subject: Subject, public_key: SM2PublicKey, issuer: Signer | None, issuer_name: x509.Name | None = None,
    issuer_key_id: bytes | None = None, not_before: datetime | None = None, not_after: datetime | None = None,
    ca: bool = False, path_length: int | None = None, key_usage: Sequence[str] = SIGNER_USAGE,
    self_signer: Signer | None = None, extended_key_usage: Sequence[str] = (),
) -> bytes:
    """A DER certificate. ``issuer=None`` with ``self_signer`` makes a self-signed root.
    ``extended_key_usage``: purpose OIDs (or asn1crypto names) of a critical extendedKeyUsage, e.g.
    id-kp-timeStamping for a TSA (RFC 3161 §2.3 wants it critical and alone)."""
    not_before = not_before or datetime.now(UTC) - timedelta(minutes=5)
    not_after = not_after or not_before + timedelta(days=365)
    if not_after <= not_before:
        raise ValueError("a certificate's validity must end after it starts")
    name = subject.to_name()
    signer = issuer or self_signer
    if signer is None:
        raise ValueError("a certificate needs an issuer or, for a root, its own signer")
    ski = key_identifier(public_key)
    if issuer is None:
        issuer_name, issuer_key_id = name, ski
    elif issuer_name is None:
        parent = x509.Certificate.load(issuer.certificate)
        issuer_name = parent.subject
        issuer_key_id = parent.key_identifier or key_identifier(SM2PublicKey.from_certificate(issuer.certificate))
    basic = {"ca": ca}
    if ca and path_length is not None:
        basic["path_len_constraint"] = path_length
    extensions = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": basic},
        {"extn_id": "key_usage", "critical": True, "extn_value": set(key_usage)},
        {"extn_id": "key_identifier", "critical": False, "extn_value": ski},
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": issuer_key_id}},
    ]
    if extended_key_usage:
        extensions.append({"extn_id": "extended_key_usage", "critical": True,
                           "extn_value": list(extended_key_usage)})
    tbs = x509.TbsCertificate({
        "version": "v3",
        "serial_number": secrets.randbits(127) | 1,
        "signature": {"algorithm": SM2_WITH_SM3},
        "issuer": issuer_name,
        "validity": {"not_before": _time(not_before), "not_after": _time(not_after)},
        "subject": name,
        "subject_public_key_info": x509.PublicKeyInfo.load(public_key.to_spki_der()),
        "extensions": extensions,
    })
    signature = signer.sign(tbs.dump())
    return x509.Certificate({
        "tbs_certificate": tbs,
        "signature_algorithm": {"algorithm": SM2_WITH_SM3},
        "signature_value": signature,
    }).dump()


def describe(cert_der: bytes) -> dict[str, object]:
    """The fields people look at, for CLI output and reports."""
    cert = x509.Certificate.load(cert_der)
    tbs = cert["tbs_certificate"]
    return {
        "subject": cert.subject.human_friendly,
        "issuer": cert.issuer.human_friendly,
        "serial": format(cert.serial_number, "x"),
        "not_before": tbs["validity"]["not_before"].native.isoformat(),
        "not_after": tbs["validity"]["not_after"].native.isoformat(),
        "ca": bool(cert.ca),
        "key_usage": sorted(cert.key_usage_value.native) if cert.key_usage_value else [],
        "sm3": sm3(cert_der).hex(),
    }
