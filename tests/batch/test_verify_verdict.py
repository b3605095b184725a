"""The batch's 验章 step accepts only the verdict ``valid``: a document with warnings fails, with reasons."""

from __future__ import annotations

from gmpki.gm.sm3 import sm3
from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.workstore import FolderWorkStore
from stamping.batch import process
from stamping.batch.models import Batch, BatchDocument
from stamping.verdict.result import DocumentResult, SignatureResult


def _result(warn: bool) -> DocumentResult:
    sig = SignatureResult(es_id="4501")
    sig.add("references", True, "ok")
    sig.add("signer_chain", True, "ok", kind="trust")
    if warn:
        sig.add("drawn_parts", False, "not covered: /Doc_0/Tpls/Tpl_0/Content.xml (template)", kind="warning")
    return DocumentResult("x.ofd", "ofd", signatures=[sig])


def test_verify_chunk_accepts_only_valid(tmp_path):
    from datetime import UTC, datetime

    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    files = {}
    for name in ("good.ofd", "warned.ofd"):
        files[name] = tmp_path / name
        files[name].write_bytes(name.encode())
    with transaction(sessions) as s:
        s.add(Batch(batch_id="b1", source="x", es_id="4501", requester="r", placement={}, options={},
                    status="stamping", work_dir=str(tmp_path), created_at=datetime.now(UTC), report={}))
        s.flush()
        for row, (name, path) in enumerate(files.items(), start=2):
            s.add(BatchDocument(batch_id="b1", file=name, row=row, format="ofd", chunk=0, record={}, state="stamped",
                                reasons=[], input_sm3="", output_path=FolderWorkStore(tmp_path).name(path.name),
                                output_sm3=sm3(path.read_bytes()).hex(), verification={}))
    tools = process.BatchTools(session_factory=sessions, store=FolderWorkStore(tmp_path),
                               verifiers={"ofd": lambda data, path: _result(warn=b"warned" in data)})
    assert process.verify_chunk(tools, "b1", 0)["verified"] == 1
    with sessions() as s:
        docs = {d.file: d for d in s.query(BatchDocument).all()}
    assert docs["good.ofd"].state == "verified"
    warned = docs["warned.ofd"]
    assert warned.state == "failed" and warned.verification["verdict"] == "valid_with_warnings"
    assert warned.reasons == ["verdict valid_with_warnings: SealFlow batches accept only valid",
                              "warning: drawn_parts: not covered: /Doc_0/Tpls/Tpl_0/Content.xml (template)"]
