"""Profile of one 验章 chunk (``stamping.batch.process.verify_chunk``) with the registry look-ups
the pipeline uses (seal status and recorded uses from a SQLite registry): where a document's
verification time goes, to pick the next speed-up by measurement. No stack: documents are stamped
without time-stamp tokens (the TSA's cost is measured by bench_tsa.py).

    .venv/bin/python benchmarks/profile_verify_chunk.py [--docs 300] [--top 25] [--s3]
Prints CPU ms per document for ingest, stamp_chunk, verify_chunk and finish, then cProfile's top functions
of verify_chunk by cumulative time. The batch's files go to a folder work store, or with ``--s3`` to the
S3 work store on an embedded SeaweedFS started for the run (what the pipeline uses): the difference is
the data plane's cost.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings
from kernel.workstore import FolderWorkStore, WorkStore
from sealflow.batch_runner import prepare_demo_seal
from stamping.batch import process
from stamping.batch.samples import write_batch
from stamping.batch.seals import BatchSeals
from stamping.placement import Placement


def tools_for(settings: Settings, store: WorkStore | None = None) -> process.BatchTools:
    """The pipeline's tools (plugins/sealflow_airflow/root.py) without a TSA; the work store is a folder under
    the state directory unless ``store`` is given (``--s3``: the S3 store on an embedded SeaweedFS)."""
    from stamping.ofd.stamp import stamp_ofd
    from stamping.ofd.verify import verify_ofd
    from stamping.pdf.sign import stamp_pdf
    from stamping.pdf.verify import verify_pdf

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    desk = BatchSeals(settings, sessions)
    trust, lookup, uses = desk.trust_store(), desk.status_lookup, desk.use_lookup
    return process.BatchTools(
        session_factory=sessions, store=store or FolderWorkStore(settings.state_dir / "work"),
        stampers={"pdf": lambda src, seal, signer, placement, path, options: stamp_pdf(src, seal, signer, placement,
                                                                                       path=path),
                  "ofd": lambda src, seal, signer, placement, path, options: stamp_ofd(src, seal, signer, placement,
                                                                                       path=path)},
        verifiers={"pdf": lambda data, path: verify_pdf(data, path, trust, lookup, use_lookup=uses),
                   "ofd": lambda data, path: verify_ofd(data, path, trust, lookup, use_lookup=uses)},
        signer_provider=desk.batch_signer, record_uses=desk.record_uses, status_lookup=lookup,
        status_snapshot=desk.registry.status_snapshot)


def throwaway_settings(home: Path) -> Settings:
    """Settings of a throw-away home on free ports (the demo seal starts the identity simulator; a reaper
    stops what was started if this process dies)."""
    from sealflow.stack import spawn_reaper
    from sealflow.stack.ports import free_stack_ports

    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # the stack refuses a state directory others can read
    settings = Settings(home=home, kek="00" * 32, **free_stack_ports())
    spawn_reaper(settings)
    return settings


def s3_store(settings: Settings) -> WorkStore:
    """An embedded SeaweedFS alone (no Airflow), its buckets made, and the S3 work store on it."""
    from kernel.objectstore import ensure_buckets, s3_client
    from kernel.workstore import S3WorkStore
    from sealflow.stack import ensure_component, seaweed_component

    ensure_component(settings, seaweed_component(settings), lambda _m: None)
    client = s3_client(settings)
    ensure_buckets(client, settings)
    return S3WorkStore(client, settings.work_bucket)


def store_cpu(settings: Settings) -> float:
    """CPU seconds SeaweedFS (the embedded store) has used so far: the data plane's cost on the server side."""
    import psutil

    from sealflow.stack import read_pid

    entry = read_pid(settings, "seaweedfs")
    times = psutil.Process(entry.pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="CPU ms per document only, without cProfile")
    parser.add_argument("--s3", action="store_true", help="the S3 work store on an embedded SeaweedFS")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="one status query per look-up, as before the per-chunk snapshot (for A/B runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-verify-") as tmp:
        settings = throwaway_settings(Path(tmp) / "var")
        store = s3_store(settings) if args.s3 else None
        try:
            seal = prepare_demo_seal(settings)
            write_batch(Path(tmp) / "in", args.docs, bad=False)
            tools = tools_for(settings, store)
            if args.no_snapshot:
                tools.status_snapshot = None
            weed, wall = store_cpu(settings) if args.s3 else None, time.perf_counter()
            cpu = time.process_time()
            process.ingest(tools, batch_id="prof", source=Path(tmp) / "in", es_id=seal.es_id, requester="applicant",
                           placement=Placement.parse("anchor:（盖章）"), chunk_size=args.docs)
            ingest_ms = 1000 * (time.process_time() - cpu) / args.docs
            cpu = time.process_time()
            for chunk in process.chunks(tools, "prof"):  # from 200 documents a batch has two chunks
                process.stamp_chunk(tools, "prof", chunk, seal.keeper)
            stamp_ms = 1000 * (time.process_time() - cpu) / args.docs
            profile = cProfile.Profile()
            cpu = time.process_time()
            if not args.no_profile:
                profile.enable()
            verified = sum(process.verify_chunk(tools, "prof", chunk)["verified"]
                           for chunk in process.chunks(tools, "prof"))
            profile.disable()
            verify_ms = 1000 * (time.process_time() - cpu) / args.docs
            assert verified == args.docs, verified
            cpu = time.process_time()
            process.finish(tools, "prof")
            finish_ms = 1000 * (time.process_time() - cpu) / args.docs
            wall = time.perf_counter() - wall
            weed_s = store_cpu(settings) - weed if weed is not None else 0.0
        finally:  # the identity simulator (the demo seal's checks) and, with --s3, SeaweedFS
            from sealflow.stack import down

            down(settings, out=lambda _m: None, grace=3)
    print(f"{'S3 (SeaweedFS)' if args.s3 else 'folder'} work store, {args.docs} documents: ingest {ingest_ms:.2f}, "
          f"stamp_chunk {stamp_ms:.2f}, verify_chunk {verify_ms:.2f}, finish {finish_ms:.2f} CPU ms/doc"
          f"{'' if args.no_profile else ' (under the profiler)'}{' without the snapshot' if args.no_snapshot else ''}"
          f"; SeaweedFS {1000 * weed_s / args.docs:.2f} CPU ms/doc; wall {wall:.1f} s")
    if not args.no_profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
