"""验章: the checks of a seal signature (SES_Signature) and of the seal (SESeal) it carries.

Everything is checked over the original bytes the parser kept. Each check names what it
looked at and, when it fails, why. Kinds (see :mod:`stamping.verdict.result`): ``integrity``
for signatures and digests, ``trust`` for chains to trusted roots, ``status`` for validity
windows and the registry status.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from asn1crypto import x509
from PIL import Image

from stamping.pictures import render_svg
from stamping.ses.model import Seal, SesSignature
from stamping.verdict.result import SealStatus, SealStatusLookup, SignatureResult, SignatureUseLookup

if TYPE_CHECKING:
    from gmpki.gm.sm2 import SM2PublicKey
    from gmpki.pki.trust import TrustStore

SM2_WITH_SM3 = "1.2.156.10197.1.501"
# SM2 signature OID some producers write instead of SM2-with-SM3; SM3 is implied.
_SM2_SIGN_ALGS = {SM2_WITH_SM3, "1.2.156.10197.1.301.1"}
_DIGEST_NAMES = {"sm3": "sm3", "1.2.156.10197.1.401": "sm3", "sha1": "sha1", "sha-1": "sha1",
                 "sha256": "sha256", "sha-256": "sha256", "md5": "md5"}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@lru_cache(maxsize=256)
def _cert_facts(der: bytes) -> tuple[str, datetime, datetime] | None:
    """(subject CN, notBefore, notAfter) of a certificate, None when unreadable; cached."""
    try:
        cert = x509.Certificate.load(der, strict=True)
        subject = cert.subject.native
        validity = cert["tbs_certificate"]["validity"]
        name = str(subject.get("common_name") or subject.get("organization_name") or "")
        return name, validity["not_before"].native, validity["not_after"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        return None


def common_name(der: bytes) -> str:
    facts = _cert_facts(bytes(der))
    return facts[0] if facts else ""


@lru_cache(maxsize=256)
def _public_key(cert_der: bytes) -> SM2PublicKey:
    """Keys of the few certificates a batch sees (one seal maker, a few signers), loaded once."""
    from gmpki.gm.sm2 import SM2PublicKey

    return SM2PublicKey.from_certificate(cert_der)


def verify_sm2(cert_der: bytes, signature: bytes, data: bytes) -> tuple[bool, str]:
    """SM2-with-SM3 verification with the key of ``cert_der`` (default user id); (ok, why not)."""
    try:
        key = _public_key(bytes(cert_der))
    except Exception as exc:  # any malformed certificate: a reason, never a crash
        return False, f"certificate has no usable SM2 public key ({exc})"
    if key.verify(signature, data):
        return True, ""
    return False, "SM2 signature does not verify"


@lru_cache(maxsize=64)
def _seal_signature_verdict(cert_der: bytes, signature: bytes, data: bytes) -> tuple[bool, str]:
    """The seal maker's signature, verified once per process for each exact (certificate, signature
    value, signed bytes): a batch carries the same SESeal in every document, and that verification was
    half of the SM2 work of 验章. Keyed by every byte the verification reads, so a seal that differs
    anywhere (a forged picture, a swapped certificate, another signature) is verified afresh."""
    return verify_sm2(cert_der, signature, data)


def check_signature(result: SignatureResult, name: str, who: str, cert_der: bytes, alg: str,
                     signature: bytes, data: bytes, what: str, *, same_in_every_document: bool = False) -> bool:
    """``same_in_every_document``: the signed bytes are shared by a batch's documents (the seal), so the
    verdict is memoized by the exact bytes (:func:`_seal_signature_verdict`)."""
    if alg not in _SM2_SIGN_ALGS:
        return result.add(name, False, f"{who} signature algorithm {alg} is not SM2-with-SM3 ({SM2_WITH_SM3})")
    if same_in_every_document:
        ok, why = _seal_signature_verdict(bytes(cert_der), bytes(signature), bytes(data))
    else:
        ok, why = verify_sm2(cert_der, signature, data)
    if ok:
        return result.add(name, True, f"{who} SM2 signature over {what} is valid")
    return result.add(name, False, f"{who} signature over {what} is invalid: {why}")


def _signer_in_cert_list(result: SignatureResult, seal: Seal, signer_cert: bytes) -> bool:
    name = "signer_in_cert_list"
    if seal.cert_list_type == 1:
        if signer_cert in seal.cert_list:
            return result.add(name, True, "the signer's certificate is in the seal's certificate list")
        return result.add(name, False, f"the signer's certificate is not among the {len(seal.cert_list)} "
                                       "certificate(s) the seal was made for")
    if seal.cert_list_type == 2:
        unknown = []
        for type_name, value in seal.cert_digests:
            algo = _DIGEST_NAMES.get(type_name.strip().lower())
            if algo is None:
                unknown.append(type_name)
                continue
            if hashlib.new(algo, signer_cert).digest() == value:
                return result.add(name, True, f"the signer's certificate matches a {type_name} digest in the seal")
        extra = f" (unknown digest types: {', '.join(unknown)})" if unknown else ""
        return result.add(name, False, "the signer's certificate matches none of the seal's certificate digests"
                                       + extra)
    return result.add(name, False, f"unknown certListType {seal.cert_list_type}")


def _seal_validity(result: SignatureResult, seal: Seal, signed_at: datetime | None) -> bool:
    name = "seal_validity_at_signing"
    if signed_at is None:
        return result.add(name, False, "signing time unknown: the seal's validity cannot be checked", "status")
    window = f"{_iso(seal.valid_start)} – {_iso(seal.valid_end)}"
    if signed_at < seal.valid_start:
        return result.add(name, False, f"signed at {_iso(signed_at)}, before the seal became valid ({window})",
                          "status")
    if signed_at > seal.valid_end:
        return result.add(name, False, f"signed at {_iso(signed_at)}, after the seal expired ({window})", "status")
    return result.add(name, True, f"signed within the seal's validity ({window})", "status")


def check_cert_validity(result: SignatureResult, signer_cert: bytes, signed_at: datetime | None) -> bool:
    name = "signer_cert_validity"
    facts = _cert_facts(bytes(signer_cert))
    if facts is None:
        return result.add(name, False, "the signer's certificate cannot be parsed", "status")
    if signed_at is None:
        return result.add(name, False, "signing time unknown: certificate validity cannot be checked", "status")
    _, start, end = facts
    window = f"{_iso(start)} – {_iso(end)}"
    if not start <= signed_at <= end:
        return result.add(name, False, f"signed at {_iso(signed_at)}, outside the signer certificate's validity "
                                       f"({window})", "status")
    return result.add(name, True, f"signer certificate valid at signing ({window})", "status")


def check_chain(result: SignatureResult, name: str, who: str, cert_der: bytes, at: datetime | None,
           trust: TrustStore | None) -> bool:
    if trust is None:
        return result.add(name, False, "no trusted roots configured", "trust")
    if at is None:
        at = datetime.now(UTC)
    try:
        chain = trust.validate(cert_der, at)
    except Exception as exc:  # a broken certificate is a failed check, never a crash
        return result.add(name, False, f"{who} certificate cannot be validated ({exc})", "trust")
    if chain.ok:
        return result.add(name, True, f"{who} certificate chains to a trusted root", "trust")
    if not chain.issuer_found:
        return result.add(name, False, f"{who} certificate does not chain to a trusted root "
                                       f"(issuer not trusted): {chain.reason}", "trust")
    return result.add(name, False, f"{who} certificate chain invalid: {chain.reason}", "trust")


def _seal_status(result: SignatureResult, seal: Seal, signed_at: datetime | None,
                 status_lookup: SealStatusLookup | None) -> bool:
    name = "seal_status"
    if status_lookup is None:
        return result.add(name, True, "not checked: no seal registry configured", "status")
    at = signed_at or datetime.now(UTC)
    status = status_lookup(seal.es_id, at)
    if status is None:
        return result.add(name, True, f"seal {seal.es_id} is not in our registry", "status")
    status = SealStatus(status)
    if status is SealStatus.ACTIVE:
        return result.add(name, True, f"seal {seal.es_id} was active at signing ({_iso(at)})", "status")
    return result.add(name, False, f"seal {seal.es_id} was {status.value} at signing ({_iso(at)})", "status")


def picture_png(seal: Seal) -> bytes | None:
    """The seal picture as PNG for reports, or None (OFD-type pictures, unreadable data)."""
    kind = seal.picture_type.strip().upper()
    data = seal.picture_data
    if not data or kind == "OFD":
        return None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    try:
        if kind == "SVG" or b"<svg" in data[:4096]:
            img = render_svg(data, "seal picture", float(seal.picture_width_mm or 40))
        else:
            img = Image.open(io.BytesIO(data))
            if max(img.size) > 4096:
                return None
            img.load()
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()
    except Exception:  # a picture that cannot be shown does not change the verdict
        return None


def _describe(result: SignatureResult, seal: Seal, signer_cert: bytes, signed_at: datetime | None) -> None:
    result.signer = result.signer or common_name(signer_cert)
    result.seal_name = result.seal_name or seal.name
    result.es_id = result.es_id or seal.es_id
    if signed_at is not None and not result.signed_at:
        result.signed_at = _iso(signed_at)
    if result.seal_picture_png is None:
        result.seal_picture_png = picture_png(seal)


def check_seal(result: SignatureResult, seal: Seal, signer_cert: bytes, signed_at: datetime | None,
               trust: TrustStore | None, status_lookup: SealStatusLookup | None) -> None:
    """Checks of the seal (电子印章) used by ``signer_cert`` at ``signed_at``."""
    _describe(result, seal, signer_cert, signed_at)
    what = ("DER(SEQUENCE{SES_SealInfo, cert, signatureAlgorithm})" if seal.version == 1
            else "DER(SES_SealInfo)")
    check_signature(result, "maker_signature", "seal maker", seal.maker_cert, seal.sign_alg,
                     seal.signed_value, seal.signed_bytes, what, same_in_every_document=True)
    _signer_in_cert_list(result, seal, signer_cert)
    _seal_validity(result, seal, signed_at)
    check_cert_validity(result, signer_cert, signed_at)
    check_chain(result, "signer_chain", "signer", signer_cert, signed_at, trust)
    check_chain(result, "maker_chain", "seal maker", seal.maker_cert, seal.create_date, trust)
    _seal_status(result, seal, signed_at, status_lookup)


def check_ses_signature(result: SignatureResult, sig: SesSignature, expected_data_hash: bytes | None,
                        trust: TrustStore | None, status_lookup: SealStatusLookup | None,
                        use_lookup: SignatureUseLookup | None = None) -> None:
    """All checks of an electronic signature with a seal (电子签章): dataHash, the signer's
    signature over TBS_Sign, the signing time (proven by the timeStamp token or only claimed, see
    :mod:`stamping.verdict.signing_time`), then :func:`check_seal` at that time."""
    from stamping.verdict.signing_time import check_recorded_use, judge_signing_time

    claimed = sig.time_info if isinstance(sig.time_info, datetime) else None
    if expected_data_hash is not None:
        if sig.data_hash == expected_data_hash:
            result.add("data_hash", True, "dataHash matches the SM3 digest of the signed data")
        else:
            result.add("data_hash", False, f"dataHash {sig.data_hash.hex()} does not match the digest of the "
                                           f"signed data {expected_data_hash.hex()}: the data was changed")
    check_signature(result, "signer_signature", "signer", sig.signer_cert, sig.sign_alg, sig.signature,
                     sig.signed_bytes, "DER(TBS_Sign)")
    signed_at = judge_signing_time(result, claimed=claimed, token=sig.time_stamp, signature_value=sig.signature,
                                   signer_cert=sig.signer_cert, seal=sig.seal, trust=trust,
                                   status_lookup=status_lookup)
    check_seal(result, sig.seal, sig.signer_cert, signed_at, trust, status_lookup)
    check_recorded_use(result, sig.seal.es_id, sig.signature, use_lookup)
