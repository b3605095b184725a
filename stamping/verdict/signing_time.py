"""验章: when was a signature made — proven by a time-stamp token, or only claimed by the signer.

A signature's own time (TBS_Sign.timeInfo, the CMS signingTime, /M) is written by whoever holds
the key. Someone who kept a seal's key after the seal was revoked, reported lost or expired can
sign "yesterday". So (Issue 12, trusted time):

- a **valid token from a trusted TSA** over the signature value (RFC 3161; OFD: SES_Signature
  ``timeStamp``, PDF: the signature-time-stamp unsigned attribute) makes its genTime the signing
  time: validity windows, chains and the registry status are judged then (check ``timestamp``,
  kind ``trust``);
- a token that is **broken** (its signature, its imprint or its structure) is an integrity
  failure: someone attached a forged or foreign token;
- a token that is intact but **not from a trusted TSA** (unknown issuer, no timeStamping EKU)
  proves nothing: a ``warning`` check, and the time is treated as claimed;
- with only a **claimed** time, the seal must not be revoked, suspended, lost or expired *now*,
  nor the signer certificate expired now (check ``signing_time``, kind ``status``): the claim
  cannot move a signature back into a validity that has ended. When nothing ended, the check
  passes with the caveat "claimed, not proven" in its reason — third-party files without tokens
  keep their verdicts.

:func:`check_recorded_use` is the registry's side: a signature with one of OUR seals must be
recorded as a use (``seal.use``) in the audit log, found by the SM3 of its signature value
through the injected :data:`stamping.verdict.result.SignatureUseLookup`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from asn1crypto import x509

from gmpki.gm.sm3 import sm3
from gmpki.pki.timestamp import verify_token
from stamping.verdict.result import SealStatus, SealStatusLookup, SignatureResult, SignatureUseLookup

if TYPE_CHECKING:
    from gmpki.pki.trust import TrustStore
    from stamping.ses.model import Seal

__all__ = ["FUTURE_TOLERANCE", "check_recorded_use", "judge_signing_time"]

FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the TSA and this verifier


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@lru_cache(maxsize=256)
def _not_after(cert_der: bytes) -> datetime | None:
    try:
        return x509.Certificate.load(cert_der)["tbs_certificate"]["validity"]["not_after"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        return None


def _ended_now(seal: Seal | None, signer_cert: bytes, status_lookup: SealStatusLookup | None,
               now: datetime) -> list[str]:
    """What has ended by ``now``: the seal's registry status, its validity, the signer certificate."""
    ended: list[str] = []
    if seal is not None:
        if status_lookup is not None:
            status = status_lookup(seal.es_id, now)
            if status is not None and SealStatus(status) is not SealStatus.ACTIVE:
                ended.append(f"seal {seal.es_id} is {SealStatus(status).value} now")
        if seal.valid_end < now:
            ended.append(f"seal {seal.es_id} expired on {_iso(seal.valid_end)}")
    end = _not_after(bytes(signer_cert))
    if end is not None and end < now:
        ended.append(f"the signer certificate expired on {_iso(end)}")
    return ended


def judge_signing_time(result: SignatureResult, *, claimed: datetime | None, token: bytes | None,
                       signature_value: bytes, signer_cert: bytes, seal: Seal | None, trust: TrustStore | None,
                       status_lookup: SealStatusLookup | None, now: datetime | None = None) -> datetime | None:
    """Add the ``timestamp`` (when a token is present) and ``signing_time`` checks; return the time
    at which the signature is to be judged: genTime when proven, else the claimed time."""
    now = now or datetime.now(UTC)
    result.signature_sm3 = sm3(signature_value).hex()
    if token is not None:
        check = verify_token(token, signature_value, trust)
        if check.proven and check.gen_time is not None and check.gen_time > now + FUTURE_TOLERANCE:
            result.add("timestamp", False, f"time-stamp token dated {_iso(check.gen_time)}, in the future: "
                                           "the TSA's clock is wrong, the token proves nothing", "warning")
        elif check.proven and check.gen_time is not None:
            result.add("timestamp", True, check.reason, "trust")
            note = ""
            if claimed is not None and abs((claimed - check.gen_time).total_seconds()) > 600:
                note = f"; the signer claimed {_iso(claimed)}, which is not what is judged"
            result.add("signing_time", True, f"proven by the time-stamp token: {_iso(check.gen_time)}{note}",
                       "status")
            return check.gen_time
        elif not check.intact:
            result.add("timestamp", False, f"time-stamp token invalid: {check.reason}", "integrity")
        else:
            result.add("timestamp", False, f"time-stamp token does not prove the time: {check.reason}", "warning")
    if claimed is None:
        result.add("signing_time", False, "signing time unknown: neither a readable claimed time nor a valid "
                                          "time-stamp token", "status")
        return None
    ended = _ended_now(seal, signer_cert, status_lookup, now)
    if ended:
        result.add("signing_time", False, f"signing time not proven: {_iso(claimed)} is only claimed by the signer "
                                          f"(no valid time-stamp token from a trusted TSA), and "
                                          + "; ".join(ended), "status")
    else:
        result.add("signing_time", True, f"claimed by the signer ({_iso(claimed)}), not proven by a time-stamp "
                                         "token", "status")
    return claimed


def check_recorded_use(result: SignatureResult, es_id: str, signature_value: bytes,
                       use_lookup: SignatureUseLookup | None) -> None:
    """With the registry: a signature made with one of our seals must be an audited use."""
    if use_lookup is None or not es_id:
        return
    recorded = use_lookup(es_id, signature_value)
    if recorded is None:
        return  # not one of our seals: nothing to find in our audit log
    if recorded:
        result.add("use_recorded", True, f"recorded as a use of seal {es_id} in the audit log", "status")
    else:
        result.add("use_recorded", False, f"not recorded as a use of seal {es_id} in the audit log: the signature "
                                          "was not made by SealFlow (a copy of the seal's key?)", "status")
