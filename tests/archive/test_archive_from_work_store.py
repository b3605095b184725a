"""archive_batch reads a batch's sealed files from the work store (where stamping wrote them, maybe on
another machine), archives them from a scratch folder it removes, and refuses an object changed since
stamping. No stack: the real ObjectStore over the in-memory Object-Lock S3, the work store over another."""

from __future__ import annotations

from datetime import UTC, datetime

from archive.integration import archive_batch
from kernel.workstore import S3WorkStore
from stamping.batch.models import Batch, BatchDocument
from tests.archive.memory_s3 import MemoryS3


def _batch(env, docs, batch_id: str) -> S3WorkStore:
    client = MemoryS3()
    client.create_bucket(Bucket="work")
    work = S3WorkStore(client, "work")
    with env.sessions() as s, s.begin():
        s.add(Batch(batch_id=batch_id, source="x", es_id="e", requester="r", work_dir=work.name(f"batches/{batch_id}/"),
                    created_at=datetime.now(UTC)))
        for n, d in enumerate(docs):
            key = f"batches/{batch_id}/sealed/{d.sm3}-{n}.{d.row['format']}"
            work.put(key, d.path.read_bytes())
            s.add(BatchDocument(batch_id=batch_id, file=d.row["file"], row=n, format=d.row["format"],
                                record=d.to_input().record, state="verified", output_path=work.name(key),
                                output_sm3=d.sm3, verification=d.verification))
    return work


def test_a_batch_is_archived_from_the_work_store_and_its_scratch_folder_is_removed(local_env, sealed_docs):
    work = _batch(local_env, sealed_docs[:2], "W1")
    scratch = local_env.tmp / "scratch"
    result = archive_batch(local_env.settings, local_env.sessions, "W1", work=work, signer=local_env.signer,
                           store=local_env.store, trust=local_env.trust, scratch_root=scratch)
    assert result.archived == 2, result.to_json()
    assert list(scratch.iterdir()) == []


def test_a_sealed_object_tampered_in_the_work_store_is_refused_with_the_reason_never_archived(
        local_env, sealed_docs):
    work = _batch(local_env, sealed_docs[:2], "W2")
    tampered = sealed_docs[0]
    key = f"batches/W2/sealed/{tampered.sm3}-0.{tampered.row['format']}"
    work.put(key, work.get(key) + b"\n% appended after stamping")
    scratch = local_env.tmp / "scratch"
    result = archive_batch(local_env.settings, local_env.sessions, "W2", work=work, signer=local_env.signer,
                           store=local_env.store, trust=local_env.trust, scratch_root=scratch)
    outcomes = {o.file: o for o in result.outcomes}
    refused = outcomes[tampered.row["file"]]
    assert refused.status == "rejected" and not refused.archival_code
    assert "the document changed since stamping (SM3 differs)" in " ".join(refused.reasons), refused.reasons
    assert outcomes[sealed_docs[1].row["file"]].status == "archived"
    assert list(scratch.iterdir()) == []
