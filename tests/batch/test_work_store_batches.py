"""A batch's files live in the work store (S3 in every deployment), never on a task's local disk.

The steps run here with the folder store (``kernel.workstore.FolderWorkStore``) or the S3 store over an
in-memory S3 (``tests/archive/memory_s3.py``) where S3's answers matter (a missing key, an unreachable
service); the stamper and verifier are stand-ins, the steps and their checks are the real ones.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import EndpointConnectionError

from gmpki.gm.sm3 import sm3
from kernel.db import make_engine, migrate, session_factory
from kernel.workstore import FolderWorkStore, S3WorkStore
from stamping.batch import keys, process
from stamping.batch.manifest import MAX_DOCUMENT_BYTES
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.samples import MANIFEST_FIELDS, sample_rows
from stamping.placement import Placement
from tests.archive.memory_s3 import MemoryS3

SEALED_MARK = b"\n%sealed by the test stamper"
OFD_HEAD = b"PK\x03\x04"  # a ZIP, as an OFD package is


def _stamper(src: bytes, *_args) -> bytes:
    return src + SEALED_MARK


VERIFIED_AS: list[str] = []


def _verifier(data: bytes, path: str) -> SimpleNamespace:
    VERIFIED_AS.append(path)
    return SimpleNamespace(intact=True, signatures=[object()], verdict="valid",
                           to_json=lambda: {"path": path, "verdict": "valid"})


def _tools(tmp_path: Path, store) -> process.BatchTools:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    uses: list[tuple] = []
    tools = process.BatchTools(
        session_factory=session_factory(engine), store=store, stampers={"pdf": _stamper},
        verifiers={"pdf": _verifier}, signer_provider=lambda es_id: (object(), b"seal"),
        record_uses=lambda session, **kw: uses.extend(kw["documents"]), scratch_root=tmp_path / "scratch")
    tools.uses = uses  # type: ignore[attr-defined]
    return tools


def _rows(count: int) -> list[dict[str, str]]:
    return sample_rows(count, formats=("pdf",))


def _manifest(rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _folder(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    folder = tmp_path / "inbox" / "b"
    folder.mkdir(parents=True)
    for row in rows:
        (folder / row["file"]).write_bytes(b"%PDF-1.7\n" + row["licence_number"].encode())
    (folder / "manifest.csv").write_bytes(_manifest(rows))
    return folder


def _ingest(tools: process.BatchTools, batch_id: str, source: Path | str) -> dict:
    return process.ingest(tools, batch_id=batch_id, source=source, es_id="es", requester="office",
                          placement=Placement.parse("anchor:（盖章）"))


def _docs(tools: process.BatchTools, batch_id: str) -> dict[str, BatchDocument]:
    with tools.session_factory() as session:
        return {d.file: d for d in process.documents(session, batch_id)}


def test_a_batchs_sealed_files_are_in_the_work_store_and_nowhere_on_local_disk(tmp_path: Path) -> None:
    store = FolderWorkStore(tmp_path / "bucket")
    tools = _tools(tmp_path, store)
    rows = _rows(4)
    _ingest(tools, "b1", _folder(tmp_path, rows))
    assert process.stamp_chunk(tools, "b1", 0, actor="office")["stamped"] == 4
    VERIFIED_AS.clear()
    assert process.verify_chunk(tools, "b1", 0)["verified"] == 4
    # 验章 names each document by its file, not by its object: the archive matches the result with the file.
    assert sorted(VERIFIED_AS) == sorted(r["file"] for r in rows)
    summary = process.finish(tools, "b1")

    docs = _docs(tools, "b1").values()
    sealed = {d.output_sm3 for d in docs}
    for doc in docs:  # each sealed file and its note under the batch's keys, named by the store
        assert doc.output_path == store.name(keys.sealed_key(doc))
        assert sm3(store.get(keys.sealed_key(doc))).hex() == doc.output_sm3
        assert json.loads(store.get(keys.note_key(doc)))["output_sm3"] == doc.output_sm3
    with tools.session_factory() as session:
        assert session.get(Batch, "b1").work_dir == store.name("batches/b1/")
    assert summary["report_html"] == store.name("batches/b1/report.html")
    assert store.exists("batches/b1/manifest.csv") and store.exists("batches/b1/report.json")
    # Outside the store: the inbox's input and the database, no sealed byte, no scratch left.
    elsewhere = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(store.root)]
    assert not [p for p in elsewhere if sm3(p.read_bytes()).hex() in sealed]
    assert not (tmp_path / "scratch").exists() or not list((tmp_path / "scratch").iterdir())
    assert not [p for p in tmp_path.rglob("batches") if not p.is_relative_to(store.root)]


def test_the_same_bytes_in_two_rows_are_received_once_and_sealed_twice(tmp_path: Path) -> None:
    store = FolderWorkStore(tmp_path / "bucket")
    tools = _tools(tmp_path, store)
    rows = _rows(2)
    folder = _folder(tmp_path, rows)
    (folder / rows[1]["file"]).write_bytes((folder / rows[0]["file"]).read_bytes())
    _ingest(tools, "twin", folder)
    assert list(store.keys("batches/twin/in/")) and len(list(store.keys("batches/twin/in/"))) == 1
    process.stamp_chunk(tools, "twin", 0, actor="office")
    docs = list(_docs(tools, "twin").values())
    assert len({d.output_path for d in docs}) == 2 and len(tools.uses) == 2  # type: ignore[attr-defined]


def _s3_source(client: MemoryS3, prefix: str, rows: list[dict[str, str]], extra: dict[str, bytes]) -> None:
    client.create_bucket(Bucket="office")
    for row in rows:
        client.put_object(Bucket="office", Key=f"{prefix}{row['file']}",
                          Body=b"%PDF-1.7\n" + row["licence_number"].encode())
    for key, body in extra.items():
        client.put_object(Bucket="office", Key=key, Body=body)
    client.put_object(Bucket="office", Key=f"{prefix}manifest.csv", Body=_manifest(rows))


def test_input_from_an_s3_prefix_is_checked_like_a_folder(tmp_path: Path) -> None:
    client = MemoryS3()
    client.create_bucket(Bucket="work")
    tools = _tools(tmp_path, S3WorkStore(client, "work"))
    rows = _rows(5)
    rows[1]["file"] = "../evil.pdf"  # traversal: the object exists beside the prefix, never read
    rows[2]["file"] = "huge.pdf"  # over the size cap
    rows[3]["file"] = "zip.pdf"  # declared a PDF, is a ZIP (an OFD package)
    _s3_source(client, "2026/b7/", [rows[0], rows[4]], {
        "2026/evil.pdf": b"%PDF-1.7 outside the prefix", "2026/b7/../evil.pdf": b"%PDF-1.7 dot-dot key",
        "2026/b7/huge.pdf": b"%PDF-1.7\n" + b"0" * MAX_DOCUMENT_BYTES, "2026/b7/zip.pdf": OFD_HEAD + b"x" * 64})
    client.put_object(Bucket="office", Key="2026/b7/manifest.csv", Body=_manifest(rows))

    counts = _ingest(tools, "s3-1", "s3://office/2026/b7/")

    assert counts == {"batch_id": "s3-1", "documents": 5, "accepted": 2, "quarantined": 3}
    docs = _docs(tools, "s3-1")
    assert "must be a relative path" in docs["../evil.pdf"].reasons[0]
    assert docs["huge.pdf"].reasons == [f"file huge.pdf is {MAX_DOCUMENT_BYTES + 9} bytes, over the "
                                        f"{MAX_DOCUMENT_BYTES}-byte limit"]
    assert docs["zip.pdf"].reasons == ["file zip.pdf is declared pdf but is a ofd"]
    received = {k for k in client.current("work") if k.startswith("batches/s3-1/in/")}
    assert received == {keys.input_key("s3-1", docs[r["file"]].input_sm3) for r in (rows[0], rows[4])}
    with tools.session_factory() as session:
        assert session.get(Batch, "s3-1").source == "s3://office/2026/b7/"
    assert not list((tmp_path / "scratch").iterdir())  # the downloaded copy is gone

    # The same batch from a folder: the same verdicts, row by row (one check path).
    folder = tmp_path / "same"
    folder.mkdir()
    for key, version in client.current("office").items():
        if key.startswith("2026/b7/") and ".." not in key:
            (folder / key.removeprefix("2026/b7/")).write_bytes(version.body)
    (tmp_path / "evil.pdf").write_bytes(b"%PDF-1.7 outside the folder")
    local = _tools(tmp_path / "local", FolderWorkStore(tmp_path / "local-bucket"))
    _ingest(local, "local-1", folder)
    assert {f: (d.state, d.reasons) for f, d in _docs(local, "local-1").items()} == \
        {f: (d.state, d.reasons) for f, d in docs.items()}


class Unreachable:
    """The S3 client of a store that stops answering once told to (after ingest)."""

    def __init__(self, inner: MemoryS3) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str):
        attribute = getattr(self.inner, name)
        if not self.down:
            return attribute

        def fail(*_args, **_kwargs):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/work")

        return fail


def test_s3_unavailable_during_stamping_is_an_infrastructure_error_and_the_documents_stay_accepted(
        tmp_path: Path) -> None:
    client = Unreachable(MemoryS3())
    client.inner.create_bucket(Bucket="work")
    tools = _tools(tmp_path, S3WorkStore(client, "work"))
    _ingest(tools, "down-1", _folder(tmp_path, _rows(3)))
    client.down = True
    with pytest.raises(process.InfrastructureError, match="0 documents sealed and kept, 3 left as accepted"):
        process.stamp_chunk(tools, "down-1", 0, actor="office")
    assert {d.state for d in _docs(tools, "down-1").values()} == {"accepted"}
    assert tools.uses == []  # type: ignore[attr-defined]
    client.down = False  # the store is back: the retry seals them all, once
    assert process.stamp_chunk(tools, "down-1", 0, actor="office")["stamped"] == 3
    assert len(tools.uses) == 3  # type: ignore[attr-defined]


def test_a_sealed_object_lost_from_the_store_makes_verification_retry_not_fail_the_document(
        tmp_path: Path) -> None:
    client = MemoryS3()
    client.create_bucket(Bucket="work")
    tools = _tools(tmp_path, S3WorkStore(client, "work"))
    _ingest(tools, "lost-1", _folder(tmp_path, _rows(2)))
    process.stamp_chunk(tools, "lost-1", 0, actor="office")
    lost = next(iter(_docs(tools, "lost-1").values()))
    client.delete_object(Bucket="work", Key=keys.sealed_key(lost))
    with pytest.raises(process.InfrastructureError, match="while verifying"):
        process.verify_chunk(tools, "lost-1", 0)
    assert _docs(tools, "lost-1")[lost.file].state == "stamped"


def test_a_tampered_sealed_object_in_the_store_is_refused_by_verification(tmp_path: Path) -> None:
    store = FolderWorkStore(tmp_path / "bucket")
    tools = _tools(tmp_path, store)
    _ingest(tools, "t1", _folder(tmp_path, _rows(2)))
    process.stamp_chunk(tools, "t1", 0, actor="office")
    tampered = next(iter(_docs(tools, "t1").values()))
    store.put(keys.sealed_key(tampered), store.get(keys.sealed_key(tampered)) + b"%% changed")
    process.verify_chunk(tools, "t1", 0)
    docs = _docs(tools, "t1")
    assert docs[tampered.file].state == "failed"
    assert docs[tampered.file].reasons == ["sealed file changed after stamping"]
    assert {d.state for f, d in docs.items() if f != tampered.file} == {"verified"}
