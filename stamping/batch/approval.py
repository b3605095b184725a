"""Seal-use approval (用章审批): the seal's keeper approves one batch's use with a one-time code.

Decisions behind it:

- **One approval per batch, bound to one run.** The request row is keyed by the batch and carries the
  Airflow run that owns the batch; an answer given for another run is refused. A decided approval is
  final: asking again returns the decision, it never turns "already approved" into a pass for any code.
- **Only the keeper decides.** The answer carries the authenticated responder (Airflow's user); anybody
  else is refused, and the caller audits the attempt. A stranger's answer costs the keeper no try.
- **The code is a keyed MAC, never a hash.** A 6-digit code has 10^6 values: any unkeyed or salted hash
  is cracked in a second by whoever reads the database. We store HMAC-SM3 under a server secret held in
  a 0600 file outside the database (``approval-mac.key``); the MAC also binds the batch, so a stored MAC
  cannot be replayed on another request.
- **The wrong-try counter belongs to the approval.** Asking again (a new code, when the SMS was lost or
  the task was restarted) invalidates the old code and keeps the count; :data:`MAX_ATTEMPTS` wrong codes
  refuse the batch. A wrong code below the limit leaves the approval pending: the keeper tries again.
- **A code is used once and expires when the SMS says.** On success the MAC is wiped; the expiry written
  in the message is the one checked.

Every final decision — approval, refusal, expiry, too many wrong codes — is returned so the caller
audits it; intermediate outcomes (a wrong code, a stranger answering) are returned too.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from stamping.batch.models import SealUseApproval
from stamping.batch.sms import SmsGateway

CODE_TTL = timedelta(minutes=30)
MAX_ATTEMPTS = 5
MAC_SCHEME = "hmac-sm3-v1"
FINAL_STATES = ("approved", "refused", "expired")


class ApprovalError(Exception):
    """The approval cannot be asked or answered as requested; the message says why and what to do."""


@dataclass(frozen=True)
class Decision:
    """The outcome of one answer. ``final`` is False while the keeper may still try (wrong code,
    an answer from someone else); ``approved`` is True only for a final approval."""

    request_id: str
    batch_id: str
    es_id: str
    approved: bool
    decided_by: str
    reason: str
    final: bool = True
    outcome: str = ""  # approved | refused | expired | limit | wrong_code | not_keeper | wrong_run
    recorded_now: bool = True  # False when the approval was decided before (nothing new to audit)


def load_mac_key(path: Path) -> bytes:
    """The server secret of the code MACs: 32 random bytes in a 0600 file, made on first use.

    Refused when others can read it (like the KEK file): the key is what makes the stored MACs useless
    to someone holding the database.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it between our check and open
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ApprovalError(f"approval MAC key {path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        raise ApprovalError(f"approval MAC key {path} is not hexadecimal") from None
    if len(key) < 32:
        raise ApprovalError(f"approval MAC key {path} holds fewer than 32 bytes")
    return key


def code_mac(key: bytes, request_id: str, code: str) -> str:
    """HMAC-SM3 of the code, bound to its request (so a MAC copied to another row never matches)."""
    message = f"{MAC_SCHEME}\0{request_id}\0{code.strip()}".encode()
    return hmac.new(key, message, "sm3").hexdigest()


def request_id_of(batch_id: str) -> str:
    return f"approval:{batch_id}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def request_approval(
    session: Session, *, batch_id: str, run_id: str, es_id: str, keeper: str, keeper_phone: str, requester: str,
    documents: int, gateway: SmsGateway, mac_key: bytes, now: datetime | None = None,
) -> SealUseApproval:
    """Create the batch's approval request, or ask again while it is pending; text a new code.

    A decided request is returned as it is (no code is sent). Asking again invalidates the previous
    code but keeps the wrong-try counter. The run that asks must be the run that owns the request.
    """
    now = now or datetime.now(UTC)
    request_id = request_id_of(batch_id)
    req = session.get(SealUseApproval, request_id, with_for_update=True)
    if req is not None and req.run_id != run_id:
        raise ApprovalError(f"the approval of batch {batch_id} belongs to run {req.run_id}, not {run_id}; "
                            f"submit the documents under a new batch id")
    if req is not None and req.state in FINAL_STATES:
        return req
    if req is None:
        req = SealUseApproval(request_id=request_id, batch_id=batch_id, run_id=run_id, es_id=es_id, keeper=keeper,
                              requester=requester, documents=documents, attempts=0, state="pending",
                              decided_by="", reason="", code_salt=MAC_SCHEME, code_digest="", expires_at=now)
        session.add(req)
    code = f"{secrets.randbelow(10**6):06d}"
    expires = now + CODE_TTL
    req.code_salt = MAC_SCHEME
    req.code_digest = code_mac(mac_key, request_id, code)
    req.expires_at = expires
    req.asked = (req.asked or 0) + 1
    session.flush()
    # The text names the batch (a keeper may have several waiting) and the expiry that decide() checks.
    gateway.send(keeper_phone, approval_message(batch_id=batch_id, es_id=es_id, documents=documents,
                                                requester=requester, code=code, expires=expires))
    return req


