"""验章 of a chunk verifies every document inside one status snapshot of the registry
(``BatchTools.status_snapshot``), so each seal's status history is read once per chunk."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime

from gmpki.gm.sm3 import sm3
from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.workstore import FolderWorkStore
from stamping.batch import process
from stamping.batch.models import Batch, BatchDocument
from stamping.verdict.result import DocumentResult, SignatureResult


def test_every_document_of_a_chunk_is_verified_inside_one_snapshot(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as s:
        s.add(Batch(batch_id="b1", source="x", es_id="4501", requester="r", placement={}, options={},
                    status="stamping", work_dir=str(tmp_path), created_at=datetime.now(UTC), report={}))
        s.flush()
        for row in range(3):
            path = tmp_path / f"d{row}.ofd"
            path.write_bytes(b"doc %d" % row)
            s.add(BatchDocument(batch_id="b1", file=path.name, row=row + 2, format="ofd", chunk=0, record={},
                                state="stamped", reasons=[], input_sm3="",
                                output_path=FolderWorkStore(tmp_path).name(path.name),
                                output_sm3=sm3(path.read_bytes()).hex(), verification={}))
    snapshots: list[str] = []
    inside: list[bool] = []

    @contextmanager
    def snapshot():
        snapshots.append("entered")
        yield
        snapshots.append("left")

    def verify(data: bytes, path: str) -> DocumentResult:
        inside.append(snapshots == ["entered"])
        sig = SignatureResult(es_id="4501")
        sig.add("references", True, "ok")
        sig.add("signer_chain", True, "ok", kind="trust")
        return DocumentResult(path, "ofd", signatures=[sig])

    tools = process.BatchTools(session_factory=sessions, store=FolderWorkStore(tmp_path), verifiers={"ofd": verify},
                               status_snapshot=snapshot)
    assert process.verify_chunk(tools, "b1", 0)["verified"] == 3
    assert inside == [True, True, True]
    assert snapshots == ["entered", "left"]
