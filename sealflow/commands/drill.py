"""``sealflow backup drill`` (``make drill``) — the disaster-recovery drill, for real, on a throw-away stack.

1. a fresh embedded stack in a work folder, on free ports: SeaweedFS (primary archive, data in the home),
   the archive replica (a second SeaweedFS, data *outside* the home), the time-stamp authority, Airflow
   with its UI components; the national-platform simulator runs outside the home too — it is the world;
2. a batch through the pipeline (stamp_batch with the keeper's 用章审批, archive_batch, file_records),
   an audit checkpoint anchored in the archive and at the platform;
3. a backup (to a folder outside the home) and the KEK split into 5 shares (3 rebuild it);
4. a few more documents sealed, archived and filed — the work a restore will lose;
5. the disaster: the stack stopped, the home (database, keys, CA, the primary archive store) deleted; on
   PostgreSQL the database dropped and made again, empty;
6. recovery: the KEK from 3 shares, ``backup restore`` into the empty home, ``stack up``, ``backup check``
   (the primary archive refilled from the replica, the audit chain against its anchors, the outbox against
   the platform);
7. the checks: the audit chain verifies; every archived package is retrieved and verifies offline (with
   only the root certificate); the documents sealed after the backup are reported; filing resumes and the
   platform holds nothing twice; a new batch runs through the pipeline.

The last line printed is one JSON object (``restored``, ``audit_ok``, ``archive_ok``, ``duplicates_filed``,
``lost_after_backup``, ``rpo_s``, ``rto_s``, ``backup_mb`` and details). RPO: the age of the restored state
when the disaster struck (everything younger is lost); RTO: from the start of recovery until the restored
home agreed with the world and could take a batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.settings import Settings, local_url


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("drill", help="the disaster-recovery drill on a throw-away stack (make drill)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--docs", type=int, default=6, help="documents in the first batch (default 6)")
    d.add_argument("--after", type=int, default=3, help="documents sealed after the backup (default 3)")
    d.add_argument("--new", type=int, default=2, help="documents in the batch after the restore (default 2)")
    d.add_argument("--pg", metavar="DSN", help="run on PostgreSQL: a fresh database is created on this server "
                                                "(and dropped at the end)")
    d.add_argument("--work", type=Path, help="work folder (default: a new temporary folder, removed at the end)")
    d.add_argument("--keep", action="store_true", help="keep the work folder")
    d.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from sealflow.exits import CheckFailed

    drill = Drill(docs=args.docs, after=args.after, new=args.new, pg_dsn=args.pg or "", work=args.work,
                  keep=args.keep)
    result = drill.run()
    print(json.dumps(result, ensure_ascii=False))
    if not (result["restored"] and result["audit_ok"] and result["archive_ok"] and result["duplicates_filed"] == 0
            and result["new_batch_ok"] and result["lost_after_backup"] == result["sealed_after_backup"]):
        raise CheckFailed("the drill found problems (see the JSON line)")
    return 0


@dataclass
class Drill:
    docs: int = 6
    after: int = 3
    new: int = 2
    pg_dsn: str = ""
    work: Path | None = None
    keep: bool = False
    say: Callable[[str], None] = field(default=lambda msg: print(f"drill: {msg}", flush=True))
    _platform: subprocess.Popen | None = None
    _pg_name: str = ""

    # -- the drill --------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from sealflow import stack

        own_work = self.work is None
        self.work = Path(self.work or tempfile.mkdtemp(prefix="sealflow-drill-")).resolve()
        self.settings = self._settings()
        self.say(f"work folder {self.work}; database {'PostgreSQL ' + self._pg_name if self.pg_dsn else 'SQLite'}")
        try:
            return self._run()
        finally:
            with contextlib.suppress(Exception):  # cleanup must not hide the drill's own error
                stack.down(self.settings, out=lambda _m: None)
            self._stop_platform()
            self._drop_pg()
            if own_work and not self.keep:
                shutil.rmtree(self.work, ignore_errors=True)

    def _run(self) -> dict[str, Any]:
        from sealflow.batch_runner import prepare_demo_seal

        s = self.settings
        self._start_platform()
        seal = prepare_demo_seal(s)
        self._up()
        self._batch("drill-a", self.docs, seal, start=secrets.randbelow(4_000_000))
        self._cli("audit", "checkpoint")
        self._cli("filing", "drain")

        backups = self.work / "backups"
        taken = json.loads(self._cli("backup", "create", "--to", str(backups), "--json"))
        backed_up_at = time.time()
        backup_mb = round(sum(p.stat().st_size for p in backups.rglob("*") if p.is_file()) / 1e6, 3)
        self._cli("kek", "split", "--shares", "5", "--threshold", "3", "--out", str(self.work / "escrow"))
        self.say(f"backup {taken['backup_id']}: {backup_mb} MB; KEK split into 5 shares (3 rebuild it)")

        later = self._batch("drill-b", self.after, seal, start=4_000_000 + secrets.randbelow(4_000_000))
        self._cli("audit", "checkpoint")
        self._cli("filing", "drain")

        disaster_at = time.time()
        self._disaster()
        recovery_started = time.monotonic()
        shares = sorted((self.work / "escrow").iterdir())
        self._cli("kek", "recover", str(shares[0]), str(shares[2]), str(shares[4]))
        restored = json.loads(self._cli("backup", "restore", "--from", str(backups), "--trust",
                                        str(self.work / "trust" / "ca-root.pem"), "--no-check", "--json"))
        # The identity registers stand for the data-sharing platform: the world, which our disaster does
        # not touch. The embedded stack keeps their data file in the home, so it is put back as the
        # platform still holds it (a backup of ours never carries the registers).
        from stamping.registry.demo import register_demo_identities

        register_demo_identities(self.settings)
        self._up()
        check = json.loads(self._cli("backup", "check", "--json", check=False))
        rto_s = round(time.monotonic() - recovery_started, 1)
        self.say(f"restored and checked in {rto_s} s: archive {check['archive']['ok']}, audit "
                 f"{check['audit']['ok']}, filing {check['filing']['ok']}")

        packages_ok, packages = self._retrieve_and_verify()
        found = {d["licence_id"] for d in check["after_backup"]["documents"]}
        new_ok = self._batch("drill-c", self.new, seal, start=8_000_000 + secrets.randbelow(1_000_000),
                             must=False) is not None
        self._cli("filing", "drain")
        stats = self._platform_stats()
        duplicates = max(0, stats["max_records_per_id"] - 1) + stats["same_content_twice"]
        return {
            "restored": bool(restored.get("restored")), "audit_ok": bool(check["audit"]["ok"]),
            "archive_ok": bool(check["archive"]["ok"] and packages_ok), "duplicates_filed": duplicates,
            "lost_after_backup": len(found), "rpo_s": round(disaster_at - backed_up_at, 1), "rto_s": rto_s,
            "backup_mb": backup_mb,
            "database": "postgresql" if self.pg_dsn else "sqlite", "sealed_after_backup": len(later),
            "lost_match": found == set(later), "packages_verified": packages, "new_batch_ok": new_ok,
            "copies_repaired": check["archive"]["copies_repaired"], "filing_ok": bool(check["filing"]["ok"]),
            "marked_delivered": check["filing"]["marked_delivered"],
            "filings_after_backup": len(check["after_backup"]["filings"]),
            "audit_entries_after_backup_at_least": check["after_backup"]["audit"]["entries_after_backup_at_least"],
            "subject_seq_reused": stats["same_subject_seq_twice"], "platform_records": stats["records"],
        }

    # -- steps ------------------------------------------------------------------------------
    def _settings(self) -> Settings:
        from gmpki.private_files import make_private_dirs
        from sealflow.stack.ports import free_stack_ports

        assert self.work is not None
        ports = free_stack_ports()
        database_url = self._create_pg() if self.pg_dsn else ""
        make_private_dirs(self.work / "var")
        # The platform is outside the home, so the filing key's PIN is configuration (as in production),
        # not a file of the home: it survives the disaster like the rest of the settings.
        return Settings(home=self.work / "var", database_url=database_url, filing_key_pin=secrets.token_urlsafe(16),
                        replica_data_dir=str(self.work / "replica-store"),
                        platform_url=local_url(ports["platform_port"]), **ports)

    def _up(self, tries: int = 3) -> None:
        """``stack up`` with its UI components; again when a component was too slow to start (``up`` is
        idempotent: what runs is kept) — on a loaded machine the api-server can miss its 120 s."""
        from sealflow import stack

        for attempt in range(1, tries + 1):
            try:
                stack.up(self.settings, ui=True, out=self.say)
                return
            except stack.StackError as exc:
                if attempt == tries:
                    raise
                self.say(f"stack up, try {attempt}: {str(exc).splitlines()[0]}; trying again")

    def _batch(self, batch_id: str, count: int, seal: Any, start: int, must: bool = True) -> list[str] | None:
        """One batch through the pipeline; the 证照标识 of its verified documents once archived and filed."""
        from sealflow.batch_runner import run_batch
        from stamping.batch.samples import write_batch

        folder = self.work / "samples" / batch_id
        write_batch(folder, count, bad=False, start=start)
        try:
            result = run_batch(self.settings, folder, seal.es_id, seal.keeper, batch_id, timeout=1200)
        except Exception as exc:  # e.g. the run failed before asking for approval: the JSON line still comes
            if must:
                raise
            self.say(f"{batch_id}: {type(exc).__name__}: {exc}")
            return None
        self.say(f"{batch_id}: stamp_batch {result['state']} in {result['seconds']} s")
        if result["state"] != "success":
            if must:
                raise RuntimeError(f"{batch_id}: stamp_batch ended {result['state']} (run {result['run_id']})")
            return None
        return self._wait_archived_and_filed(batch_id)

    def _wait_archived_and_filed(self, batch_id: str, timeout: float = 900) -> list[str]:
        from sqlalchemy import func, select

        from archive.models import ArchivedBatch
        from filing.outbox import OutboxRecord
        from kernel.db import database
        from stamping.batch.models import BatchDocument

        with database(self.settings.resolved_database_url, migrated=False) as sessions:
            deadline = time.monotonic() + timeout
            while True:
                with sessions() as s:
                    done = s.get(ArchivedBatch, batch_id) is not None
                    unsent = s.scalar(select(func.count()).select_from(OutboxRecord)
                                      .where(OutboxRecord.state.in_(("pending", "failed"))))
                    ids = [d.record.get("licence_id", "") for d in s.scalars(
                        select(BatchDocument).where(BatchDocument.batch_id == batch_id,
                                                    BatchDocument.state == "verified"))]
                if done and not unsent:
                    self.say(f"{batch_id}: {len(ids)} documents sealed, archived and filed")
                    return ids
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{batch_id}: not archived and filed within {timeout:.0f} s")
                time.sleep(2)

    def _disaster(self) -> None:
        from sealflow import stack

        self.say("disaster: the stack stops, the home (database, keys, CA, primary archive store) is deleted")
        stack.down(self.settings, out=self.say)
        shutil.rmtree(self.settings.state_dir)
        if self.pg_dsn:
            self._recreate_pg()

    def _retrieve_and_verify(self) -> tuple[bool, int]:
        """Every archived package fetched from the (refilled) primary and verified offline with the root only."""
        from sqlalchemy import select

        from archive.models import ARCHIVED, ArchiveRecord
        from archive.offline import verify_package
        from archive.retrieve import download_package
        from archive.store import ObjectStore
        from gmpki.pki.trust import TrustStore
        from kernel.db import database

        trust = TrustStore.from_paths([self.work / "trust" / "ca-root.pem"])
        store = ObjectStore(self.settings)
        out = self.work / "retrieved"
        with database(self.settings.resolved_database_url, migrated=False) as sessions, sessions() as s:
            rows = list(s.scalars(select(ArchiveRecord).where(ArchiveRecord.state == ARCHIVED)))
        bad = []
        for row in rows:
            try:
                result = verify_package(download_package(store, row, out), trust)
                if not result.ok:
                    bad.append(f"{row.archival_code}: {result.problems[0].file}: {result.problems[0].reason}")
            except Exception as exc:  # not retrievable: counted and named
                bad.append(f"{row.archival_code}: {type(exc).__name__}: {exc}")
        for line in bad:
            self.say(f"archive: {line}")
        self.say(f"archive: {len(rows) - len(bad)} of {len(rows)} packages retrieved and verified offline")
        return not bad and bool(rows), len(rows) - len(bad)

    # -- the platform (the world: outside the home) ------------------------------------------
    def _start_platform(self) -> None:
        from filing.identity import pin_platform_certificate, setup_system_identity
        from sealflow.stack import sender_trust

        trust = self.work / "trust"
        trust.mkdir(parents=True, exist_ok=True)
        for pem in sender_trust(self.settings):  # the home's CA, copied out: the platform keeps trusting it
            shutil.copy(pem, trust / pem.name)
        folder = self.work / "platform"
        folder.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "filing.simulator", "--host", "127.0.0.1",
                "--port", str(self.settings.platform_port), "--db", str(folder / "platform.db"),
                "--trust", str(trust / "ca-root.pem"), "--trust", str(trust / "ca-intermediate.pem")]
        with open(folder / "simulator.log", "ab") as log:
            self._platform = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not _http_ok(f"{self.settings.resolved_platform_url}/v1/health"):
            if self._platform.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the platform simulator did not start; see {folder / 'simulator.log'}")
            time.sleep(0.3)
        setup_system_identity(self.settings)
        pin_platform_certificate(self.settings, folder / "platform-cert.pem")

    def _stop_platform(self) -> None:
        if self._platform is not None and self._platform.poll() is None:
            os.killpg(self._platform.pid, signal.SIGTERM)  # our own session: the simulator we started
            try:
                self._platform.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._platform.pid, signal.SIGKILL)
                self._platform.wait(timeout=5)

    def _platform_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.settings.resolved_platform_url}/admin/stats", timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    # -- PostgreSQL: a fresh database, dropped at the end ------------------------------------
    def _admin(self):
        from kernel.db import make_engine

        return make_engine(self.pg_dsn)

    def _create_pg(self) -> str:
        from sqlalchemy.engine import make_url

        self._pg_name = f"sealflow_drill_{secrets.token_hex(4)}"
        self._recreate_pg()
        return make_url(self.pg_dsn).set(database=self._pg_name).render_as_string(hide_password=False)

    def _recreate_pg(self) -> None:
        from sqlalchemy import text

        admin = self._admin()
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)'))  # our own name
                conn.execute(text(f'CREATE DATABASE "{self._pg_name}"'))
        finally:
            admin.dispose()

    def _drop_pg(self) -> None:
        if not self._pg_name:
            return
        from sqlalchemy import text

        admin = self._admin()
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)'))
        finally:
            admin.dispose()

    # -- the CLI, as an operator runs it ------------------------------------------------------
    def _cli(self, *args: str, check: bool = True) -> str:
        from sealflow.stack import sealflow_env, venv_bin

        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALFLOW_")}
        env.update(sealflow_env(self.settings))
        done = subprocess.run([str(venv_bin() / "sealflow"), *args], env=env, capture_output=True, text=True,
                              timeout=1800, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"`sealflow {' '.join(args)}` failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
            return 200 <= response.status < 300
    except OSError:
        return False

