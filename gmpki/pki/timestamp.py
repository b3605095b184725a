"""RFC 3161 time-stamp tokens (可信时间戳) signed with SM2/SM3: request, issue, read and verify.

A signer's own signing time is a claim. A TimeStampToken from a trusted time-stamp authority
(TSA, 时间戳服务) proves that a signature value existed at the token's ``genTime``: the token is a
CMS SignedData whose content is a TSTInfo holding the hash of the signature value (its
``messageImprint``), signed by the TSA. GM/T 0033 describes the SM2 variant; here:

- the imprint is SM3 over the signature value (SHA-256 imprints are read too: other TSAs use it);
- the token's SignerInfo uses digest SM3 and signature SM2-with-SM3 (default user id), with the
  signed attributes contentType (id-ct-TSTInfo), messageDigest and signingCertificateV2 (ESS, SM3
  of the TSA certificate: which certificate signed, so a token cannot be re-attributed);
- a TSA certificate is trusted when it chains to the trust roots at ``genTime`` and carries a
  *critical* extendedKeyUsage with id-kp-timeStamping (RFC 3161 §2.3).

:func:`verify_token` separates a token that is *broken* (bad signature, wrong imprint, malformed:
``intact`` False) from one that is intact but *not trusted* (unknown issuer, no timeStamping
EKU). Only a token that is both proves the time. Nothing here touches the network: the HTTP
client is :mod:`gmpki.pki.tsa_client`, the server the program :mod:`stamping.tsa.server`.

Everything is built with asn1crypto except the bytes SM2 signs, which are taken verbatim from
what was parsed (never re-encoded), as for every other signature in SealFlow.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from asn1crypto import cms, core, tsp, x509

import gmpki.pki  # noqa: F401  (registers GM OIDs with asn1crypto)
from gmpki.gm.oids import SM2_SIGN, SM2_WITH_SM3, SM3
from gmpki.gm.sm2 import SM2PublicKey
from gmpki.gm.sm3 import sm3
from gmpki.pki.der import attribute, display_name, oid_der, signer_certificate, tlv

if TYPE_CHECKING:
    from gmpki.keys.signer import Signer
    from gmpki.pki.trust import TrustStore

__all__ = [
    "SEALFLOW_TSA_POLICY",
    "SIGNATURE_TIME_STAMP_ATTR",
    "TIME_STAMPING_EKU",
    "TST_INFO",
    "TimestampAuthority",
    "TimestampError",
    "TokenCheck",
    "TokenInfo",
    "imprint_of",
    "parse_request",
    "read_token",
    "request_der",
    "token_from_response",
    "verify_token",
]

TST_INFO = "1.2.840.113549.1.9.16.1.4"  # id-ct-TSTInfo
SIGNATURE_TIME_STAMP_ATTR = "1.2.840.113549.1.9.16.2.14"  # id-aa-signatureTimeStampToken (RFC 3161 App. A)
TIME_STAMPING_EKU = "1.3.6.1.5.5.7.3.8"  # id-kp-timeStamping
SHA256 = "2.16.840.1.101.3.4.2.1"
# SealFlow's TSA policy (UUID arc 2.25, X.667); a provincial TSA has its own.
SEALFLOW_TSA_POLICY = "2.25.253411405618416960357211929735218563930"
MAX_TOKEN_BYTES = 64 * 1024
_HASHES: dict[str, Callable[[bytes], bytes]] = {
    SM3: sm3,
    SHA256: lambda data: hashlib.sha256(data).digest(),
}
_SIGNATURE_OIDS = {SM2_WITH_SM3, SM2_SIGN}
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


class TimestampError(ValueError):
    """A request, response or token that is not what RFC 3161 (and we) expect; says why."""


def imprint_of(data: bytes, hash_oid: str = SM3) -> bytes:
    """The messageImprint hash of ``data`` (the signature value) with the named algorithm."""
    try:
        return _HASHES[hash_oid](data)
    except KeyError:
        raise TimestampError(f"unsupported imprint hash algorithm {hash_oid}") from None


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


# --- requests ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TsRequest:
    """A parsed TimeStampReq."""

    hash_oid: str
    imprint: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None


def request_der(imprint: bytes, nonce: int | None = None, hash_oid: str = SM3, cert_req: bool = True) -> bytes:
    """DER TimeStampReq (application/timestamp-query) for an imprint computed with ``hash_oid``."""
    fields: dict = {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": hash_oid},
                                                          "hashed_message": imprint},
                    "cert_req": cert_req}
    if nonce is not None:
        fields["nonce"] = nonce
    return tsp.TimeStampReq(fields).dump()


def parse_request(der: bytes) -> TsRequest:
    """Parse a TimeStampReq strictly; raises TimestampError naming what is wrong."""
    try:
        req = tsp.TimeStampReq.load(der, strict=True)
        if req["version"].native != "v1":
            raise TimestampError(f"TimeStampReq version {req['version'].native} (expected 1)")
        mi = req["message_imprint"]
        policy = req["req_policy"]
        nonce = req["nonce"]
        return TsRequest(mi["hash_algorithm"]["algorithm"].dotted, mi["hashed_message"].native,
                         None if isinstance(nonce, core.Void) else nonce.native, bool(req["cert_req"].native),
                         None if isinstance(policy, core.Void) else policy.dotted)
    except TimestampError:
        raise
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"not a DER TimeStampReq: {exc}") from None


# --- the authority's side -----------------------------------------------------------------------

CONTENT_TYPE_ATTR = "1.2.840.113549.1.9.3"
MESSAGE_DIGEST_ATTR = "1.2.840.113549.1.9.4"
SIGNING_CERTIFICATE_V2_ATTR = "1.2.840.113549.1.9.16.2.47"


_OID_TST_INFO = oid_der(TST_INFO)
_OID_SIGNED_DATA = oid_der("1.2.840.113549.1.7.2")
_SM3_ALG = tlv(0x30, oid_der(SM3) + b"\x05\x00")
_SM2_ALG = tlv(0x30, oid_der(SM2_WITH_SM3))


class TimestampAuthority:
    """Issues tokens with ``signer`` (the TSA key and certificate); ``chain``: certificates to
    include after the TSA's own (e.g. the issuing CA), ``clock``: where genTime comes from."""

    def __init__(self, signer: Signer, chain: Sequence[bytes] = (), policy: str = SEALFLOW_TSA_POLICY,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._signer = signer
        self._cert = x509.Certificate.load(signer.certificate)
        self.policy = policy
        self._clock = clock or (lambda: datetime.now(UTC))
        ess = tsp.SigningCertificateV2({"certs": [{
            "hash_algorithm": {"algorithm": SM3}, "cert_hash": sm3(signer.certificate),
            "issuer_serial": {"issuer": [x509.GeneralName("directory_name", self._cert.issuer)],
                              "serial_number": self._cert.serial_number}}]})
        self._ess_attr = attribute(SIGNING_CERTIFICATE_V2_ATTR, ess.dump())
        self._sid = cms.IssuerAndSerialNumber({"issuer": self._cert.issuer,
                                               "serial_number": self._cert.serial_number}).dump()
        self._certs_der = tlv(0xA0, b"".join((signer.certificate, *(bytes(c) for c in chain))))

    def __repr__(self) -> str:
        return f"TimestampAuthority({self._cert.subject.human_friendly!r})"

    @property
    def certificate(self) -> bytes:
        return self._signer.certificate

    def issue(self, imprint: bytes, hash_oid: str = SM3, nonce: int | None = None, cert_req: bool = True,
              at: datetime | None = None) -> bytes:
        """DER TimeStampToken (ContentInfo) over ``imprint``."""
        if hash_oid not in _HASHES:
            raise TimestampError(f"unsupported imprint hash algorithm {hash_oid}")
        if len(imprint) != len(_HASHES[hash_oid](b"")):
            raise TimestampError(f"imprint of {len(imprint)} bytes does not fit {hash_oid}")
        gen_time = _utc(at or self._clock()).replace(microsecond=0)
        info: dict = {"version": "v1", "policy": self.policy,
                      "message_imprint": {"hash_algorithm": {"algorithm": hash_oid}, "hashed_message": imprint},
                      "serial_number": secrets.randbits(127) | 1, "gen_time": gen_time,
                      "accuracy": {"seconds": 1}, "ordering": False}
        if nonce is not None:
            info["nonce"] = nonce
        tst_der = tsp.TSTInfo(info).dump()
        # The constant parts (certificates, sid, ESS attribute) are DER made once in __init__;
        # asn1crypto re-encoding the certificates on every token cost ~45 ms.
        attrs = sorted((attribute(CONTENT_TYPE_ATTR, _OID_TST_INFO), attribute(MESSAGE_DIGEST_ATTR,
                        tlv(0x04, sm3(tst_der))), self._ess_attr))
        signed_attrs = tlv(0x31, b"".join(attrs))  # SET OF, DER-sorted: what the signature covers
        signer_info = tlv(0x30, b"".join((
            b"\x02\x01\x01", self._sid, _SM3_ALG, b"\xa0" + signed_attrs[1:], _SM2_ALG,
            tlv(0x04, self._signer.sign(signed_attrs)))))
        encap = tlv(0x30, _OID_TST_INFO + tlv(0xA0, tlv(0x04, tst_der)))
        certs = self._certs_der if cert_req else b""
        signed_data = tlv(0x30, b"".join((b"\x02\x01\x03", tlv(0x31, _SM3_ALG), encap, certs,
                                           tlv(0x31, signer_info))))
        return tlv(0x30, _OID_SIGNED_DATA + tlv(0xA0, signed_data))

    def timestamp(self, signature_value: bytes) -> bytes:
        """A token over SM3(``signature_value``): an in-process Timestamper (see tsa_client)."""
        return self.issue(imprint_of(signature_value, SM3))

    def respond(self, request: bytes) -> bytes:
        """DER TimeStampResp (application/timestamp-reply) to a DER TimeStampReq: granted with a
        token, or rejection with a PKIFailureInfo (badAlg, badDataFormat, unacceptedPolicy)."""
        try:
            req = parse_request(request)
        except TimestampError as exc:
            return _rejection("bad_data_format", str(exc))
        if req.hash_oid not in _HASHES:
            return _rejection("bad_alg", f"imprint hash algorithm {req.hash_oid} is not supported (use SM3)")
        if req.policy is not None and req.policy != self.policy:
            return _rejection("unaccepted_policy", f"policy {req.policy} is not this TSA's ({self.policy})")
        try:
            token = self.issue(req.imprint, req.hash_oid, req.nonce, req.cert_req)
        except TimestampError as exc:
            return _rejection("bad_data_format", str(exc))
        except Exception:  # a signer fault: the client gets a refusal, never a broken reply
            return _rejection("system_failure", "the TSA could not sign; try again later")
        return tsp.TimeStampResp({"status": {"status": "granted"},
                                  "time_stamp_token": cms.ContentInfo.load(token)}).dump()


class _TimeStampResp(core.Sequence):
    """TimeStampResp with the token OPTIONAL, as RFC 3161 has it (asn1crypto's requires it)."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]


def _rejection(fail: str, text: str) -> bytes:
    # By hand: asn1crypto's TimeStampResp does not let the token be absent, as a rejection needs.
    status = tsp.PKIStatusInfo({"status": "rejection", "status_string": [text], "fail_info": {fail}}).dump()
    return tlv(0x30, status)


def token_from_response(response: bytes, imprint: bytes, nonce: int | None, hash_oid: str = SM3) -> bytes:
    """The token of a granted TimeStampResp, after checking it answers *our* request (same
    imprint, same nonce). Its signature and TSA are judged by :func:`verify_token` later."""
    try:
        resp = _TimeStampResp.load(response, strict=True)
        status = resp["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            texts = resp["status"]["status_string"]
            why = "; ".join(texts.native) if not isinstance(texts, core.Void) else ""
            fail = resp["status"]["fail_info"]
            fails = ", ".join(sorted(fail.native)) if not isinstance(fail, core.Void) else ""
            raise TimestampError(f"the TSA refused: {status}" + (f" ({fails})" if fails else "")
                                 + (f": {why}" if why else ""))
        token = resp["time_stamp_token"]
        if isinstance(token, core.Void):
            raise TimestampError("the TSA granted but sent no token")
        der = token.dump()
    except TimestampError:
        raise
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"not a DER TimeStampResp: {exc}") from None
    info = read_token(der)
    if info.hash_oid != hash_oid or info.imprint != imprint:
        raise TimestampError("the TSA's token is for another imprint than the one requested")
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("the TSA's token carries another nonce than the request (a replayed answer?)")
    return der


# --- reading and verifying tokens ---------------------------------------------------------------

@dataclass
class TokenInfo:
    """What a token says, with the exact bytes that were signed."""

    gen_time: datetime
    hash_oid: str
    imprint: bytes
    serial: int
    policy: str
    nonce: int | None
    tst_der: bytes = field(repr=False)
    digest_oid: str = ""
    signature_oid: str = ""
    signature: bytes = field(default=b"", repr=False)
    signed_attrs_der: bytes = field(default=b"", repr=False)
    content_type: str | None = None
    message_digest: bytes | None = field(default=None, repr=False)
    ess_cert_hashes: list[tuple[str, bytes]] = field(default_factory=list, repr=False)
    tsa_cert: bytes | None = field(default=None, repr=False)
    certificates: list[bytes] = field(default_factory=list, repr=False)


def _split_certificates(field: core.Asn1Value) -> list[bytes]:
    """The certificates of SignedData.certificates as raw DER, split by hand: asn1crypto parsing
    them on every token was most of a token's verification. Only plain certificates (tag 0x30)."""
    if isinstance(field, core.Void):
        return []
    data, pos, out = field.contents, 0, []
    while pos < len(data):
        tag, first = data[pos], data[pos + 1]
        if first < 0x80:
            start, length = pos + 2, first
        else:
            k = first & 0x7F
            if not 0 < k <= 4:
                raise TimestampError("bad DER length in the token's certificates")
            start, length = pos + 2 + k, int.from_bytes(data[pos + 2:pos + 2 + k], "big")
        end = start + length
        if end > len(data):
            raise TimestampError("truncated certificate in the token")
        if tag == 0x30:
            out.append(bytes(data[pos:end]))
        pos = end
    return out


def read_token(token: bytes) -> TokenInfo:
    """Parse a TimeStampToken (ContentInfo{SignedData{TSTInfo}}); raises TimestampError."""
    if not isinstance(token, bytes | bytearray) or not token:
        raise TimestampError("empty time-stamp token")
    if len(token) > MAX_TOKEN_BYTES:
        raise TimestampError(f"time-stamp token of {len(token)} bytes exceeds {MAX_TOKEN_BYTES}")
    try:
        ci = cms.ContentInfo.load(bytes(token), strict=True)
        if ci["content_type"].native != "signed_data":
            raise TimestampError(f"token content type {ci['content_type'].dotted} is not signedData")
        sd = ci["content"]
        encap = sd["encap_content_info"]
        if encap["content_type"].dotted != TST_INFO:
            raise TimestampError(f"token content {encap['content_type'].dotted} is not a TSTInfo")
        content = encap["content"]
        if isinstance(content, core.Void):
            raise TimestampError("token without its TSTInfo")
        tst_der = content.contents if isinstance(content, core.ParsableOctetString) else content.native
        tst = tsp.TSTInfo.load(tst_der, strict=True)
        if tst["version"].native != "v1":
            raise TimestampError(f"TSTInfo version {tst['version'].native} (expected 1)")
        infos = sd["signer_infos"]
        if len(infos) != 1:
            raise TimestampError(f"token with {len(infos)} SignerInfos (expected 1)")
        si = infos[0]
        certs = _split_certificates(sd["certificates"])
        attrs = si["signed_attrs"]
        if isinstance(attrs, core.Void) or not len(attrs):
            raise TimestampError("token SignerInfo without signed attributes")
        values = {a["type"].dotted: a["values"] for a in attrs}
        ct = values.get("1.2.840.113549.1.9.3")
        md = values.get("1.2.840.113549.1.9.4")
        ess: list[tuple[str, bytes]] = []
        for oid, spec in (("1.2.840.113549.1.9.16.2.47", "v2"), ("1.2.840.113549.1.9.16.2.12", "v1")):
            for value in values.get(oid, []):
                for cid in value["certs"]:
                    algo = cid["hash_algorithm"]["algorithm"].dotted if spec == "v2" else "1.3.14.3.2.26"
                    ess.append((algo, cid["cert_hash"].native))
        nonce = tst["nonce"]
        der_attrs = attrs.dump()
        return TokenInfo(
            gen_time=_utc(tst["gen_time"].native),
            hash_oid=tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted,
            imprint=tst["message_imprint"]["hashed_message"].native, serial=tst["serial_number"].native,
            policy=tst["policy"].dotted, nonce=None if isinstance(nonce, core.Void) else nonce.native,
            tst_der=bytes(tst_der), digest_oid=si["digest_algorithm"]["algorithm"].dotted,
            signature_oid=si["signature_algorithm"]["algorithm"].dotted, signature=si["signature"].native,
            signed_attrs_der=b"\x31" + der_attrs[1:] if der_attrs[:1] == b"\xa0" else der_attrs,
            content_type=ct[0].dotted if ct else None, message_digest=md[0].native if md else None,
            ess_cert_hashes=ess, tsa_cert=signer_certificate(si["sid"].dump(), tuple(certs)), certificates=certs,
        )
    except TimestampError:
        raise
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"malformed time-stamp token: {exc}") from None