def approval_message(*, batch_id: str, es_id: str, documents: int, requester: str, code: str,
                     expires: datetime) -> str:
    local = _aware(expires).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"【SealFlow】用章审批 batch {batch_id}, seal {es_id}, {documents} documents, requested by "
            f"{requester}. One-time code {code}, valid until {local}. Never share it.")


def decide(
    session: Session, *, batch_id: str, run_id: str, approve: bool, code: str, responder: str, mac_key: bytes,
    now: datetime | None = None, refusal: str = "",
) -> Decision:
    """Record one answer to the batch's approval.

    Only the keeper may answer, only for the run that owns the approval. A refusal needs no code; the
    keeper's ``refusal`` reason (free text, at most 500 characters) is kept with it. A wrong code
    below the limit is not final: the keeper tries again in the same approval.
    """
    now = now or datetime.now(UTC)
    request_id = request_id_of(batch_id)
    req = session.get(SealUseApproval, request_id, with_for_update=True)
    if req is None:
        raise ApprovalError(f"batch {batch_id} has no approval request")
    if req.run_id != run_id:
        return _interim(req, responder, f"the approval of batch {batch_id} belongs to run {req.run_id}, "
                                        f"not {run_id}", "wrong_run")
    if req.state in FINAL_STATES:
        return _as_decision(req)
    if responder != req.keeper:
        return _interim(req, responder, f"{responder or 'an unknown user'} is not the keeper of seal {req.es_id}; "
                                        f"only {req.keeper} can answer", "not_keeper")
    if not approve:
        said = " ".join(refusal.split())[:500]
        return _close(req, "refused", responder, f"the keeper refused the use{': ' + said if said else ''}", now,
                      "refused")
    if now > _aware(req.expires_at):
        return _close(req, "expired", responder, "the one-time code expired before it was entered", now, "expired")
    req.attempts += 1
    if req.code_digest and hmac.compare_digest(code_mac(mac_key, request_id, code), req.code_digest):
        return _close(req, "approved", responder, "approved with the one-time code", now, "approved")
    if req.attempts >= MAX_ATTEMPTS:
        return _close(req, "refused", responder, f"{MAX_ATTEMPTS} wrong one-time codes", now, "limit")
    session.flush()
    left = MAX_ATTEMPTS - req.attempts
    return _interim(req, responder, f"wrong one-time code ({left} {'try' if left == 1 else 'tries'} left)",
                    "wrong_code")


def _interim(req: SealUseApproval, who: str, reason: str, outcome: str) -> Decision:
    return Decision(req.request_id, req.batch_id, req.es_id, False, who, reason, final=False, outcome=outcome)


def _as_decision(req: SealUseApproval) -> Decision:
    return Decision(req.request_id, req.batch_id, req.es_id, req.state == "approved", req.decided_by, req.reason,
                    final=True, outcome=req.state, recorded_now=False)


def _close(req: SealUseApproval, state: str, who: str, reason: str, now: datetime, outcome: str) -> Decision:
    req.state, req.decided_by, req.reason, req.decided_at = state, who, reason, now
    req.code_digest = ""  # a used or dead code is gone: nothing left to match, or to crack
    return Decision(req.request_id, req.batch_id, req.es_id, state == "approved", who, reason, final=True,
                    outcome=outcome)


def expire(session: Session, *, batch_id: str, reason: str, now: datetime | None = None) -> Decision | None:
    """Close a pending approval that nobody answered in time (the task's response timeout)."""
    req = session.get(SealUseApproval, request_id_of(batch_id), with_for_update=True)
    if req is None:
        return None
    if req.state in FINAL_STATES:
        return _as_decision(req)
    return _close(req, "expired", "sealflow", reason, now or datetime.now(UTC), "expired")


def current(session: Session, batch_id: str) -> SealUseApproval | None:
    return session.get(SealUseApproval, request_id_of(batch_id))


def is_approved(session: Session, batch_id: str, run_id: str | None = None) -> bool:
    """Whether the batch's use is approved (for ``run_id`` when given: an approval belongs to one run)."""
    req = current(session, batch_id)
    return req is not None and req.state == "approved" and (run_id is None or req.run_id == run_id)
