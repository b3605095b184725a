"""What every fault test checks after the fault, and the domain-level batch bench it runs on.

Also the stack-level tools both fault suites share (the embedded stack's in tests/faults, the
distributed stack's in tests/distributed): :class:`SchedulerStack` (a running stack's database,
registry, demo seal and REST API, and the downstream invariants: one archive package per verified
document, the registration filed once), :func:`task_process`, :func:`wait_for`.

The invariants (issue 11): every document sealed-and-verified, or quarantined/failed with a
reason; exactly one ``seal.use`` audit entry per sealed document and none for the others; the
audit log verifies. The archive and filing invariants (one package per document, each filing
delivered once) are checked by the scheduler tests that go that far.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from kernel.workstore import FolderWorkStore
from sealflow import stack
from sealflow.airflow_api import AirflowApi
from sealflow.batch_runner import DAG_ID, airflow_api, prepare_demo_seal
from stamping.audit.models import AuditEntry
from stamping.batch import process
from stamping.batch.models import BatchDocument
from stamping.batch.seals import BatchSeals
from stamping.placement import Placement
from stamping.registry.demo import KEEPER, bootstrap_demo
from stamping.registry.service import SealRegistry

SEALED = {"verified"}
SET_ASIDE = {"quarantined", "failed"}


@dataclass
class Bench:
    """A SealFlow database with the demo seal enrolled, and the batch steps' tools on it."""

    settings: Settings
    sessions: Any
    registry: SealRegistry
    seals: BatchSeals
    es_id: str

    def tools(self, store_root: Path) -> process.BatchTools:
        """The steps' tools with the work store as a folder under ``store_root`` (a disk the test can fill)."""
        from stamping.ofd.stamp import stamp_ofd
        from stamping.ofd.verify import verify_ofd
        from stamping.pdf.sign import stamp_pdf
        from stamping.pdf.verify import verify_pdf

        trust, lookup = self.seals.trust_store(), self.seals.status_lookup
        return process.BatchTools(
            session_factory=self.sessions, store=FolderWorkStore(store_root),
            scratch_root=store_root.parent / "scratch",
            stampers={"pdf": lambda src, seal, signer, placement, path, options: stamp_pdf(
                          src, seal, signer, placement, path=path),
                      "ofd": lambda src, seal, signer, placement, path, options: stamp_ofd(
                          src, seal, signer, placement, path=path)},
            verifiers={"pdf": lambda data, path: verify_pdf(data, path, trust, lookup),
                       "ofd": lambda data, path: verify_ofd(data, path, trust, lookup)},
            signer_provider=self.seals.batch_signer, record_uses=self.seals.record_uses, status_lookup=lookup)

    def ingest(self, tools: process.BatchTools, batch_id: str, source: Path, chunk_size: int = 100) -> dict:
        return process.ingest(tools, batch_id=batch_id, source=source, es_id=self.es_id, requester="applicant",
                              placement=Placement.parse("anchor:（盖章）"), chunk_size=chunk_size)


def make_bench(home: Path) -> Bench:
    settings = Settings(home=home, kek="00" * 32)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    registry = SealRegistry(sessions, settings)
    pin = secrets.token_urlsafe(12)
    demo = bootstrap_demo(registry, official_pin=pin)
    seals = BatchSeals(settings, sessions, registry)
    seals.enrol(demo["es_ids"]["official"], pin, KEEPER)
    return Bench(settings, sessions, registry, seals, demo["es_ids"]["official"])


def documents(sessions: Any, batch_id: str) -> list[BatchDocument]:
    with sessions() as session:
        return list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id)))


def seal_uses(sessions: Any, batch_id: str) -> Counter:
    """``seal.use`` entries of the batch, counted per document file name."""
    with sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "seal.use"))
        return Counter((r.payload or {})["document"].split(" sm3:")[0] for r in rows
                       if (r.payload or {}).get("batch_id") == batch_id)


