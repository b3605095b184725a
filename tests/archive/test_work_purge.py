"""The work bucket's clean-up (archive.work_purge): once a batch is archived and filed and the retention has
passed, its received files, sealed files and provenance notes leave the work bucket — and nothing else does.

The batches are made by the real steps in a folder work store and archived and filed as the archive and the
platform write it into the database (tests/archive/work_batches.py). Most tests try to make the clean-up remove
something it must not. The real S3 (the embedded SeaweedFS) after the real archive: test_work_purge_s3.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from archive.models import ArchivedBatch, ArchiveRecord, ArchiveRun
from archive.work_purge import ACTION, PurgeRefused, purge_work
from filing.outbox import SENT, OutboxRecord
from kernel.db import session_factory, transaction
from kernel.workstore import FolderWorkStore
from stamping.audit.models import AuditEntry
from stamping.batch import keys, process
from stamping.batch.models import Batch, BatchDocument
from tests.archive.work_batches import DUE, FILED, archived_and_filed, make_world, stamped


@pytest.fixture
def world(tmp_path: Path, db_engine):
    """A work store, the database (SQLite, and PostgreSQL when configured) and the audit log."""
    return make_world(tmp_path, session_factory(db_engine))


def _objects(world, batch_id: str) -> set[str]:
    return {k.removeprefix(keys.batch_prefix(batch_id)) for k in world.store.keys(keys.batch_prefix(batch_id))}


def _purge(world, **kw):
    return purge_work(kw.pop("settings", world.settings), world.sessions, world.store, world.audit,
                      now=kw.pop("now", DUE), **kw)


def _audited(world) -> list[AuditEntry]:
    with world.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == ACTION).order_by(AuditEntry.seq)))


def _state(report, batch_id: str):
    return next(b for b in report.batches if b.batch_id == batch_id)


def test_an_archived_and_filed_batch_loses_its_received_and_sealed_files_and_keeps_manifest_and_report(world):
    docs = stamped(world, "b1")
    archived_and_filed(world, "b1")
    before = _objects(world, "b1")
    assert {k.split("/")[0] for k in before} == {"in", "sealed", "made", "manifest.csv", "report.json",
                                                  "report.html"}

    report = _purge(world)

    assert report.to_json()["counts"]["purged"] == 1 and _state(report, "b1").objects == len(before) - 3
    assert _objects(world, "b1") == {"manifest.csv", "report.json", "report.html"}
    with world.sessions() as s:
        finished = s.get(ArchivedBatch, "b1")
        assert finished.work_purged_at is not None and finished.work_purged_objects == len(before) - 3
    [entry] = _audited(world)
    assert entry.actor == "work-purge" and entry.payload["batch_id"] == "b1"
    assert entry.payload["objects"] == len(before) - 3 and entry.payload["retention_days"] == 30
    # the report says so; the sealed documents' database rows are untouched (the archive has them)
    written = json.loads(world.store.get(keys.batch_file_key("b1", "report.json")))
    assert written["work"]["purged_at"] and written["status"] == "done"
    assert "工作副本" in world.store.get(keys.batch_file_key("b1", "report.html")).decode()
    with world.sessions() as s:
        assert {d.file: d.state for d in process.documents(s, "b1")} == {f: "verified" for f in docs}


def test_nothing_goes_before_the_retention_has_passed_since_the_batch_wasarchived_and_filed(world):
    stamped(world, "early")
    archived_and_filed(world, "early")
    report = _purge(world, now=FILED + timedelta(days=29, hours=23))
    assert report.batches == []  # not even looked at: archived too recently
    report = _purge(world, now=FILED + timedelta(days=29, hours=23), batch_ids=["early"])
    assert _state(report, "early").state == "held"
    assert "kept until 2026-03-31T09:00:00+00:00" in _state(report, "early").reasons[0]
    assert "sealed" in {k.split("/")[0] for k in _objects(world, "early")}
    assert _state(_purge(world, now=FILED + timedelta(days=30)), "early").state == "purged"


def test_the_clock_starts_at_the_platforms_receipt_when_filing_came_later(world):
    stamped(world, "late")
    archived_and_filed(world, "late")
    with transaction(world.sessions) as s:  # the platform was down: filed ten days after archiving
        s.execute(update(OutboxRecord).values(sent_at=FILED + timedelta(days=10)))
    assert _state(_purge(world, now=FILED + timedelta(days=35)), "late").state == "held"
    assert _state(_purge(world, now=FILED + timedelta(days=40)), "late").state == "purged"


def test_zero_days_keeps_the_work_copies_for_ever_and_unsafe_settings_are_refused(world):
    stamped(world, "kept")
    archived_and_filed(world, "kept")
    forever = world.settings.with_overrides(work_retention_days=0)
    assert _purge(world, settings=forever, now=FILED + timedelta(days=3650)).batches == []
    assert "sealed" in {k.split("/")[0] for k in _objects(world, "kept")}
    with pytest.raises(PurgeRefused, match="give 0"):
        _purge(world, settings=world.settings.with_overrides(work_retention_days=-1))
    with pytest.raises(PurgeRefused, match="is an archive bucket"):
        _purge(world, settings=world.settings.with_overrides(work_bucket=world.settings.archive_bucket))
    assert _audited(world) == []


def test_a_dry_run_says_what_would_go_and_removes_nothing(world):
    stamped(world, "dry")
    archived_and_filed(world, "dry")
    before = _objects(world, "dry")
    report = _purge(world, dry_run=True)
    assert _state(report, "dry").state == "would_purge" and _state(report, "dry").objects == len(before) - 3
    assert _objects(world, "dry") == before and _audited(world) == []


def test_a_second_run_and_a_run_racing_it_remove_each_batch_once_with_one_audit_entry(world):
    stamped(world, "race")
    archived_and_filed(world, "race")

    class Racing(FolderWorkStore):
        """The work store of a run that another run overtakes while it deletes."""

        def delete_many(self, names: list[str]) -> None:
            super().delete_many(names[:1])
            overtaken.append(_purge(world))  # the other run, start to end, between our deletes and our mark
            super().delete_many(names[1:])

    overtaken: list = []
    slow = purge_work(world.settings, world.sessions, Racing(world.store.root), world.audit, now=DUE)
    assert _state(overtaken[0], "race").state == "purged"
    assert _state(slow, "race").state == "already_purged"  # deleted what was left, did not mark or audit again
    assert _objects(world, "race") == {"manifest.csv", "report.json", "report.html"}
    assert len(_audited(world)) == 1
    assert _state(_purge(world, batch_ids=["race"]), "race").state == "already_purged"
    assert _purge(world).batches == [] and len(_audited(world)) == 1


def test_a_batch_with_a_failed_document_keeps_everything_the_evidence_included(world):
    docs = stamped(world, "failed")
    with transaction(world.sessions) as s:  # 验章 refused one sealed file
        s.execute(update(BatchDocument).where(BatchDocument.id == next(iter(docs.values())).id).values(
            state="failed", reasons=["signature does not verify"]))
    archived_and_filed(world, "failed")
    before = _objects(world, "failed")
    report = _purge(world, now=FILED + timedelta(days=3650))
    assert _state(report, "failed").state == "held"
    assert "1 failed" in _state(report, "failed").reasons[0]
    assert _objects(world, "failed") == before and _audited(world) == []


def test_quarantined_rows_do_not_hold_a_batch(world):
    docs = stamped(world, "quar", count=4)
    with transaction(world.sessions) as s:  # refused at the door (say, a licence sealed before)
        s.execute(update(BatchDocument).where(BatchDocument.id == next(iter(docs.values())).id).values(
            state="quarantined", output_path="", output_sm3=""))
    archived_and_filed(world, "quar")
    assert _state(_purge(world), "quar").state == "purged"
    assert _objects(world, "quar") == {"manifest.csv", "report.json", "report.html"}


@pytest.mark.parametrize("what, why", [
    ("archive_refused", "the archive refused 1 of its documents"),
    ("not_archived", "verified document(s) are no archived record"),
    ("registration_pending", "archive registration(s) not filed"),
    ("registration_dead", "archive registration(s) not filed"),
    ("sent_without_receipt", "archive registration(s) not filed"),
    ("second_run_unfiled", "1 of its 2 archive registration(s) not filed"),
    ("never_archived", "the archive has not finished with it"),
    ("incomplete", "stamping has not finished it as done (status incomplete)"),
])
def test_a_batch_not_fully_archived_and_filed_keeps_its_work_copies(world, what, why):
    stamped(world, "b")
    if what != "never_archived":
        archived_and_filed(world, "b", refused=int(what == "archive_refused"),
                            registration={"registration_pending": "pending",
                                          "registration_dead": "dead"}.get(what, SENT))
    with transaction(world.sessions) as s:
        if what == "not_archived":
            s.delete(s.scalars(select(ArchiveRecord).where(ArchiveRecord.batch_id == "b")).first())
        if what == "incomplete":
            s.execute(update(Batch).where(Batch.batch_id == "b").values(status="incomplete"))
        if what == "sent_without_receipt":
            s.execute(update(OutboxRecord).values(receipt=None))
        if what == "second_run_unfiled":  # a failed try archived part of the batch: its registration waits
            s.add(ArchiveRun(run_id="second", batch_id="b", created_at=FILED, records=1, bytes=1,
                             manifest_key="runs/b/second/manifest.json", manifest_sm3="cd" * 32))
    before = _objects(world, "b")
    report = _purge(world, now=FILED + timedelta(days=3650), batch_ids=["b"])
    assert _state(report, "b").state == "held" and why in " ".join(_state(report, "b").reasons)
    assert _objects(world, "b") == before and _audited(world) == []


def test_a_row_pointing_at_another_batchs_sealed_file_holds_its_batch_and_touches_neither(world):
    theirs = stamped(world, "theirs")
    ours = stamped(world, "ours")
    archived_and_filed(world, "ours")
    victim = next(iter(theirs.values())).output_path
    with transaction(world.sessions) as s:  # the database edited: our row names their sealed file
        s.execute(update(BatchDocument).where(BatchDocument.id == next(iter(ours.values())).id).values(
            output_path=victim))
    theirs_before, ours_before = _objects(world, "theirs"), _objects(world, "ours")
    report = _purge(world)
    assert "not where stamping writes them" in _state(report, "ours").reasons[0]
    assert _objects(world, "theirs") == theirs_before and _objects(world, "ours") == ours_before
    assert world.store.exists(world.store.key_of(victim))


def test_a_row_naming_the_manifest_as_its_input_cannot_get_the_manifest_removed(world):
    docs = stamped(world, "m")
    with transaction(world.sessions) as s:  # a quarantined row does not hold the batch: it is a way in
        s.execute(update(BatchDocument).where(BatchDocument.id == next(iter(docs.values())).id).values(
            state="quarantined", input_sm3="../manifest.csv", format="pdf", output_path=""))
    archived_and_filed(world, "m")
    assert _state(_purge(world), "m").state == "purged"
    assert {"manifest.csv", "report.json", "report.html"} <= _objects(world, "m")


def test_a_batch_id_that_is_not_a_plain_name_is_never_touched(world):
    stamped(world, "b1")
    stamped(world, "b10")  # a neighbour whose folder starts with b1's name
    archived_and_filed(world, "b1")
    with transaction(world.sessions) as s:  # a batch named so that its folders would be b1's
        s.add(Batch(batch_id="b1/sealed/..", source="x", es_id="es", requester="r", status="done",
                    work_dir="", created_at=FILED, finished_at=FILED))
    archived_and_filed(world, "b1/sealed/..")
    b1, b10 = _objects(world, "b1"), _objects(world, "b10")
    report = _purge(world, batch_ids=["b1/sealed/.."])
    assert "not a plain name" in _state(report, "b1/sealed/..").reasons[0]
    assert _objects(world, "b1") == b1 and _objects(world, "b10") == b10
    assert _state(_purge(world), "b1").state == "purged"
    assert _objects(world, "b10") == b10  # b1's clean-up never reached b10's folders


def test_objects_the_database_does_not_name_are_left_and_said(world):
    stamped(world, "stray")
    archived_and_filed(world, "stray")
    world.store.put("batches/stray/sealed/not-ours.pdf", b"%PDF a file nobody recorded")
    report = _purge(world)
    assert _state(report, "stray").left == ["batches/stray/sealed/not-ours.pdf"]
    assert _objects(world, "stray") == {"manifest.csv", "report.json", "report.html", "sealed/not-ours.pdf"}
    assert _audited(world)[0].payload["left"] == 1


def test_a_store_that_fails_for_one_batch_does_not_stop_the_others_and_is_reported(world):
    stamped(world, "a")
    stamped(world, "z")
    archived_and_filed(world, "a")
    archived_and_filed(world, "z")

    class Failing(FolderWorkStore):
        def delete_many(self, names: list[str]) -> None:
            if any(n.startswith("batches/a/") for n in names):
                raise OSError(5, "Input/output error")
            super().delete_many(names)

    report = purge_work(world.settings, world.sessions, Failing(world.store.root), world.audit, now=DUE)
    assert _state(report, "a").state == "error" and "Input/output error" in _state(report, "a").reasons[0]
    assert _state(report, "z").state == "purged"
    with world.sessions() as s:
        assert s.get(ArchivedBatch, "a").work_purged_at is None  # not marked: the next run tries again
    assert _state(_purge(world), "a").state == "purged"
    assert [e.payload["batch_id"] for e in _audited(world)] == ["z", "a"]


def test_the_migration_keeps_the_batches_archived_before_it_with_their_work_copies_there(db_engine):
    from alembic import command
    from sqlalchemy import MetaData, Table, insert

    from kernel.db import alembic_config, migrate

    config = alembic_config()
    with db_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "archive_0004_reissue")
    with db_engine.begin() as connection:
        old = Table("archive_batch", MetaData(), autoload_with=connection)  # as archive_0004 left it
        assert "work_purged_at" not in old.columns
        connection.execute(insert(old).values(batch_id="old", finished_at=FILED, archived=2, refused=0,
                                              not_archived=[]))
    migrate(db_engine)
    with session_factory(db_engine)() as s:
        kept = s.get(ArchivedBatch, "old")
        assert (kept.archived, kept.work_purged_at, kept.work_purged_objects) == (2, None, 0)