@dataclass
class TokenCheck:
    """The judgement of one token over one signature value.

    ``intact``: well-formed, the TSA's SM2 signature verifies and the imprint is the hash of the
    signature value. ``trusted``: the TSA certificate chains to a trusted root at genTime and is a
    time-stamping certificate. ``proven`` = both: only then is ``gen_time`` the signing time."""

    intact: bool
    trusted: bool
    reason: str
    gen_time: datetime | None = None
    tsa: str = ""

    @property
    def proven(self) -> bool:
        return self.intact and self.trusted


@lru_cache(maxsize=256)
def _eku_reason(cert_der: bytes) -> str | None:
    """Why a certificate is not a time-stamping certificate, or None when it is one."""
    cert = x509.Certificate.load(cert_der)
    for ext in cert["tbs_certificate"]["extensions"]:
        if ext["extn_id"].dotted == "2.5.29.37":
            purposes = [p.dotted for p in ext["extn_value"].parsed]
            if TIME_STAMPING_EKU not in purposes:
                return "its extendedKeyUsage lacks id-kp-timeStamping"
            if not ext["critical"].native:
                return "its extendedKeyUsage is not critical (RFC 3161 §2.3)"
            return None
    return "it has no extendedKeyUsage with id-kp-timeStamping"


def _check_signature(info: TokenInfo) -> str | None:
    """Why the token's own signature is bad, or None."""
    if info.tsa_cert is None:
        return "the TSA certificate is not in the token"
    if info.digest_oid not in _HASHES:
        return f"token digest algorithm {info.digest_oid} is not supported"
    if info.signature_oid not in _SIGNATURE_OIDS:
        return f"token signature algorithm {info.signature_oid} is not SM2-with-SM3"
    if info.content_type != TST_INFO:
        return "the token's signed contentType is not id-ct-TSTInfo"
    if info.message_digest != _HASHES[info.digest_oid](info.tst_der):
        return "the token's messageDigest does not match its TSTInfo (the TSTInfo was changed)"
    for algo, value in info.ess_cert_hashes:
        if algo in _HASHES and _HASHES[algo](info.tsa_cert) == value:
            break
        if algo == "1.3.14.3.2.26" and hashlib.sha1(info.tsa_cert, usedforsecurity=False).digest() == value:
            break
    else:
        if info.ess_cert_hashes:
            return "the token's signingCertificate attribute names another certificate"
    try:
        key = SM2PublicKey.from_certificate(info.tsa_cert)
    except ValueError as exc:
        return f"the TSA certificate has no SM2 key ({exc})"
    if not key.verify(info.signature, info.signed_attrs_der):
        return "the TSA's SM2 signature on the token does not verify"
    return None


