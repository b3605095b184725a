"""Seal-use approval (用章审批): the seal's keeper approves one batch's use with a one-time code.

The code goes to the keeper through an :class:`~stamping.batch.sms.SmsGateway`; only its salted
SM3 digest is stored. A code is good for one request, expires, and allows a few attempts. Every
decision — approval, refusal, expiry, too many wrong codes — is returned so the caller audits it.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from stamping.batch.models import SealUseApproval
from stamping.batch.sms import SmsGateway
from stamping.gm.sm3 import sm3

CODE_TTL = timedelta(minutes=30)
MAX_ATTEMPTS = 5
CODE_RE = re.compile(r"(\d{6})")


class ApprovalError(Exception):
    """The approval cannot be recorded as asked (unknown request, already decided...)."""


@dataclass(frozen=True)
class Decision:
    request_id: str
    batch_id: str
    es_id: str
    approved: bool
    decided_by: str
    reason: str


def _digest(salt: str, code: str) -> str:
    return sm3(bytes.fromhex(salt) + code.encode()).hex()


def request_approval(
    session: Session, *, batch_id: str, es_id: str, keeper: str, keeper_phone: str, requester: str,
    documents: int, gateway: SmsGateway, now: datetime | None = None,
) -> str:
    """Create (or reuse, when still pending) the approval request of a batch and text its code."""
    now = now or datetime.now(UTC)
    request_id = f"{batch_id}:{es_id}"
    existing = session.get(SealUseApproval, request_id)
    if existing is not None and existing.state != "pending":
        return request_id
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(16)
    if existing is None:
        existing = SealUseApproval(request_id=request_id, batch_id=batch_id, es_id=es_id, keeper=keeper,
                                   requester=requester, documents=documents, attempts=0, state="pending",
                                   decided_by="", reason="")
        session.add(existing)
    existing.code_salt = salt
    existing.code_digest = _digest(salt, code)
    existing.expires_at = now + CODE_TTL
    existing.attempts = 0
    session.flush()
    gateway.send(keeper_phone, f"【SealFlow】用章审批 batch {batch_id}, seal {es_id}, {documents} documents, "
                               f"requested by {requester}. One-time code {code}, valid 30 minutes.")
    return request_id


def decide(
    session: Session, *, request_id: str, approve: bool, code: str, decided_by: str,
    now: datetime | None = None,
) -> Decision:
    """Record the keeper's answer. Approval needs the right code; a refusal needs none."""
    now = now or datetime.now(UTC)
    req = session.get(SealUseApproval, request_id, with_for_update=True)
    if req is None:
        raise ApprovalError(f"no approval request {request_id}")
    if req.state != "pending":
        return Decision(req.request_id, req.batch_id, req.es_id, req.state == "approved", req.decided_by,
                        req.reason or f"already {req.state}")
    expires = req.expires_at if req.expires_at.tzinfo else req.expires_at.replace(tzinfo=UTC)
    if not approve:
        return _close(req, "refused", decided_by, "the keeper refused the use", now)
    if now > expires:
        return _close(req, "expired", decided_by, "the one-time code expired before it was entered", now)
    req.attempts += 1
    if hmac.compare_digest(_digest(req.code_salt, code.strip()), req.code_digest):
        return _close(req, "approved", decided_by, "approved with the one-time code", now)
    if req.attempts >= MAX_ATTEMPTS:
        return _close(req, "refused", decided_by, f"{MAX_ATTEMPTS} wrong one-time codes", now)
    session.flush()
    return Decision(req.request_id, req.batch_id, req.es_id, False, decided_by,
                    f"wrong one-time code ({MAX_ATTEMPTS - req.attempts} attempts left)")


def _close(req: SealUseApproval, state: str, who: str, reason: str, now: datetime) -> Decision:
    req.state, req.decided_by, req.reason, req.decided_at = state, who, reason, now
    return Decision(req.request_id, req.batch_id, req.es_id, state == "approved", who, reason)


def is_approved(session: Session, batch_id: str, es_id: str) -> bool:
    req = session.get(SealUseApproval, f"{batch_id}:{es_id}")
    return req is not None and req.state == "approved"
