"""The seal's use refused when the stamping step unlocks the key, though its use was approved (the
identity register no longer confirms the seal's unit or people): the waiting documents end ``refused``
with the reason — they do not stay ``accepted`` until the retries run out. A register that cannot be
asked is a machine fault: the documents wait for the task's retry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from kernel.db import make_engine, migrate, session_factory
from kernel.workstore import FolderWorkStore
from stamping.batch import process
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.samples import MANIFEST_FIELDS, sample_rows
from stamping.placement import Placement
from stamping.registry.errors import IdentityMismatch, IdentityRegisterUnavailable

MISMATCH = ("seal.use refused: the identity register does not confirm the unit 示范市市场监督管理局 (113301…): "
            "the registered name of that unit differs")


class Provider:
    """The registry's signer: answers until told to refuse, then raises what it is given."""

    def __init__(self) -> None:
        self.refusal: Exception | None = None
        self.asked = 0

    def __call__(self, es_id: str) -> tuple[object, bytes]:
        self.asked += 1
        if self.refusal is not None:
            raise self.refusal
        return object(), b"seal"


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def tools(tmp_path: Path, provider: Provider) -> process.BatchTools:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    return process.BatchTools(
        session_factory=session_factory(engine), store=FolderWorkStore(tmp_path / "work"),
        stampers={"pdf": lambda src, *_a: src + b"\n%sealed by the test stamper"}, signer_provider=provider)


def _batch(tools: process.BatchTools, tmp_path: Path, count: int = 4) -> str:
    """``count`` accepted documents in chunks of two (the stamper needs no real PDF)."""
    folder = tmp_path / "batch"
    folder.mkdir()
    rows = sample_rows(count, formats=("pdf",))
    for row in rows:
        (folder / row["file"]).write_bytes(b"%PDF-1.7\n" + row["licence_number"].encode())
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    process.ingest(tools, batch_id="b1", source=folder, es_id="es", requester="office",
                   placement=Placement.parse("anchor:（盖章）"), chunk_size=2)
    return "b1"


def _states(tools: process.BatchTools) -> dict[str, tuple[str, list[str]]]:
    with tools.session_factory() as s:
        return {d.file: (d.state, list(d.reasons or [])) for d in s.scalars(select(BatchDocument))}


def test_a_register_mismatch_at_stamping_refuses_every_waiting_document_with_the_reason(
        tools: process.BatchTools, provider: Provider, tmp_path: Path) -> None:
    batch_id = _batch(tools, tmp_path)
    provider.refusal = IdentityMismatch(MISMATCH)

    with pytest.raises(process.SealUseRefused, match="4 waiting document"):
        process.stamp_chunk(tools, batch_id, 0, actor="office")
    assert process.stamp_chunk(tools, batch_id, 1, actor="office")["stamped"] == 0  # nothing waits any more
    assert provider.asked == 1

    states = _states(tools)
    assert {state for state, _ in states.values()} == {"refused"}
    assert all(reasons == [f"seal es not used: at stamping time {MISMATCH}"] for _, reasons in states.values())
    summary = process.finish(tools, batch_id)
    assert summary["status"] == "refused" and summary["pending_chunks"] == []
    report = json.loads(tools.store.get(tools.store.key_of(summary["report_json"])))
    assert all(d["state"] == "refused" and "identity register" in d["reasons"][0] for d in report["documents"])
    assert "盖章时身份核验未通过" in tools.store.get(tools.store.key_of(summary["report_html"])).decode()


def test_documents_sealed_before_the_mismatch_stay_sealed_and_the_batch_is_not_refused_whole(
        tools: process.BatchTools, provider: Provider, tmp_path: Path) -> None:
    batch_id = _batch(tools, tmp_path)
    assert process.stamp_chunk(tools, batch_id, 0, actor="office")["stamped"] == 2
    provider.refusal = IdentityMismatch(MISMATCH)

    with pytest.raises(process.SealUseRefused, match="2 waiting document"):
        process.stamp_chunk(tools, batch_id, 1, actor="office")

    assert sorted(state for state, _ in _states(tools).values()) == ["refused", "refused", "stamped", "stamped"]
    with tools.session_factory() as s:
        assert s.get(Batch, batch_id).status != "refused"


def test_a_register_that_cannot_be_asked_leaves_the_documents_waiting_for_the_retry(
        tools: process.BatchTools, provider: Provider, tmp_path: Path) -> None:
    batch_id = _batch(tools, tmp_path)
    provider.refusal = IdentityRegisterUnavailable("seal.use refused: ... try again when the register answers")

    with pytest.raises(process.InfrastructureError):
        process.stamp_chunk(tools, batch_id, 0, actor="office")

    assert {state for state, _ in _states(tools).values()} == {"accepted"}
    provider.refusal = None
    assert process.stamp_chunk(tools, batch_id, 0, actor="office")["stamped"] == 2  # the retry seals them
