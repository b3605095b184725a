"""A licence archived once and sealed again: a declared 换发/补发 is a new record superseding the old one,
the old one stays intact and says it is superseded, reruns add nothing, and an undeclared re-seal is
refused with the reason — never skipped in silence (issue 13, item 3).

No stack: the real ObjectStore over the in-memory Object-Lock S3 of ``memory_s3`` and a SQLite index.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from archive import index
from archive.checks import NoScanner
from archive.index import SearchQuery
from archive.models import ArchivedBatch, ArchiveRecord
from archive.service import archive_records
from gmpki.gm.sm3 import sm3_hex
from tests.archive.conftest import SealedDoc

REISSUE = {"reissue": "换发", "reissue_reason": "持证主体名称变更"}


def _archive(env, docs: list[SealedDoc], batch_id: str, **record):
    inputs = []
    for d in docs:
        inp = d.to_input()
        inp.record.update(record)
        inputs.append(inp)
    return archive_records(inputs, batch_id=batch_id, settings=env.settings, store=env.store,
                           sessions=env.sessions, signer=env.signer, trust=env.trust, scanner=NoScanner())


def _resealed(kit, doc: SealedDoc, folder: Path) -> SealedDoc:
    """The same licence sealed again (a new sealed document: another signature, another SM3)."""
    from stamping.batch.samples import render_certificate
    from stamping.ofd.stamp import stamp_ofd
    from stamping.pdf import stamp_pdf
    from stamping.placement import Placement
    from stamping.verify.dispatch import verify_bytes

    stamp = stamp_pdf if doc.row["format"] == "pdf" else stamp_ofd
    sealed = stamp(render_certificate(doc.row), kit.seal_der, kit.signer, Placement.parse("anchor:（盖章）"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / doc.row["file"]
    path.write_bytes(sealed)
    result = verify_bytes(sealed, str(path), kit.trust)
    assert result.valid and sm3_hex(sealed) != doc.sm3
    return SealedDoc(dict(doc.row), path, sm3_hex(sealed), result.to_json())


def _rows(env, licence_id: str) -> list[ArchiveRecord]:
    with env.sessions() as s:
        return list(s.scalars(select(ArchiveRecord).where(ArchiveRecord.licence_id == licence_id)
                              .order_by(ArchiveRecord.id)))


def _versions(env, key: str) -> list[str]:
    return env.store.versions(key)


@pytest.fixture
def archived_then_resealed(local_env, sealed_docs, kit, tmp_path):
    """One licence archived by batch ORIG, and a second sealed document of the same licence."""
    original = sealed_docs[0]
    first = _archive(local_env, [original], "ORIG")
    assert first.archived == 1, first.to_json()
    return original, _resealed(kit, original, tmp_path / "again")


def test_a_declared_reissue_is_archived_as_a_new_record_that_supersedes_the_earlier_one(
        local_env, archived_then_resealed):
    original, again = archived_then_resealed
    lid = original.row["licence_id"]
    [old] = _rows(local_env, lid)
    old_version, old_sm3 = _versions(local_env, old.object_key), old.package_sm3

    result = _archive(local_env, [again], "REISSUE", **REISSUE)

    [outcome] = result.outcomes
    assert outcome.status == "archived", result.to_json()
    assert outcome.archival_code != old.archival_code and outcome.supersedes == old.archival_code
    assert result.to_json()["superseding"] == [{"licence_id": lid, "archival_code": outcome.archival_code,
                                                "supersedes": old.archival_code}]
    earlier, new = _rows(local_env, lid)
    assert (new.archival_code, new.supersedes, new.superseded_by) == (outcome.archival_code, old.archival_code, None)
    assert (new.reissue, new.reissue_reason, new.batch_id, new.document_sm3) == ("换发", "持证主体名称变更", "REISSUE",
                                                                                 again.sm3)
    # The earlier record is kept whole — its package untouched (same single locked version, same SM3) —
    # and its index row says which record superseded it.
    assert earlier.superseded_by == new.archival_code and earlier.state == "archived"
    assert (earlier.object_key, earlier.package_sm3, earlier.document_sm3) == (old.object_key, old_sm3, original.sm3)
    assert _versions(local_env, old.object_key) == old_version
    assert sm3_hex(local_env.store.get(old.object_key)) == old_sm3
    # The new package carries the link (the locked record itself says what it supersedes).
    with tarfile.open(fileobj=io.BytesIO(local_env.store.get(new.object_key))) as tf:
        meta = json.loads(next(tf.extractfile(m).read() for m in tf if m.name.endswith("/metadata.json")))
    assert meta["reissue"] == {"kind": "换发", "reason": "持证主体名称变更", "supersedes": old.archival_code}
    registration = json.loads(local_env.store.get(result.registration_key))
    assert registration["superseding"] == [{"archival_code": new.archival_code, "supersedes": old.archival_code,
                                            "licence_id": lid}]


def test_lookups_by_licence_answer_with_the_current_record_and_the_history_shows_both(
        local_env, archived_then_resealed, capsys):
    from sealflow.commands.archive import run_history

    original, again = archived_then_resealed
    lid, number = original.row["licence_id"], original.row["licence_number"]
    _archive(local_env, [again], "REISSUE", **REISSUE)
    old, new = _rows(local_env, lid)
    with local_env.sessions() as s:
        assert index.find_one(s, lid).archival_code == new.archival_code
        assert index.find_one(s, number).archival_code == new.archival_code
        assert index.find_one(s, old.archival_code).archival_code == old.archival_code  # a 档号 names that record
        assert [r.archival_code for r in index.search(s, SearchQuery(licence_id=lid))] == [new.archival_code]
        assert len(index.search(s, SearchQuery(licence_id=lid, all_versions=True))) == 2
        assert [r.archival_code for r in index.history(s, old.archival_code)] == [old.archival_code,
                                                                                  new.archival_code]

    assert run_history(argparse.Namespace(key=lid, json=True), local_env.settings) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["archival_code"], r["supersedes"], r["superseded_by"]) for r in listed] == [
        (old.archival_code, "", new.archival_code), (new.archival_code, old.archival_code, "")]


def test_rerunning_the_archive_of_either_batch_adds_no_record(local_env, archived_then_resealed):
    original, again = archived_then_resealed
    _archive(local_env, [again], "REISSUE", **REISSUE)
    packages = sorted(o.key for o in local_env.store.list("packages/"))

    rerun = _archive(local_env, [again], "REISSUE", **REISSUE)
    first_rerun = _archive(local_env, [original], "ORIG")

    assert [o.status for o in rerun.outcomes + first_rerun.outcomes] == ["already_archived", "already_archived"]
    assert len(_rows(local_env, original.row["licence_id"])) == 2
    assert sorted(o.key for o in local_env.store.list("packages/")) == packages


def test_an_undeclared_reseal_that_reaches_the_archive_is_rejected_naming_the_earlier_record(
        local_env, archived_then_resealed):
    original, again = archived_then_resealed
    lid = original.row["licence_id"]
    [old] = _rows(local_env, lid)

    result = _archive(local_env, [again], "AGAIN")

    [outcome] = result.outcomes
    assert outcome.status == "rejected"
    assert lid in outcome.reasons[0] and old.archival_code in outcome.reasons[0]
    assert "换发/补发" in outcome.reasons[0]
    assert result.to_json()["not_archived"][0]["reasons"] == outcome.reasons
    [still] = _rows(local_env, lid)
    assert still.superseded_by is None  # nothing superseded, nothing added


def test_the_same_sealed_document_under_another_batch_is_rejected_not_counted_archived(
        local_env, archived_then_resealed):
    original, _again = archived_then_resealed
    [old] = _rows(local_env, original.row["licence_id"])

    [outcome] = _archive(local_env, [original], "OTHER").outcomes

    assert outcome.status == "rejected" and f"archived as {old.archival_code} by batch ORIG" in outcome.reasons[0]


def test_a_batch_whose_reseal_is_refused_is_finished_with_the_reason_for_its_report(local_env, archived_then_resealed):
    """Through the pipeline's path: the batch's rows in the database, ``archive_batch``, ``after_stamping``."""
    from archive.integration import after_stamping, archive_batch
    from kernel.workstore import FolderWorkStore
    from stamping.batch.models import Batch, BatchDocument

    _original, again = archived_then_resealed
    work = FolderWorkStore(local_env.tmp / "work")
    key = f"batches/EDITED/sealed/{again.sm3}-1.{again.row['format']}"
    work.put(key, again.path.read_bytes())
    with local_env.sessions() as s, s.begin():  # a re-seal without 换发/补发 that admission would have quarantined
        s.add(Batch(batch_id="EDITED", source="x", es_id="e", requester="r", work_dir=work.name("batches/EDITED/"),
                    created_at=datetime.now(UTC)))
        s.add(BatchDocument(batch_id="EDITED", file=again.row["file"], row=1, format=again.row["format"],
                            record=again.to_input().record, state="verified", output_path=work.name(key),
                            output_sm3=again.sm3, verification=again.verification))

    result = archive_batch(local_env.settings, local_env.sessions, "EDITED", work=work, signer=local_env.signer,
                           store=local_env.store, trust=local_env.trust)

    assert result.count("rejected") == 1
    with local_env.sessions() as s:
        finished = s.get(ArchivedBatch, "EDITED")
        after = after_stamping(s, "EDITED")
        assert s.scalar(select(func.count()).select_from(ArchiveRecord)) == 1
    assert finished.refused == 1 and finished.not_archived[0]["file"] == again.row["file"]
    assert after.archive_refused == 1
    assert "is already archived as" in after.archive_reasons[again.row["file"]][0]


def test_a_reissue_whose_run_died_before_publishing_resumes_and_only_then_supersedes(local_env, archived_then_resealed):
    """Until the new record is published the earlier one stays current; the rerun resumes the reserved
    档号 with its link, and marks the earlier record in the same transaction that publishes the new one."""
    from archive.service import Archiver

    original, again = archived_then_resealed
    lid = original.row["licence_id"]
    inp = again.to_input()
    inp.record.update(REISSUE)

    class Crash(Exception):
        pass

    def crash(*_a, **_k):
        raise Crash

    with Archiver(local_env.settings, local_env.store, local_env.sessions, local_env.signer, local_env.trust,
                  NoScanner()) as archiver:
        archiver._finish_run = crash  # the run dies after the package is stored
        with pytest.raises(Crash):
            archiver.run([inp], "REISSUE")
    old, pending = _rows(local_env, lid)
    assert (pending.state, pending.supersedes, old.superseded_by) == ("pending", old.archival_code, None)
    with local_env.sessions() as s:
        assert index.find_one(s, lid).archival_code == old.archival_code

    [outcome] = _archive(local_env, [again], "REISSUE", **REISSUE).outcomes

    assert (outcome.status, outcome.archival_code, outcome.supersedes) == ("archived", pending.archival_code,
                                                                          old.archival_code)
    old, new = _rows(local_env, lid)
    assert (new.state, old.superseded_by) == ("archived", new.archival_code)
    assert len(_versions(local_env, new.object_key)) == 1  # the stored package was adopted, not written again
