"""Archive 10,000 sealed certificates: 四性检测, package, locked upload, index — on the embedded stack.

Untimed preparation: a demo CA and seal, a few distinct sealed certificates (OFD and PDF, each
verified once, as the pipeline does), copied to one file per record with distinct metadata.
Timed: one ``archive_records`` call over all records (the verification results and SM3 digests
from "stamping" are passed in, as the archive_batch DAG does).

Uses the stack at SEALFLOW_* settings when its S3 answers; otherwise starts a temporary stack on
free ports and stops it afterwards. Each run uses a fresh bucket and index.
Last stdout line: JSON with records, wall_s, records_per_s (target: 10,000 in <= 60 s on 2 cores),
cpu_s (this process and its workers), seaweedfs_cpu_s, and records_per_cpu_s over both: the
figure a busy machine does not skew.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from archive.checks import NoScanner
from archive.service import ArchiveInput, archive_records
from archive.store import ObjectStore
from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from sealflow.stack import read_pid
from sealflow.stack.ports import free_stack_ports


def _s3_up(settings: Settings) -> bool:
    try:
        ObjectStore(settings).client.list_buckets()
    except Exception:
        return False
    return True


def _templates(folder: Path, count: int):
    from gmpki.gm.sm3 import sm3
    from gmpki.keys.signer import SoftwareSigner
    from stamping.batch.samples import render_certificate, sample_rows
    from stamping.ofd.demo import make_demo_kit
    from stamping.ofd.stamp import stamp_ofd
    from stamping.pdf import stamp_pdf
    from stamping.placement import Placement
    from stamping.verify.dispatch import verify_bytes

    kit = make_demo_kit(folder / "kit")
    key, cert = kit.ca.issue_unit_signer("示范市档案馆", "11330100MB00000018")
    unit_signer = SoftwareSigner(key, cert)
    placement = Placement.parse("anchor:（盖章）")
    out = []
    for row in sample_rows(count):
        stamp = stamp_pdf if row["format"] == "pdf" else stamp_ofd
        sealed = stamp(render_certificate(row), kit.seal_der, kit.signer, placement)
        result = verify_bytes(sealed, row["file"], kit.trust)
        assert result.valid, result.to_json()
        out.append((row["format"], sealed, sm3(sealed).hex(), result.to_json()))
    return kit, unit_signer, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--templates", type=int, default=40, help="distinct sealed documents")
    parser.add_argument("--chunk", type=int, default=5_000, help="records per archiving run")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (0: threads only)")
    args = parser.parse_args()

    from stamping.batch.samples import sample_rows

    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    settings = Settings.from_env()
    started_stack = False
    if not _s3_up(settings):
        from sealflow.stack import up

        settings = settings.with_overrides(home=work / "var", kek="00" * 32, **free_stack_ports())
        print(f"starting a temporary stack in {settings.home}")
        up(settings, out=print)
        started_stack = True
    settings = settings.with_overrides(archive_bucket=f"bench-{uuid.uuid4().hex[:10]}",
                                       database_url=f"sqlite:///{work / 'index.db'}")
    try:
        engine = make_engine(settings.database_url)
        migrate(engine)
        sessions = session_factory(engine)
        store = ObjectStore(settings)
        store.ensure_bucket()
        t0 = time.perf_counter()
        kit, unit_signer, templates = _templates(work, args.templates)
        docs = work / "docs"
        docs.mkdir()
        inputs = []
        for i, row in enumerate(sample_rows(args.records)):
            fmt, data, digest, verification = next(t for t in templates[i % len(templates):] + templates
                                                   if t[0] == row["format"])
            path = docs / row["file"]
            path.write_bytes(data)
            record = dict(row)
            record["holder_code_kind"] = "id_number" if row["licence_type"] == "执业药师注册证" else "credit_code"
            inputs.append(ArchiveInput(str(path), record, fmt, digest, len(data),
                                       {**verification, "path": row["file"]}, row["file"]))
        print(f"prepared {len(inputs)} records from {len(templates)} sealed documents "
              f"in {time.perf_counter() - t0:.1f} s")

        weed = _weed_process(settings)
        cpu0, weed0 = _cpu_seconds(), _proc_cpu(weed)
        load0 = os.getloadavg()[0]
        start = time.perf_counter()
        result = archive_records(inputs, batch_id="BENCH", settings=settings, store=store, sessions=sessions,
                                 signer=unit_signer, trust=kit.trust, scanner=NoScanner(), chunk_size=args.chunk,
                                 processes=args.processes,
                                 progress=lambda m: print(f"  {time.perf_counter() - start:6.1f} s  {m}"))
        wall = time.perf_counter() - start
        cpu, weed_cpu = _cpu_seconds() - cpu0, _proc_cpu(weed) - weed0
        t = os.times()
        print(f"cpu (cumulative): main process {t.user + t.system:.1f} s, "
              f"worker processes {t.children_user + t.children_system:.1f} s")
        counts = result.to_json()["counts"]
        print(f"archived {result.archived} of {len(inputs)} in {wall:.1f} s: {counts}")
        if result.archived != len(inputs):
            print(json.dumps(result.to_json()["not_archived"][:3], ensure_ascii=False))
        print(json.dumps({"records": result.archived, "wall_s": round(wall, 2),
                          "records_per_s": round(result.archived / wall, 1),
                          # CPU seconds used by SealFlow (incl. worker processes) and by SeaweedFS, and
                          # the machine's load at the start: on a shared machine the wall time depends
                          # on what else runs; the CPU figures do not.
                          "cpu_s": round(cpu, 1), "seaweedfs_cpu_s": round(weed_cpu, 1),
                          "records_per_cpu_s": round(result.archived / max(1e-9, cpu + weed_cpu), 1),
                          "load_at_start": round(load0, 1), "chunk": args.chunk,
                          "upload_workers": settings.archive_upload_workers}))
    finally:
        if started_stack:
            from sealflow.stack import down

            down(settings, out=print)
        shutil.rmtree(work, ignore_errors=True)


def _cpu_seconds() -> float:
    """User+system CPU of this process and its reaped children (the worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _weed_process(settings: Settings):
    entry = read_pid(settings, "seaweedfs")
    try:
        return psutil.Process(entry.pid) if entry else None
    except psutil.Error:  # gone since its PID file was written: no CPU to count
        return None


def _proc_cpu(proc) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except Exception:
        return 0.0


if __name__ == "__main__":
    main()
