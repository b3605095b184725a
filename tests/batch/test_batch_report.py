"""The batch report people read: verdict first, problem rows first, approver, seal, archive and filing,
Beijing times — and lean: at most 5 KB per document on a batch of realistic size, readable by the
office's group while the secrets stay 0600.

The batch is real up to stamping: sample certificates with four broken rows go through
``process.ingest`` (so the quarantine reasons are the checker's own); instead of sealing 1,000
documents, each accepted row is then recorded the way ``verify_chunk`` records it (verified, or failed
with ``verdict_reasons`` of a failing 验章 result) — the report reads only those columns.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from kernel.workstore import FolderWorkStore
from stamping.batch import process
from stamping.batch.approval import request_id_of
from stamping.batch.models import BatchDocument, SealUseApproval
from stamping.batch.report import AfterStamping, refresh_report
from stamping.batch.samples import write_batch
from stamping.placement import Placement
from stamping.reasons import human_time
from stamping.verdict.result import DocumentResult, SignatureResult
from stamping.verify.report import verdict_reasons

DOCUMENTS = 1000
FAILED_EVERY = 97  # about ten documents fail 验章


def _failing_result(path: str) -> DocumentResult:
    sig = SignatureResult(signer="签章人", seal_name="公章", es_id="4501", location="/Doc_0/Signs/Sign_0")
    sig.add("data_hash", False, "dataHash 9f1c… does not match the digest of the signed data")
    sig.add("signer_chain", True, "chain ok", kind="trust")
    return DocumentResult(path=path, format="ofd", signatures=[sig])


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory):
    """A 1,000-document batch (plus four broken rows) finished by ``process.finish``."""
    from stamping.registry.demo import bootstrap_demo
    from stamping.registry.service import SealRegistry

    root = tmp_path_factory.mktemp("report")
    settings = Settings(home=root / "var", kek="00" * 32)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    demo = bootstrap_demo(SealRegistry(sessions, settings))
    es_id = demo["es_ids"]["official"]
    write_batch(root / "in", DOCUMENTS, bad=True)
    tools = process.BatchTools(session_factory=sessions, store=FolderWorkStore(root / "work"),
                               reports_dir=root / "office")
    process.ingest(tools, batch_id="office-1", source=root / "in", es_id=es_id, requester="applicant",
                   placement=Placement(page=None, anchor_text="（盖章）"))
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.add(SealUseApproval(request_id=request_id_of("office-1"), batch_id="office-1", es_id=es_id,
                                    keeper="keeper", requester="applicant", documents=DOCUMENTS, code_salt="",
                                    code_digest="", expires_at=now, state="approved", decided_at=now,
                                    decided_by="keeper"))
        for doc in session.scalars(select(BatchDocument).where(BatchDocument.state == "accepted")):
            sm3 = f"{doc.row:064x}"
            if doc.row % FAILED_EVERY == 0:
                result = _failing_result(doc.file)
                doc.state, doc.reasons, doc.verification = "failed", verdict_reasons(result), result.to_json()
            else:
                doc.state, doc.output_sm3 = "verified", sm3
    summary = process.finish(tools, "office-1")
    yield {"sessions": sessions, "summary": summary, "root": root, "settings": settings, "es_id": es_id,
           "tools": tools}
    engine.dispose()


def _read(batch, name: str) -> bytes:
    store = batch["tools"].store
    return store.get(store.key_of(batch["summary"][name]))


def _html(batch) -> str:
    return _read(batch, "report_html").decode("utf-8")


def test_a_1000_document_batch_report_weighs_at_most_5_kb_per_document(batch) -> None:
    size = len(_read(batch, "report_html"))
    documents = batch["summary"]["counts"]["documents"]
    assert documents == DOCUMENTS + 4
    per_document = size / documents
    print(f"report.html: {size} bytes for {documents} documents = {per_document:.0f} bytes per document")
    assert per_document <= 5 * 1024


def test_the_report_opens_with_the_verdict_the_seal_the_approver_and_beijing_times(batch) -> None:
    html = _html(batch)
    head = html[:html.index("逐个文件")]
    counts = batch["summary"]["counts"]
    assert counts["failed"] == 10 and counts["quarantined"] == 5
    assert f"{counts['verified']} 个文件已盖章并验章有效；15 个文件未通过" in head
    assert "同意 · keeper" in head  # the approver
    with batch["sessions"]() as session:
        from stamping.registry.models import Seal

        seal_name = session.scalar(select(Seal.name).where(Seal.es_id == batch["es_id"]))
    assert seal_name and seal_name in head
    assert "（北京时间）" in head and "T" not in re.sub(r"<[^>]*>|\w+_\w+|[A-Za-z]+", "", head)
    assert "待归档" in head and "待备案" in head
    assert html.count("data:image/png;base64,") == 1  # the seal picture once, however many rows


def test_problem_rows_come_first_each_on_one_line_with_a_chinese_reason_and_the_technical_one(batch) -> None:
    html = _html(batch)
    rows = re.findall(r"<tr[^>]*><td>(\d+)</td>.*?</tr>", html)
    lines = re.findall(r"<tr[^>]*><td>\d+</td>.*?</tr>", html)
    assert len(lines) == DOCUMENTS + 4
    verdicts = [re.search(r'<td class="(\w+)">', line).group(1) for line in lines]
    first_good = verdicts.index("valid")
    assert set(verdicts[:first_good]) == {"quar", "not_valid"} and set(verdicts[first_good:]) == {"valid"}
    assert verdicts.count("quar") == 5 and rows  # four broken rows; a duplicate 证照编号 takes both rows
    quarantined = [line for line in lines if 'class="quar"' in line]
    assert any("校验位不对" in line and "<small>" in line for line in quarantined)
    assert any("找不到该文件" in line for line in quarantined)
    assert all(re.search(r"<td>\d{14}</td>", line) for line in quarantined)  # the 证照编号 the row gave
    failed = next(line for line in lines if 'class="not_valid"' in line)
    assert "验章未通过：盖章后文件被改动（摘要不符）" in failed and "<small>data_hash: dataHash" in failed
    assert ">无效<" in failed
    assert "True" not in html and "False" not in html


def test_the_json_keeps_its_fields_for_machines_and_gains_the_facts(batch) -> None:
    report = json.loads(_read(batch, "report_json"))
    assert {"batch_id", "es_id", "requester", "source", "status", "created_at", "finished_at", "counts",
            "pending_chunks", "documents"} <= report.keys()
    assert report["approval"]["approver"] == "keeper" and report["seal_name"]
    doc = report["documents"][0]
    assert {"row", "file", "state", "reasons", "licence_number", "output_sm3", "verdict", "holder",
            "archival_code"} <= doc.keys()
    assert report["status"] == "done"


def test_the_office_group_reads_the_report_while_the_secrets_stay_private(batch) -> None:
    from kernel.settings import open_modes

    for path in (batch["root"] / "office" / "office-1" / "report.html",
                 batch["root"] / "office" / "office-1" / "report.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    assert stat.S_IMODE((batch["root"] / "office" / "office-1").stat().st_mode) == 0o750
    assert open_modes(batch["settings"]) == []  # keys, KEK, databases: still 0600 in a 0700 home


def test_once_archived_and_filed_the_report_says_so_with_each_archival_code(batch) -> None:
    from filing.outbox import OutboxRecord, enqueue

    sessions = batch["sessions"]
    with transaction(sessions) as session:
        codes = {d.output_sm3: f"X001-ZZ·2026-Y-{d.row:06d}" for d in session.scalars(
            select(BatchDocument).where(BatchDocument.state == "verified"))}
        record_id = enqueue(session, "archive.register", "office-1", {"documents": len(codes)})
        session.flush()
        session.execute(update(OutboxRecord).where(OutboxRecord.record_id == record_id).values(state="sent"))
        refresh_report(session, "office-1", AfterStamping(archival_codes=codes, archived=True),
                       batch["tools"].store, reports_dir=batch["tools"].reports_dir)
    html = _html(batch)
    assert f"已归档 {len(codes)} 件" in html and "已备案（回执 1/1）" in html
    assert "X001-ZZ·2026-Y-000003" in html


def test_times_are_written_as_the_office_reads_them() -> None:
    assert human_time("2026-01-01T00:30:00+00:00") == "2026年01月01日 08:30（北京时间）"
    assert human_time(None) == ""


def test_a_document_the_archive_refused_says_why_in_the_report(batch) -> None:
    """A sealed, valid document the archive would not take (its licence archived before, no 换发/补发
    declared) is not a silent gap in the 档号 column: its line gives the archive's reason."""
    sessions = batch["sessions"]
    reason = ("licence L-7 is already archived as X001-ZZ·2026-Y-000001 (batch old, sealed document SM3 ab…); "
              "this is another sealed document of the licence and its batch declared no 换发/补发 with a reason")
    with transaction(sessions) as session:
        docs = list(session.scalars(select(BatchDocument).where(BatchDocument.state == "verified")
                                    .order_by(BatchDocument.row)))
        refused = docs[0]
        codes = {d.output_sm3: f"X001-ZZ·2026-Y-{d.row:06d}" for d in docs[1:]}
        written = refresh_report(session, "office-1", AfterStamping(
            archival_codes=codes, archived=True, archive_refused=1, archive_reasons={refused.file: [reason]}),
            batch["tools"].store, reports_dir=batch["tools"].reports_dir)
    line = next(d for d in written["report"]["documents"] if d["file"] == refused.file)
    assert line["archival_code"] == "" and line["reasons"] == [f"not archived: {reason}"]
    html = _html(batch)
    assert f"已归档 {len(codes)} 件，拒收 1 件（原因见下方）" in html
    assert "未归档：该证照已归档（档号 X001-ZZ·2026-Y-000001）" in html