def verify_token(token: bytes, signature_value: bytes, trust: TrustStore | None) -> TokenCheck:
    """Judge ``token`` as proof of when ``signature_value`` existed. Never raises."""
    try:
        info = read_token(token)
    except TimestampError as exc:
        return TokenCheck(False, False, str(exc))
    try:
        expected = imprint_of(signature_value, info.hash_oid)
    except TimestampError as exc:
        return TokenCheck(False, False, str(exc), info.gen_time)
    if info.imprint != expected:
        return TokenCheck(False, False, "the token's messageImprint is not the hash of this signature value "
                                        "(a token of another signature)", info.gen_time)
    try:
        broken = _check_signature(info)
    except _PARSE_ERRORS as exc:
        broken = f"the TSA certificate cannot be read ({exc})"
    if broken:
        return TokenCheck(False, False, broken, info.gen_time)
    assert info.tsa_cert is not None
    tsa = display_name(info.tsa_cert)
    when = info.gen_time.isoformat()
    if trust is None:
        return TokenCheck(True, False, f"token by '{tsa}' at {when}; no trusted roots to judge the TSA", info.gen_time,
                          tsa)
    chain = trust.validate(info.tsa_cert, info.gen_time, extra_intermediates=info.certificates)
    if not chain.ok:
        return TokenCheck(True, False, f"TSA '{tsa}' is not trusted: {chain.reason}", info.gen_time, tsa)
    try:
        eku = _eku_reason(info.tsa_cert)
    except _PARSE_ERRORS as exc:
        eku = f"its extensions cannot be read ({exc})"
    if eku:
        return TokenCheck(True, False, f"'{tsa}' is not a time-stamping authority: {eku}", info.gen_time, tsa)
    return TokenCheck(True, True, f"time-stamped at {when} by trusted TSA '{tsa}'", info.gen_time, tsa)
