"""stamp_batch under dag.test(): happy path with bad rows, refused approval, wrong code, resume."""

from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.workstore import S3WorkStore
from sealflow.airflow_api import AirflowApiError
from stamping.audit.models import AuditEntry
from stamping.batch import approval, process
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.samples import write_batch
from stamping.registry.demo import KEEPER
from stamping.verify.dispatch import verify_bytes
from tests.pipeline.conftest import PipelineEnv, batch_conf
from tests.smtp_inbox import smtp_fixture  # noqa: F401 (the fixture ``smtp``)


def _docs(env: PipelineEnv, batch_id: str) -> list[BatchDocument]:
    with env.sessions() as session:
        return list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id)))


def _work(env: PipelineEnv) -> S3WorkStore:
    """The work bucket of the stack, as the tasks' composition root wires it."""
    return S3WorkStore(env.stack.s3(), env.settings.work_bucket)


def _audit(env: PipelineEnv, action: str, batch_id: str) -> list[AuditEntry]:
    with env.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return [r for r in rows if (r.payload or {}).get("batch_id") == batch_id]


def test_happy_path_with_bad_documents(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    expected = write_batch(tmp_path / "in", 10, bad=True)
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "happy-1"), "Approve")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    docs = _docs(pipeline_env, "happy-1")
    states = {d.file: d.state for d in docs}
    assert sum(1 for s in states.values() if s == "verified") == expected["good"]
    quarantined = {d.file: d.reasons for d in docs if d.state == "quarantined"}
    assert len(quarantined) == expected["bad"]
    assert any("check character" in " ".join(r) for r in quarantined.values())
    assert any("not in the batch folder" in " ".join(r) for r in quarantined.values())
    assert any("neither a PDF nor an OFD" in " ".join(r) for r in quarantined.values())
    work = _work(pipeline_env)
    with pipeline_env.sessions() as session:
        batch = session.get(Batch, "happy-1")
        assert batch.status == "done"
        assert batch.work_dir == f"s3://{pipeline_env.settings.work_bucket}/batches/happy-1/"
        report = json.loads(work.get(work.key_of(batch.report["json"])))
    assert report["counts"]["verified"] == expected["good"]
    html = work.get(work.key_of(batch.report["html"])).decode()
    assert len(re.findall(r"<tr[^>]*><td>\d+</td>", html)) == len(docs)  # one line per file
    assert f"{expected['good']} 个文件已盖章并验章有效；{expected['bad']} 个文件未通过" in html
    uses = _audit(pipeline_env, "seal.use", "happy-1")
    assert len(uses) == expected["good"]  # one audit entry per sealed document
    assert all(len(u.payload.get("signature_sm3", "")) == 64 for u in uses)  # naming the signature made
    assert _audit(pipeline_env, "seal.use.approved", "happy-1")
    trust = pipeline_env.seals.trust_store()
    for doc in docs:
        if doc.state == "verified":  # read back from the work bucket, where the tasks left it
            checked = verify_bytes(work.get(work.key_of(doc.output_path)), doc.output_path, trust)
            assert checked.valid, checked.to_json()
            assert checked.signatures[0].es_id == pipeline_env.es_id
            stamp = next(c for c in checked.signatures[0].checks if c.name == "timestamp")
            assert stamp.ok and "trusted TSA" in stamp.reason  # every seal carries the stack TSA's token
    reports = pipeline_env.stack.s3().list_objects_v2(Bucket=pipeline_env.settings.work_bucket,
                                                      Prefix="batches/happy-1/")
    assert {o["Key"] for o in reports.get("Contents", [])} >= {"batches/happy-1/report.html"}
    # The sealed files are in the work bucket and nowhere on the machine's disk (the tasks kept only scratch).
    assert len(list(work.keys("batches/happy-1/sealed/"))) == expected["good"]
    assert not list(pipeline_env.settings.state_dir.rglob("batches"))
    _archive_the_batch(pipeline_env, "happy-1", expected["good"])


def _archive_the_batch(env: PipelineEnv, batch_id: str, good: int) -> None:
    """archive_batch (normally scheduled by the Asset) on the stamped batch; a rerun adds nothing."""
    from archive.models import ArchiveRun
    from filing.outbox import OutboxRecord

    for attempt in (1, 2):
        done = env.stack.run_dag("archive_batch", {"batch_id": batch_id})
        assert done.returncode == 0, f"run {attempt}: " + done.stdout[-3000:] + done.stderr[-3000:]
    with env.sessions() as session:
        runs = session.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)).all()
        assert sum(r.records for r in runs) == good, done.stdout[-6000:]  # the archive task's log says why
        queued = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "archive.register",
                                                            OutboxRecord.subject == batch_id)).all()
        assert len(queued) == len(runs) >= 1
        assert queued[0].payload["documents"] == runs[0].records
    keys = [o["Key"] for page in env.stack.s3().get_paginator("list_objects_v2").paginate(
        Bucket=env.settings.archive_bucket) for o in page.get("Contents", [])]
    assert len([k for k in keys if k.endswith(".tar")]) >= good


