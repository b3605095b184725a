"""用章审批 rules in the domain: only the keeper, codes as a keyed MAC, a counter that re-asking never
resets, codes that expire and cannot be reused, an approval that belongs to one run."""

from __future__ import annotations

import logging
import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from gmpki.gm.sm3 import sm3
from kernel.db import session_factory, transaction
from stamping.batch import approval
from stamping.batch.models import SealUseApproval
from stamping.batch.sms import LocalSmsGateway

KEEPER = "keeper"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db_engine: Engine):
    return session_factory(db_engine)


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return approval.load_mac_key(tmp_path / "secrets" / "approval-mac.key")


@pytest.fixture
def outbox(tmp_path: Path) -> LocalSmsGateway:
    return LocalSmsGateway(tmp_path / "sms")


def ask(sessions, key: bytes, outbox: LocalSmsGateway, batch_id: str = "b1", run_id: str = "run-1",
        now: datetime = NOW) -> str:
    """Ask the keeper; returns the code the keeper received for this batch."""
    with transaction(sessions) as session:
        approval.request_approval(session, batch_id=batch_id, run_id=run_id, es_id="4500001", keeper=KEEPER,
                                  keeper_phone=KEEPER, requester="office", documents=3, gateway=outbox,
                                  mac_key=key, now=now)
    message = outbox.last_message(KEEPER) or ""
    assert f"batch {batch_id}," in message
    return re.search(r"code (\d{6})", message).group(1)


def answer(sessions, key: bytes, code: str, *, batch_id: str = "b1", run_id: str = "run-1", who: str = KEEPER,
           approve: bool = True, now: datetime = NOW + timedelta(minutes=1), refusal: str = "") -> approval.Decision:
    with transaction(sessions) as session:
        return approval.decide(session, batch_id=batch_id, run_id=run_id, approve=approve, code=code,
                               responder=who, mac_key=key, now=now, refusal=refusal)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def row(sessions, batch_id: str = "b1") -> SealUseApproval:
    with sessions() as session:
        return session.scalar(select(SealUseApproval).where(SealUseApproval.batch_id == batch_id))


def test_the_code_is_stored_as_a_keyed_mac_not_a_hash(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    stored = row(sessions)
    assert stored.code_digest == approval.code_mac(key, stored.request_id, code)
    assert stored.code_digest != approval.code_mac(os.urandom(32), stored.request_id, code)
    # Whoever holds only the database cannot test the 10^6 codes: no unkeyed digest of any code matches.
    assert stored.code_digest not in {sm3(code.encode()).hex(), sm3(stored.code_salt.encode() + code.encode()).hex()}
    assert code not in repr(stored.__dict__)


def test_the_mac_key_file_is_private_and_refused_when_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "k" / "approval-mac.key"
    first = approval.load_mac_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert approval.load_mac_key(path) == first
    path.chmod(0o644)
    with pytest.raises(approval.ApprovalError, match="readable by others"):
        approval.load_mac_key(path)


def test_a_wrong_code_leaves_the_keeper_another_try_then_the_right_code_approves(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    first = answer(sessions, key, wrong(code))
    assert not first.final and not first.approved and "4 tries left" in first.reason
    second = answer(sessions, key, code)
    assert second.final and second.approved and second.decided_by == KEEPER
    assert row(sessions).attempts == 2


def test_asking_again_sends_a_new_code_and_never_resets_the_counter(sessions, key, outbox) -> None:
    old = ask(sessions, key, outbox)
    for _ in range(3):
        assert answer(sessions, key, wrong(old)).outcome == "wrong_code"
    new = ask(sessions, key, outbox)
    assert row(sessions).attempts == 3 and row(sessions).asked == 2
    if new != old:  # the old code died with the re-ask
        assert answer(sessions, key, old).outcome == "wrong_code"
    else:
        answer(sessions, key, wrong(new))
    last = answer(sessions, key, wrong(new))
    assert last.final and not last.approved and last.outcome == "limit" and "5 wrong" in last.reason
    assert answer(sessions, key, new).approved is False  # the limit is final: not even the right code now


def test_a_used_code_cannot_be_used_again(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    assert answer(sessions, key, code).approved
    assert row(sessions).code_digest == ""  # nothing left to match, or to crack
    # The same digits on another batch's approval do not pass (the MAC binds the request).
    other = ask(sessions, key, outbox, batch_id="b2", run_id="run-2")
    if other != code:
        assert answer(sessions, key, code, batch_id="b2", run_id="run-2").outcome == "wrong_code"
    # Asking again after the approval sends nothing and changes nothing.
    before = len(outbox.messages(KEEPER))
    with transaction(sessions) as session:
        req = approval.request_approval(session, batch_id="b1", run_id="run-1", es_id="4500001", keeper=KEEPER,
                                        keeper_phone=KEEPER, requester="office", documents=3, gateway=outbox,
                                        mac_key=key)
        assert req.state == "approved"
    assert len(outbox.messages(KEEPER)) == before


def test_a_code_expires_when_the_message_says(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    assert "valid until 2026-11-28 12:30 UTC" in (outbox.last_message(KEEPER) or "")
    late = answer(sessions, key, code, now=NOW + approval.CODE_TTL + timedelta(seconds=1))
    assert late.final and not late.approved and late.outcome == "expired"


def test_only_the_keeper_can_answer_and_a_stranger_costs_no_try(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    for who in ("admin", "", "Keeper"):
        refused = answer(sessions, key, code, who=who)
        assert not refused.final and not refused.approved and refused.outcome == "not_keeper"
    assert answer(sessions, key, code, who="admin", approve=False).outcome == "not_keeper"  # nor refuse
    assert row(sessions).attempts == 0 and row(sessions).state == "pending"
    assert answer(sessions, key, code).approved


def test_an_approval_belongs_to_one_run(sessions, key, outbox) -> None:
    code = ask(sessions, key, outbox)
    assert answer(sessions, key, code).approved
    # "already approved" never passes for another run, whatever code it gives.
    other = answer(sessions, key, "000000", run_id="run-2")
    assert not other.approved and other.outcome == "wrong_run"
    with pytest.raises(approval.ApprovalError, match="belongs to run run-1"), transaction(sessions) as session:
        approval.request_approval(session, batch_id="b1", run_id="run-2", es_id="4500001", keeper=KEEPER,
                                  keeper_phone=KEEPER, requester="office", documents=3, gateway=outbox, mac_key=key)
    with sessions() as session:
        assert approval.is_approved(session, "b1", "run-1")
        assert not approval.is_approved(session, "b1", "run-2")


def test_the_keeper_refuses(sessions, key, outbox) -> None:
    ask(sessions, key, outbox)
    refused = answer(sessions, key, "", approve=False)
    assert refused.final and not refused.approved and refused.outcome == "refused"


def test_the_keepers_reason_for_refusing_is_kept_with_the_decision(sessions, key, outbox) -> None:
    ask(sessions, key, outbox)
    refused = answer(sessions, key, "", approve=False, refusal="  名单\n未经核对 " + "x" * 600)
    assert refused.reason.startswith("the keeper refused the use: 名单 未经核对 x")
    assert len(refused.reason) < 560 and row(sessions).reason == refused.reason


def test_no_code_reaches_the_log(sessions, key, outbox, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        code = ask(sessions, key, outbox)
        answer(sessions, key, wrong(code))
        answer(sessions, key, code)
    assert caplog.records, "the gateway logs that it sent a message"
    assert code not in caplog.text and wrong(code) not in caplog.text
