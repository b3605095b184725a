"""A thousand documents through stamp_batch → archive_batch → file_records under the real scheduler
(LocalExecutor, the task supervisor), not ``dag.test()``; then the archivist's paths on the packages
the pipeline made (issue 11 items 1 and 3, issue 14's archivist).

Before the fix, archive_batch failed under the scheduler for every batch of 200 documents or more
(the archive's ``spawn`` pool re-ran the ``airflow`` entry script inside the task supervisor).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from sealflow.batch_runner import DAG_ID, airflow_api, approve, prepare_demo_seal, run_batch
from sealflow.stack import down, up
from stamping.batch.samples import write_batch
from tests.stack_fixtures import stack_settings
from tests.work_bucket import read_object

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DOCUMENTS = 1000


@dataclass
class Archived:
    settings: Settings
    sessions: object
    batch_id: str
    keeper: str
    es_id: str
    seconds: dict[str, float]
    source: Path


def _wait(what: str, done, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _outbox_settled(sessions) -> dict | None:
    from filing.reconcile import status

    with sessions() as s:
        state = status(s)
    counts = state["counts"]
    return state if counts.get("sent") and counts["sent"] == state["total"] else None


def _archive_run_done(api, after: str) -> dict | None:
    runs = [r for r in api.runs("archive_batch") if (r.get("queued_at") or "") > after]
    finished = [r for r in runs if r["state"] in ("success", "failed")]
    return finished[0] if finished and len(finished) == len(runs) else None


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    """One batch of DOCUMENTS certificates submitted, approved, stamped, archived and filed."""
    tmp = tmp_path_factory.mktemp("e2e-archive")
    settings = stack_settings(tmp / "var")
    try:
        seal = prepare_demo_seal(settings)  # first: the registry's people (the keeper) become the API server's users
        up(settings, ui=True, out=lambda _m: None)
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        sessions = session_factory(engine)
        write_batch(tmp / "in", DOCUMENTS, bad=False)
        seconds: dict[str, float] = {}
        started = time.monotonic()
        after = datetime.now(UTC).isoformat()
        result = run_batch(settings, tmp / "in", seal.es_id, seal.keeper, "big-1", timeout=1200)
        assert result["state"] == "success", _errors_logged(settings, DAG_ID, result["run_id"])
        seconds["stamp"] = time.monotonic() - started
        api = airflow_api(settings)
        try:
            run = _wait("archive_batch run", lambda: _archive_run_done(api, after), 900)
        finally:
            api.close()
        assert run["state"] == "success", _errors_logged(settings, "archive_batch", run["dag_run_id"])
        seconds["archive"] = time.monotonic() - started - seconds["stamp"]
        _wait("every filing record delivered", lambda: _outbox_settled(sessions), 600)
        seconds["file"] = time.monotonic() - started - seconds["stamp"] - seconds["archive"]
        # Figures for the closing note (shown with -s): seconds per stage under the scheduler.
        print(json.dumps({"documents": DOCUMENTS, **{k: round(v, 1) for k, v in seconds.items()}}))
        yield Archived(settings, sessions, "big-1", seal.keeper, seal.es_id, seconds, tmp / "in")
        engine.dispose()
    finally:
        down(settings, out=lambda _m: None)


def test_every_document_of_a_large_batch_is_archived_once_and_every_filing_delivered(archived: Archived) -> None:
    from archive.models import ARCHIVED, ArchivedBatch, ArchiveRecord
    from archive.store import ObjectStore
    from filing.outbox import OutboxRecord
    from stamping.batch.models import BatchDocument

    with archived.sessions() as s:
        verified = list(s.scalars(select(BatchDocument.record).where(BatchDocument.batch_id == archived.batch_id,
                                                                     BatchDocument.state == "verified")))
        licence_ids = {r["licence_id"] for r in verified}
        rows = s.scalars(select(ArchiveRecord).where(ArchiveRecord.batch_id == archived.batch_id)).all()
        finished = s.get(ArchivedBatch, archived.batch_id)
        registrations = s.scalar(select(func.count()).select_from(OutboxRecord)
                                 .where(OutboxRecord.kind == "archive.register",
                                        OutboxRecord.subject == archived.batch_id))
    assert len(licence_ids) == DOCUMENTS
    assert sorted(r.licence_id for r in rows) == sorted(licence_ids)  # one row per document, none twice
    assert all(r.state == ARCHIVED for r in rows)
    assert finished is not None and finished.archived == DOCUMENTS
    stored = {o.key: o.size for o in ObjectStore(archived.settings).list("packages/")}
    assert {r.object_key: r.package_size for r in rows} == stored  # one package per document, nothing else
    assert registrations >= 1  # and _wait above saw every filing record (these included) delivered


def test_the_pipeline_s_sealed_files_hold_the_seal_picture_once_compressed(archived: Archived) -> None:
    from stamping.batch.models import BatchDocument
    from tests.pipeline.test_sealed_size import (
        assert_ofd_within_bound,
        assert_pdf_picture_compressed,
        seal_picture,
    )

    with archived.sessions() as s:
        docs = s.scalars(select(BatchDocument).where(BatchDocument.batch_id == archived.batch_id)).all()
    seal_der = _seal_der(archived)
    picture = seal_picture(seal_der)
    from asn1crypto.core import Asn1Value

    from stamping.ses.codec import parse_seal

    (signer_certificate,) = parse_seal(seal_der).cert_list  # the demo seal lists its one signer's certificate
    ofd = next(d for d in docs if d.format == "ofd")
    assert_ofd_within_bound((archived.source / ofd.file).read_bytes(), read_object(archived.settings, ofd.output_path),
                            picture)
    # A stamp task's first PDF leaves the full token reserve (the token's size is not known before the first
    # one, and signing a document twice to learn it would give a signature no use record explains): at most
    # one such file per task try; every other PDF holds the bound with the stamper's margin.
    from stamping.pdf.sign import TOKEN_MARGIN
    from tests.pipeline.test_sealed_size import _contents

    def slack(doc) -> int:
        contents = _contents(read_object(archived.settings, doc.output_path))
        return len(contents) - len(Asn1Value.load(contents, strict=False).dump())  # the unused part of the hole

    pdfs = sorted((d for d in docs if d.format == "pdf"), key=slack)
    reserved = [d for d in pdfs if slack(d) > TOKEN_MARGIN + 8]
    assert len(reserved) <= 2 * len({d.chunk for d in pdfs}), len(reserved)  # a task's first, and a retry's
    pdf = pdfs[0]
    assert_pdf_picture_compressed((archived.source / pdf.file).read_bytes(),
                                  read_object(archived.settings, pdf.output_path), picture, seal_der,
                                  signer_certificate)


def test_the_pipeline_s_package_verifies_with_only_the_root(archived: Archived, tmp_path: Path, cli) -> None:
    code = _one_archival_code(archived)
    assert cli("archive", "get", code, "-o", str(tmp_path)) == 0
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    chain = (folder / "_batch" / "intermediates.pem").read_bytes()
    assert b"BEGIN CERTIFICATE" in chain  # the CA chain the pipeline used travels in the package
    assert cli("archive", "verify", str(folder), "--trust", str(_root(archived))) == 0


def test_the_url_serves_a_verifiable_package_pinned_to_its_version(archived: Archived, tmp_path: Path, cli,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from archive.store import ObjectStore

    code = _one_archival_code(archived)
    capsys.readouterr()
    assert cli("archive", "url", code, "--expires", "600") == 0
    out, err = capsys.readouterr()
    url = out.strip().splitlines()[0]
    assert "versionId=" in url and "expires " in err and "(600 s)" in err
    served = httpx.get(url, timeout=30)
    assert served.status_code == 200
    shared = tmp_path / "shared.tar"
    shared.write_bytes(served.content)
    assert cli("archive", "verify", str(shared), "--trust", str(_root(archived))) == 0
    # A later object written over the shared key does not change what the link serves.
    key = err.split(" of ", 1)[1].split(";", 1)[0]
    ObjectStore(archived.settings).put_unlocked(key, b"something else", content_type="application/x-tar")
    assert httpx.get(url, timeout=30).content == served.content


def test_eep_works_without_any_service_pin_and_never_locks_the_archiving_key(
        archived: Archived, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from kernel.keys import key_store
    from kernel.settings import get_settings

    code = _one_archival_code(archived)
    assert cli("archive", "get", code, "-o", str(tmp_path)) == 0
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())
    monkeypatch.delenv("SEALFLOW_ARCHIVE_KEY_PIN", raising=False)
    get_settings.cache_clear()
    assert cli("archive", "eep", str(folder), "-o", str(tmp_path / "record.eep.xml")) == 0
    assert (tmp_path / "record.eep.xml").stat().st_size > 0
    monkeypatch.setenv("SEALFLOW_ARCHIVE_KEY_PIN", "not-the-archiving-unit-pin")
    get_settings.cache_clear()
    for _ in range(6):  # more than the five tries a key allows
        assert cli("archive", "eep", str(folder), "-o", str(tmp_path / "other.eep.xml")) == 2
    keys = key_store(archived.settings)
    assert not keys.is_locked(archived.settings.archive_key_id)


def test_batches_whose_asset_events_were_lost_are_archived_by_the_next_run(archived: Archived,
                                                                           tmp_path: Path) -> None:
    """Two batches finish while archiving waits, and their queued asset events are lost (what
    Airflow's one queue row per asset and DAG does to a batch finishing together with another);
    the next archive_batch run, named by no event, archives both."""
    import sqlite3

    from archive.models import ArchivedBatch

    api = airflow_api(archived.settings)
    try:
        api._call("PATCH", "/dags/archive_batch", json={"is_paused": True})
        for n, batch_id in enumerate(("pair-a", "pair-b")):
            write_batch(tmp_path / batch_id, 3, bad=False, start=5000 + 10 * n)
            conf = {"batch_location": str(tmp_path / batch_id), "es_id": archived.es_id, "requester": "applicant",
                    "placement": "anchor:（盖章）", "batch_id": batch_id, "pdf_container": "pkcs7"}
            run_id = api.trigger(DAG_ID, conf, run_id=f"batch__{batch_id}")
            approve(archived.settings, run_id, batch_id, archived.keeper)
            state = api.wait_for_run(DAG_ID, run_id, timeout=600)
            assert state == "success", _errors_logged(archived.settings, DAG_ID, run_id)
        with sqlite3.connect(archived.settings.airflow_home / "airflow.db", timeout=30) as db:
            db.execute("DELETE FROM asset_dag_run_queue WHERE target_dag_id = 'archive_batch'")
        with archived.sessions() as s:
            assert s.get(ArchivedBatch, "pair-a") is None and s.get(ArchivedBatch, "pair-b") is None
        api.unpause("archive_batch")
        run_id = api.trigger("archive_batch", {})
        state = api.wait_for_run("archive_batch", run_id, timeout=600)
        assert state == "success", _errors_logged(archived.settings, "archive_batch", run_id)
        with archived.sessions() as s:
            assert s.get(ArchivedBatch, "pair-a") is not None
            assert s.get(ArchivedBatch, "pair-b") is not None
    finally:
        api.unpause("archive_batch")
        api.close()


# -- helpers -----------------------------------------------------------------------------------

@pytest.fixture
def cli(archived: Archived, monkeypatch: pytest.MonkeyPatch):
    """``sealflow …`` as the archivist runs it: the installation's SEALFLOW_* settings, no PIN."""
    from kernel.settings import get_settings
    from sealflow import cli as sealflow_cli
    from sealflow.stack import sealflow_env

    for key, value in sealflow_env(archived.settings).items():
        if not key.endswith("_PIN"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield lambda *argv: sealflow_cli.main(list(argv))
    get_settings.cache_clear()


def _one_archival_code(archived: Archived) -> str:
    from archive.models import ArchiveRecord

    with archived.sessions() as s:
        return s.scalars(select(ArchiveRecord.archival_code).where(ArchiveRecord.batch_id == archived.batch_id)
                         .order_by(ArchiveRecord.archival_code).limit(1)).one()


def _errors_logged(settings: Settings, dag_id: str, run_id: str) -> str:
    """The error lines of a failed run's task logs, for the assertion message."""
    lines = []
    for log in sorted((settings.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if '"level":"error"' in line.replace(" ", ""):
                lines.append(f"{log.parent.name}/{log.name}: {line[:400]}")
    return f"run {run_id} of {dag_id} failed:\n" + "\n".join(lines[:30])


def _seal_der(archived: Archived) -> bytes:
    from stamping.registry.service import SealRegistry

    return SealRegistry(archived.sessions, archived.settings).seal_der(archived.es_id)


def _root(archived: Archived) -> Path:
    return archived.settings.state_dir / "ca" / "ca-root.pem"