def _refused(env: PipelineEnv, batch_id: str, reason: str) -> None:
    """A refused batch, as an operator sees it: run failed, documents and report say refused and why."""
    docs = _docs(env, batch_id)
    waiting = [d for d in docs if d.state != "quarantined"]
    assert waiting and {d.state for d in waiting} == {"refused"}, [(d.file, d.state) for d in docs]
    assert all(reason in " ".join(d.reasons) for d in waiting), waiting[0].reasons
    assert not any(d.output_path for d in docs)
    with env.sessions() as session:
        batch = session.get(Batch, batch_id)
        assert batch.status == "refused"
        work = _work(env)
        assert json.loads(work.get(work.key_of(batch.work_dir) + "report.json"))["status"] == "refused"
    assert not _audit(env, "seal.use", batch_id)


def test_refused_approval_fails_the_run_and_stamps_nothing(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    write_batch(tmp_path / "in", 4, bad=False, start=100)
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "refused-1"), "Reject")
    assert result.returncode != 0 and '"state": "failed"' in result.stdout, result.stdout[-3000:]
    _refused(pipeline_env, "refused-1", "the keeper refused")
    refused = _audit(pipeline_env, "seal.use.refused", "refused-1")
    assert refused and refused[0].actor == KEEPER


def test_a_refused_batch_is_mailed_when_its_run_ends(pipeline_env: PipelineEnv, tmp_path: Path, smtp) -> None:
    """The run's own callback mails the refusal (issue 16, item 3): nobody waits for the 15-minute watch."""
    import os

    write_batch(tmp_path / "in", 2, bad=False, start=140)
    mail = {"AIRFLOW_CONN_SMTP_DEFAULT": os.environ["AIRFLOW_CONN_SMTP_DEFAULT"],
            "AIRFLOW_VAR_SEALFLOW_ALERT_RECIPIENTS": "records@office.example"}
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "mailed-1"), "Reject", env=mail)
    assert result.returncode != 0, result.stdout[-3000:]
    refusals = [m for m in smtp.messages if "批次被拒绝 mailed-1" in str(m["Subject"])]
    assert len(refusals) == 1 and refusals[0]["To"] == "records@office.example", smtp.subjects()


def test_wrong_code_then_right_code_and_the_code_never_shows(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    """A typo is not a refusal: the keeper tries again in the same approval; a stranger is refused and
    audited; the used code is neither in the approval panel nor in any task log."""
    write_batch(tmp_path / "in", 2, bad=False, start=200)
    tries: list[str] = []

    def stranger_then_typo(pending) -> None:
        code = pipeline_env.last_code("wrongcode-1")
        with pytest.raises(AirflowApiError) as stranger:
            pipeline_env.api.answer(pending, "Approve", {"code": code})  # the administrator is not the keeper
        assert stranger.value.status == 403
        with pytest.raises(AirflowApiError) as typo:
            pipeline_env.keeper_api.answer(pending, "Approve", {"code": f"{(int(code) + 1) % 10**6:06d}"})
        assert typo.value.status == 400 and "4 tries left" in typo.value.detail
        tries.append(code)

    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "wrongcode-1"), "Approve",
                                    before=stranger_then_typo)
    assert result.returncode == 0, result.stdout[-4000:]
    assert {d.state for d in _docs(pipeline_env, "wrongcode-1")} == {"verified"}
    approved = _audit(pipeline_env, "seal.use.approved", "wrongcode-1")
    assert [a.actor for a in approved] == [KEEPER]
    assert _audit(pipeline_env, "seal.use.answer_wrong_code", "wrongcode-1")
    strangers = _audit(pipeline_env, "seal.use.answer_rejected", "wrongcode-1")
    assert strangers and strangers[0].actor == "admin" and "not the keeper" in strangers[0].reason
    with pipeline_env.sessions() as session:
        assert approval.current(session, "wrongcode-1").attempts == 2
    run_id = json.loads(result.stdout.strip().splitlines()[-1])["run_id"]
    panel = pipeline_env.api._call("GET", f"/dags/stamp_batch/dagRuns/{run_id}/taskInstances/"
                                          "seal_use_approval/-1/hitlDetails")
    assert panel["response_received"] and panel["params_input"].get("code") == ""
    assert panel["responded_by_user"]["id"] == KEEPER
    task_logs = [p.read_text(errors="replace") for p in (pipeline_env.settings.airflow_home / "logs").rglob("*")
                 if p.is_file()]
    logs = "\n".join([result.stdout, *task_logs])  # dag.test() prints the task logs
    assert "local SMS gateway: one message" in logs  # the gateway's own line is there: we grep the right place
    assert tries[0] not in logs


