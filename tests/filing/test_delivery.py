"""Filing over real HTTP against the simulator: outages, random errors, dropped replies, tampered
receipts, refusals, order per seal, idempotency and concurrent dispatchers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from filing import protocol as p
from filing.client import PlatformClient, PlatformRejected, PlatformUnavailable, ReceiptInvalid
from filing.dispatcher import Backoff, drain, retry, wire_record
from filing.outbox import DEAD, FAILED, SENT, FilingAttempt, OutboxRecord, enqueue, utcnow
from filing.reconcile import reconcile, status
from kernel.db import transaction

FAST = Backoff(base_s=0.001, cap_s=0.01, max_attempts=50, park_s=0.01, jitter=0.5)
LATER = timedelta(days=1)


def fill(sessions, seal_payload, subjects: int, per_subject: int, prefix: str) -> list[str]:
    """Queue ``per_subject`` events for each of ``subjects`` seals, interleaved as they would happen."""
    ids = []
    kinds = ["seal.make", "seal.suspend", "seal.resume", "seal.change", "seal.revoke"]
    with transaction(sessions) as session:
        for n in range(per_subject):
            for s in range(subjects):
                es_id = f"{prefix}{s:04d}"
                ids.append(enqueue(session, kinds[n % len(kinds)], es_id, seal_payload(es_id)))
    return ids


def rows(sessions) -> dict[str, OutboxRecord]:
    with sessions() as session:
        return {r.record_id: r for r in session.scalars(select(OutboxRecord))}


def assert_all_filed_once(sessions, sim, ids: list[str]) -> None:
    """Every record sent with the platform's original receipt; the platform holds each exactly once,
    and per seal it received them in subject_seq order."""
    mine = rows(sessions)
    stored = sim.stored(set(ids))
    assert {i for i in ids if mine[i].state == SENT} == set(ids)
    assert set(stored) == set(ids)  # none lost
    assert len({(v["subject"], v["subject_seq"]) for v in stored.values()}) == len(ids)  # none twice
    for record_id in ids:
        assert p.canonical(mine[record_id].receipt) == stored[record_id]["receipt"]
        assert p.record_digest(wire_record(mine[record_id])) == stored[record_id]["record_sm3"]
    by_subject: dict[str, list[tuple[int, int]]] = {}
    for v in stored.values():
        by_subject.setdefault(v["subject"], []).append((v["seq"], v["subject_seq"]))
    for seqs in by_subject.values():
        assert [s for _, s in sorted(seqs)] == sorted(s for _, s in seqs)


def test_outage_for_the_whole_run_then_recovery(sessions, sim, client, seal_payload) -> None:
    ids = fill(sessions, seal_payload, subjects=10, per_subject=3, prefix="OUT")
    before = sim.count()
    sim.faults(outage=True)
    now = utcnow()
    for _ in range(3):
        result = drain(sessions, client, now=now, backoff=FAST)
        assert result.sent == 0 and result.failed == 10  # only the head of each seal is tried
        now += LATER
    assert sim.count() == before
    assert all(r.state == FAILED and r.attempts == 3 for r in rows(sessions).values() if r.subject_seq == 1)
    assert "outage" in rows(sessions)[ids[0]].last_error
    sim.faults(outage=False)
    result = drain(sessions, client, now=now, backoff=FAST)
    assert result.sent == 30 and result.failed == result.dead == 0
    assert_all_filed_once(sessions, sim, ids)
    with sessions() as session:
        history = session.scalars(select(FilingAttempt).where(FilingAttempt.record_id == ids[0])).all()
    assert [a.outcome for a in history] == ["unavailable"] * 3 + ["sent"]
    assert history[0].http_status is None or history[0].http_status == 503


@pytest.mark.parametrize("use_batch", [False, True], ids=["single", "batch"])
def test_random_errors_with_latency_all_eventually_sent(sessions, sim, client, seal_payload, use_batch) -> None:
    ids = fill(sessions, seal_payload, subjects=12, per_subject=3, prefix=f"RND{int(use_batch)}")
    sim.faults(error_rate=0.3, latency_ms=5, seed=7)
    now, rounds = utcnow(), 0
    while any(r.state != SENT for r in rows(sessions).values()):
        rounds += 1
        assert rounds <= 60, "records still unsent after 60 drains"
        drain(sessions, client, now=now, backoff=FAST, use_batch=use_batch, batch_size=5, workers=2)
        now += LATER
    assert rounds > 1  # the faults did bite
    assert_all_filed_once(sessions, sim, ids)


def test_connection_dropped_after_commit_gives_no_duplicate(sessions, sim, client, seal_payload) -> None:
    ids = fill(sessions, seal_payload, subjects=4, per_subject=1, prefix="DROP")
    sim.faults(drop_after_commit_rate=1.0)
    result = drain(sessions, client, backoff=FAST, use_batch=False)
    assert result.failed == 4 and result.sent == 0
    stored_first = sim.stored(set(ids))
    assert set(stored_first) == set(ids)  # the platform committed them
    sim.faults(drop_after_commit_rate=0.0)
    result = drain(sessions, client, now=utcnow() + LATER, backoff=FAST)
    assert result.sent == 4
    assert_all_filed_once(sessions, sim, ids)
    assert sim.stored(set(ids)) == stored_first  # the resend got the original receipts, nothing new


def test_tampered_receipt_is_refused_then_the_original_accepted(sessions, sim, client, seal_payload) -> None:
    [record_id] = fill(sessions, seal_payload, subjects=1, per_subject=1, prefix="TAMP")
    sim.faults(tamper_rate=1.0)
    record = wire_record(rows(sessions)[record_id])
    with pytest.raises(ReceiptInvalid, match="signature"):
        client.send(record)
    result = drain(sessions, client, backoff=FAST)
    assert result.failed == 1 and result.errors == {"invalid_receipt": 1}
    assert rows(sessions)[record_id].receipt is None
    sim.faults(tamper_rate=0.0)
    assert drain(sessions, client, now=utcnow() + LATER, backoff=FAST).sent == 1
    assert_all_filed_once(sessions, sim, [record_id])


def test_receipt_for_another_record_is_refused(sim, client, seal_payload) -> None:
    record = p.record_body("tamper" + "1" * 26, "seal.make", "SWAP1", 1, utcnow(), seal_payload("SWAP1"))
    client.send(record)
    changed = dict(record, payload=seal_payload("SWAP1", seal_name="另一枚印章"))
    body, headers = p.sign_request(changed, client.signer)
    envelope = sim.http.post("/v1/filings", content=body, headers=headers)
    assert envelope.status_code == 409
    original = client.send(record)
    with pytest.raises(p.ProtocolError, match="digest"):
        p.check_receipt(original.envelope, sim.cert_der, changed)


def test_refused_record_is_dead_lettered_with_reason_and_holds_back_its_seal(
    sessions, sim, client, seal_payload
) -> None:
    bad = seal_payload("DEAD0001")
    del bad["seal_name"]
    with transaction(sessions) as session:
        dead_id = enqueue(session, "seal.make", "DEAD0001", bad)
        later_id = enqueue(session, "seal.revoke", "DEAD0001", seal_payload("DEAD0001"))
        ok_id = enqueue(session, "seal.make", "DEAD0002", seal_payload("DEAD0002"))
    result = drain(sessions, client, backoff=FAST)
    assert (result.sent, result.dead) == (1, 1)
    mine = rows(sessions)
    assert mine[dead_id].state == DEAD and "seal_name" in mine[dead_id].last_error
    assert mine[later_id].state == "pending" and mine[ok_id].state == SENT
    assert drain(sessions, client, now=utcnow() + LATER, backoff=FAST).claimed == 0  # held back
    with sessions() as session:
        report = status(session)
    assert report["counts"][DEAD] == 1 and report["held_by_dead_letter"] == 1
    assert report["dead"][0]["record_id"] == dead_id and "seal_name" in report["dead"][0]["reason"]
    assert set(sim.stored({dead_id, later_id, ok_id})) == {ok_id}
    with transaction(sessions) as session:
        assert retry(session, states=(DEAD,)) == 1
    assert rows(sessions)[dead_id].state == "pending"


def test_idempotent_resend_and_conflict(sim, client, seal_payload) -> None:
    record = p.record_body("idem" + "2" * 28, "seal.make", "IDEM1", 1, utcnow(), seal_payload("IDEM1"))
    first = client.send(record)
    again = client.send(record)
    assert again.envelope == first.envelope
    body, headers = p.sign_request(record, client.signer)
    raw = [sim.http.post("/v1/filings", content=body, headers=headers) for _ in range(2)]
    assert [r.status_code for r in raw] == [200, 200] and raw[0].content == raw[1].content
    assert raw[0].content == sim.stored({record["record_id"]})[record["record_id"]]["receipt"]
    with pytest.raises(PlatformRejected) as refused:
        client.send(dict(record, payload=seal_payload("IDEM1", seal_type=2)))
    assert refused.value.status == 409


def test_bad_signature_is_refused_401(sim, demo_ca, system_signer, seal_payload) -> None:
    from gmpki.keys.signer import SoftwareSigner

    other_key, _ = demo_ca.issue_unit_signer("Impostor", "91450000000000001X")
    impostor = SoftwareSigner(other_key, system_signer.certificate)  # someone else's key, our certificate
    record = p.record_body("forged" + "3" * 26, "seal.make", "SIG1", 1, utcnow(), seal_payload("SIG1"))
    with PlatformClient(sim.url, impostor, sim.cert_der, timeout=5) as bad, pytest.raises(PlatformRejected) as refused:
        bad.send(record)
    assert refused.value.status == 401
    assert not sim.stored({record["record_id"]})


def test_malformed_reply_is_unavailable(sim, client, seal_payload) -> None:
    sim.faults(malformed_rate=1.0)
    record = p.record_body("malformed" + "4" * 23, "seal.make", "MAL1", 1, utcnow(), seal_payload("MAL1"))
    with pytest.raises(PlatformUnavailable):
        client.send(record)
    with pytest.raises(PlatformUnavailable):
        client.send_batch([record])


def test_two_dispatchers_at_once_send_each_record_once(sessions, sim, client, seal_payload, db_engine) -> None:
    ids = fill(sessions, seal_payload, subjects=40, per_subject=2, prefix="PAR")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            drain(sessions, client, backoff=FAST, batch_size=7, workers=2)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # whatever a run could not claim (held by the other's lease) the next run sends
    drain(sessions, client, backoff=FAST)
    assert_all_filed_once(sessions, sim, ids)
    with sessions() as session:
        sent = session.scalars(select(FilingAttempt.record_id).where(FilingAttempt.outcome == "sent")).all()
    assert sorted(sent) == sorted(ids)  # no record was sent twice


def test_archive_registrations_and_reconciliation(sessions, sim, client, archive_payload) -> None:
    with transaction(sessions) as session:
        ids = [enqueue(session, "archive.register", f"BATCH-{n}", archive_payload(f"BATCH-{n}")) for n in range(3)]
    before = sim.count()  # the platform's seq of its last filing so far
    assert drain(sessions, client, backoff=FAST).sent == 3
    with sessions() as session:
        result = reconcile(session, (i for i in client.listing(since=before, page_size=2) if i["record_id"] in ids))
    assert result.ok and result.ours_sent == 3 and result.platform_listed == 3
    with transaction(sessions) as session:  # our copy of a receipt no longer matches the platform's
        row = session.scalars(select(OutboxRecord).where(OutboxRecord.record_id == ids[0])).one()
        row.receipt = {"receipt": dict(row.receipt["receipt"], record_sm3="00" * 32), "signature": "x"}
    with sessions() as session:
        listing = [i for i in client.listing() if i["record_id"] in ids[:2]]
        result = reconcile(session, listing)
    assert not result.ok
    assert [m["record_id"] for m in result.mismatched] == [ids[0]]
    assert result.missing_at_platform == [ids[2]]


def test_simulator_refuses_senders_outside_its_trust(tmp_path, demo_ca, system_signer, seal_payload) -> None:
    from gmpki.pki.ca import DemoCA
    from tests.filing.conftest import Simulator

    def pem_files(ca, where):
        where.mkdir()
        (where / "root.pem").write_bytes(p.der_to_pem(ca.root_der))
        (where / "inter.pem").write_bytes(p.der_to_pem(ca.intermediate_der))
        return ["--trust", str(where / "root.pem"), "--trust", str(where / "inter.pem")]

    other = DemoCA.create(tmp_path / "other-ca", name="Other Province")
    record = p.record_body("trusted" + "5" * 25, "seal.make", "TRUST1", 1, utcnow(), seal_payload("TRUST1"))
    cases = ((pem_files(demo_ca, tmp_path / "ours"), None), (pem_files(other, tmp_path / "theirs"), 401))
    for trust, expected in cases:
        sim = Simulator(tmp_path / f"platform-{expected}", *trust)
        try:
            with PlatformClient(sim.url, system_signer, sim.cert_der, timeout=5) as c:
                if expected is None:
                    assert c.send(record).record_id == record["record_id"]
                else:
                    with pytest.raises(PlatformRejected, match="not trusted") as refused:
                        c.send(record)
                    assert refused.value.status == expected
        finally:
            sim.stop()