def assert_batch_invariants(sessions: Any, registry: SealRegistry, batch_id: str) -> None:
    """Sealed-and-verified or set aside with a reason; one seal.use per sealed document; audit intact."""
    from stamping.audit import verify_audit

    docs = documents(sessions, batch_id)
    assert docs, f"batch {batch_id} has no documents"
    unfinished = [(d.file, d.state) for d in docs if d.state not in SEALED | SET_ASIDE]
    assert not unfinished, f"documents neither verified nor set aside: {unfinished[:10]}"
    assert all(d.reasons for d in docs if d.state in SET_ASIDE), "a document set aside without a reason"
    uses = seal_uses(sessions, batch_id)
    sealed = {d.file for d in docs if d.state in SEALED}
    assert {f: n for f, n in uses.items() if n != 1} == {}, "a document sealed more than once"
    assert set(uses) == sealed | {d.file for d in docs if d.state == "failed" and d.output_sm3}
    with sessions() as session:
        report = verify_audit(session, registry.audit_public_key())
    assert report.ok, f"audit log not intact at {report.first_bad_seq}: {report.reason}"


class SchedulerStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        engine = make_engine(settings.resolved_database_url)
        migrate(engine)
        self.sessions = session_factory(engine)
        self.registry = SealRegistry(self.sessions, settings)
        self.seal = prepare_demo_seal(settings)
        self.api: AirflowApi = airflow_api(settings)

    def task_instances(self, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
        data = self.api._call("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {(ti["task_id"], ti["map_index"]): ti for ti in data["task_instances"]}

    def wait_for_task_state(self, run_id: str, task_id: str, state: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for (tid, _index), ti in self.task_instances(run_id).items():
                if tid == task_id and ti["state"] == state:
                    return ti
            time.sleep(0.3)
        raise AssertionError(f"{task_id} never {state} in {run_id}: {self.task_instances(run_id)}")

    def downstream_invariants(self, batch_id: str, timeout: float = 240) -> None:
        """One archive package per verified document; one registration per archiving run of the batch
        (``archiving.queue_registrations``: a try that archived part of the batch made a run of its own,
        the retry another), the runs covering the packages exactly, each registration filed once."""
        from archive.models import ArchiveRecord, ArchiveRun
        from filing.outbox import SENT, OutboxRecord

        verified = {d.file for d in documents(self.sessions, batch_id) if d.state == "verified"}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sessions() as session:
                archived = session.scalar(select(func.count()).select_from(ArchiveRecord)
                                          .where(ArchiveRecord.batch_id == batch_id))
                runs = list(session.scalars(select(ArchiveRun).where(ArchiveRun.batch_id == batch_id)))
                filed = session.scalars(select(OutboxRecord).where(OutboxRecord.kind == "archive.register",
                                                                   OutboxRecord.subject == batch_id)).all()
            if archived >= len(verified) and len(filed) >= len(runs) and filed and all(r.state == SENT for r in filed):
                break
            time.sleep(0.5)
        with self.sessions() as session:
            names = session.scalars(select(ArchiveRecord.document_name).where(ArchiveRecord.batch_id == batch_id))
            packages = list(names)
        assert len(packages) == len(verified), f"{len(packages)} packages for {len(verified)} documents"
        assert sum(run.records for run in runs) == len(packages), [(r.run_id, r.records) for r in runs]
        assert sorted(r.payload.get("manifest_sm3") for r in filed) == sorted(run.manifest_sm3 for run in runs)
        assert filed and all(r.state == SENT for r in filed), [(r.record_id, r.state, r.last_error) for r in filed]
        with sqlite3.connect(stack.platform_db(self.settings)) as db:
            for record in filed:
                held = db.execute("SELECT COUNT(*) FROM filings WHERE record_id = ?", (record.record_id,)).fetchone()
                assert held == (1,), (record.record_id, held)


def task_process(ti_id: str) -> psutil.Process | None:
    """The task's own process: Airflow titles it ``airflow worker -- <task instance id>``."""
    for proc in psutil.process_iter(["cmdline"]):
        if f"airflow worker -- {ti_id}" in " ".join(proc.info.get("cmdline") or []):
            return proc
    return None


def wait_for(what: str, check, timeout: float = 300, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