def test_a_second_run_of_a_batch_is_refused(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    write_batch(tmp_path / "in", 2, bad=False, start=300)
    first = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "twice-1"), "Approve")
    assert first.returncode == 0, first.stdout[-4000:]
    second = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "twice-1"), None)
    assert second.returncode != 0
    assert "batch twice-1 already belongs to run" in second.stdout, second.stdout[-3000:]
    assert len(_audit(pipeline_env, "seal.use", "twice-1")) == 2  # one use per document, not two
    assert len(_audit(pipeline_env, "seal.use.approved", "twice-1")) == 1


def _edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.csv"
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    for row in rows:
        change(row)
    fields = list(rows[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def test_a_batch_of_another_issuer_is_refused_before_approval(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    from stamping.identifiers import make_credit_code

    write_batch(tmp_path / "in", 2, bad=False, start=400)
    foreign = make_credit_code("11110000MB7654321")
    _edit_manifest(tmp_path / "in", lambda row: row.update(issuer_code=foreign))
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "foreign-1"), None)
    assert result.returncode != 0
    _refused(pipeline_env, "foreign-1", f"issuer {foreign} in rows 2, 3")
    with pipeline_env.sessions() as session:
        assert approval.current(session, "foreign-1") is None  # the keeper was never asked


def test_a_licence_is_sealed_again_only_as_a_declared_reissue(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    write_batch(tmp_path / "first", 2, bad=False, start=500)
    assert pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "first", "licence-1"), "Approve").returncode == 0
    write_batch(tmp_path / "again", 2, bad=False, start=500)
    assert pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "again", "licence-2"), "Approve").returncode == 0
    again = {d.state: d.reasons for d in _docs(pipeline_env, "licence-2")}
    assert set(again) == {"quarantined"} and "already sealed by SealFlow in batch licence-1" in again["quarantined"][0]
    write_batch(tmp_path / "reissue", 2, bad=False, start=500)
    _edit_manifest(tmp_path / "reissue", lambda row: row.update(reissue="换发", reissue_reason="持证主体名称变更"))
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "reissue", "licence-3"), "Approve")
    assert result.returncode == 0, result.stdout[-4000:]
    assert {d.state for d in _docs(pipeline_env, "licence-3")} == {"verified"}
    declared = _audit(pipeline_env, "licence.reissue", "licence-3")
    assert len(declared) == 2 and all(d.reason == "换发: 持证主体名称变更" for d in declared)
    assert {d.payload["previous_batch"] for d in declared} == {"licence-1"}
    # The archive keeps both: the reissue is a record of its own that supersedes the first (issue 13, item 3).
    for batch_id in ("licence-1", "licence-3"):
        archived = pipeline_env.stack.run_dag("archive_batch", {"batch_id": batch_id})
        assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]
    from archive.models import ArchiveRecord

    with pipeline_env.sessions() as session:
        rows = {(r.batch_id, r.licence_id): r for r in session.scalars(
            select(ArchiveRecord).where(ArchiveRecord.batch_id.in_(("licence-1", "licence-3"))))}
    firsts = {lid: r for (b, lid), r in rows.items() if b == "licence-1"}
    reissues = {lid: r for (b, lid), r in rows.items() if b == "licence-3"}
    assert len(firsts) == 2 and set(reissues) == set(firsts), sorted(rows)
    for licence_id, reissue in reissues.items():
        assert reissue.supersedes == firsts[licence_id].archival_code != reissue.archival_code
        assert firsts[licence_id].superseded_by == reissue.archival_code


