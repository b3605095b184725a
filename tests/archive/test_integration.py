"""What the pipeline calls: a batch's verified documents archived by batch id, and scheduled fixity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archive.index import SearchQuery, search
from archive.integration import archive_batch, inputs_for_batch, scheduled_fixity
from kernel.workstore import FolderWorkStore

pytestmark = pytest.mark.stack


def test_archive_batch_from_pipeline_rows(env, sealed_docs):
    from stamping.batch.models import Batch, BatchDocument

    now = datetime.now(UTC)
    work = FolderWorkStore(env.tmp / "work")
    with env.sessions() as s, s.begin():
        s.add(Batch(batch_id="PIPE1", source="x", es_id="e", requester="r", work_dir=work.name("batches/PIPE1/"),
                    created_at=now))
        for n, d in enumerate(sealed_docs[:3]):
            key = f"batches/PIPE1/sealed/{d.sm3}-{n}.{d.row['format']}"
            work.put(key, d.path.read_bytes())
            s.add(BatchDocument(batch_id="PIPE1", file=d.row["file"], row=n, format=d.row["format"],
                                record=d.to_input().record, state="verified", output_path=work.name(key),
                                output_sm3=d.sm3, verification=d.verification))
        s.add(BatchDocument(batch_id="PIPE1", file="bad.pdf", row=9, format="pdf", record={}, state="failed"))
    with env.sessions() as s:
        inputs = inputs_for_batch(s, "PIPE1", work, env.tmp)
    assert [i.name for i in inputs] == [d.row["file"] for d in sealed_docs[:3]]
    assert all(i.sm3 and i.size and i.verification for i in inputs)

    result = archive_batch(env.settings, env.sessions, "PIPE1", work=work, signer=env.signer, store=env.store)
    assert result.archived == 3, result.to_json()
    assert archive_batch(env.settings, env.sessions, "PIPE1", work=work, signer=env.signer,
                         store=env.store).count("already_archived") == 3
    with env.sessions() as s:
        assert len(search(s, SearchQuery(batch_id="PIPE1"))) == 3

    report = scheduled_fixity(env.settings, env.sessions)
    assert report["ok"] and report["records_checked"] == 3 and report["report_key"].startswith("reports/fixity/")