def test_killed_chunk_resumes_without_stamping_twice(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    """A chunk dies after sealing some files but before committing them; the rerun adopts those
    files (they verify) and seals only the rest: every document sealed exactly once."""
    from tests.pipeline.plugins_path import pipeline_module

    pipeline = pipeline_module(pipeline_env.settings)
    write_batch(tmp_path / "in", 6, bad=False)
    tools = pipeline.tools()
    base = process.BatchTools(**{**tools.__dict__})
    signs: list[str] = []
    real_signer, seal_der = pipeline_env.seals.batch_signer(pipeline_env.es_id)

    class CountingSigner:
        certificate = real_signer.certificate

        def sign(self, data: bytes) -> bytes:
            signs.append("x")
            return real_signer.sign(data)

    class Killed(BaseException):
        pass

    def stamper_dying_after(n: int):
        def stamp(src, seal, signer, placement, path, options):
            if len(signs) >= n:
                raise Killed()
            kind = "pdf" if src.startswith(b"%PDF") else "ofd"
            return tools.stampers[kind](src, seal, signer, placement, path, options)
        return stamp

    base.signer_provider = lambda es_id: (CountingSigner(), seal_der)
    dying = process.BatchTools(**{**base.__dict__, "stampers": {"pdf": stamper_dying_after(3),
                                                                "ofd": stamper_dying_after(3)}})
    from stamping.placement import Placement

    process.ingest(dying, batch_id="resume-1", source=tmp_path / "in", es_id=pipeline_env.es_id,
                   requester="applicant", placement=Placement.parse("anchor:（盖章）"), chunk_size=100)
    with contextlib.suppress(Killed):
        process.stamp_chunk(dying, "resume-1", 0, actor="applicant")
    assert len(signs) == 3, [d.reasons for d in _docs(pipeline_env, "resume-1")]
    assert {d.state for d in _docs(pipeline_env, "resume-1")} == {"accepted"}  # nothing committed
    process.stamp_chunk(base, "resume-1", 0, actor="applicant")
    process.stamp_chunk(base, "resume-1", 0, actor="applicant")  # a second rerun finds nothing to do
    assert len(signs) == 6  # three adopted, three sealed: six signatures for six documents
    assert {d.state for d in _docs(pipeline_env, "resume-1")} == {"stamped"}
    assert len(_audit(pipeline_env, "seal.use", "resume-1")) == 6
    process.verify_chunk(base, "resume-1", 0)
    assert {d.state for d in _docs(pipeline_env, "resume-1")} == {"verified"}


def test_inbox_scan_starts_each_ready_batch_once(pipeline_env: PipelineEnv) -> None:
    folder = pipeline_env.settings.state_dir / "inbox" / "office-drop-1"
    write_batch(folder, 2, bad=False, start=900)
    (folder / "batch.json").write_text(json.dumps({"es_id": pipeline_env.es_id, "requester": "applicant"}),
                                       encoding="utf-8")
    for attempt in (1, 2):
        done = pipeline_env.stack.run_dag("stamp_inbox")
        assert done.returncode == 0, f"scan {attempt}: " + done.stdout[-3000:] + done.stderr[-3000:]
    runs = [r for r in pipeline_env.api.runs("stamp_batch", limit=100) if r["dag_run_id"].startswith("inbox__")]
    assert [r["dag_run_id"] for r in runs] == ["inbox__office-drop-1"]
    assert runs[0]["conf"]["batch_location"] == str(folder)


def test_the_stack_runs_the_identity_simulator_and_points_its_tasks_at_it(pipeline_env: PipelineEnv) -> None:
    from sealflow.stack import status

    identity = status(pipeline_env.settings)["components"]["identity"]
    assert identity["state"] == "running" and identity["healthy"], identity
    url = f"http://127.0.0.1:{pipeline_env.settings.identity_port}"
    assert identity["port"] == pipeline_env.settings.identity_port
    assert pipeline_env.stack.airflow_env()["SEALFLOW_IDENTITY_URL"] == url


def test_a_batch_whose_keeper_the_identity_register_does_not_confirm_is_refused_before_approval(
        pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    """Using the seal for a batch asks the stack's identity simulator (over HTTP, from the Airflow task):
    the register now names the keeper's 公民身份号码 otherwise, so the batch is refused with the reason,
    the keeper is never asked, and the refusal is audited."""
    from stamping.registry.demo import DEMO_PERSON_ID, register_demo_identities
    from stamping.registry.identity_register import register

    settings = pipeline_env.settings
    write_batch(tmp_path / "in", 2, bad=False, start=800)
    register(settings.identity_register_file, persons=[("张三丰", DEMO_PERSON_ID)])
    try:
        result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "identity-1"), None)
    finally:
        register_demo_identities(settings)  # the session's other batches use the demo seal
    assert result.returncode != 0, result.stdout[-3000:]
    _refused(pipeline_env, "identity-1", "the identity register does not confirm the person 张三")
    with pipeline_env.sessions() as session:
        assert approval.current(session, "identity-1") is None  # the keeper was never asked
        refusals = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "identity.mismatch",
                                                                 AuditEntry.es_id == pipeline_env.es_id)))
    assert refusals and refusals[-1].payload["step"] == "seal.use" and refusals[-1].actor == KEEPER
    assert "registered name of that person differs" in refusals[-1].reason
