"""Profile of one 验章 chunk (``stamping.batch.process.verify_chunk``) with the registry look-ups
the pipeline uses (seal status and recorded uses from a SQLite registry): where a document's
verification time goes, to pick the next speed-up by measurement. No stack: documents are stamped
without time-stamp tokens (the TSA's cost is measured by bench_tsa.py).

    .venv/bin/python benchmarks/profile_verify_chunk.py [--docs 300] [--top 25]
Prints CPU ms per document for stamp_chunk and verify_chunk, then cProfile's top functions of
verify_chunk by cumulative time.
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
from sealflow.batch_runner import prepare_demo_seal
from stamping.batch import process
from stamping.batch.samples import write_batch
from stamping.batch.seals import BatchSeals
from stamping.placement import Placement


def tools_for(settings: Settings) -> process.BatchTools:
    """The pipeline's tools (plugins/sealflow_airflow/pipeline.py) without a TSA."""
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
        session_factory=sessions, work_root=settings.state_dir / "batches",
        stampers={"pdf": lambda src, seal, signer, placement, path, options: stamp_pdf(src, seal, signer, placement,
                                                                                       path=path),
                  "ofd": lambda src, seal, signer, placement, path, options: stamp_ofd(src, seal, signer, placement,
                                                                                       path=path)},
        verifiers={"pdf": lambda data, path: verify_pdf(data, path, trust, lookup, use_lookup=uses),
                   "ofd": lambda data, path: verify_ofd(data, path, trust, lookup, use_lookup=uses)},
        signer_provider=desk.batch_signer, record_uses=desk.record_uses, status_lookup=lookup,
        status_snapshot=desk.registry.status_snapshot)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", action="store_true", help="CPU ms per document only, without cProfile")
    parser.add_argument("--no-snapshot", action="store_true",
                        help="one status query per look-up, as before the per-chunk snapshot (for A/B runs)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-verify-") as tmp:
        settings = Settings(home=Path(tmp) / "var", kek="00" * 32)
        seal = prepare_demo_seal(settings)
        write_batch(Path(tmp) / "in", args.docs, bad=False)
        tools = tools_for(settings)
        if args.no_snapshot:
            tools.status_snapshot = None
        process.ingest(tools, batch_id="prof", source=Path(tmp) / "in", es_id=seal.es_id, requester="applicant",
                       placement=Placement.parse("anchor:（盖章）"), chunk_size=args.docs)
        cpu = time.process_time()
        process.stamp_chunk(tools, "prof", 0, seal.keeper)
        stamp_ms = 1000 * (time.process_time() - cpu) / args.docs
        profile = cProfile.Profile()
        cpu = time.process_time()
        if not args.no_profile:
            profile.enable()
        result = process.verify_chunk(tools, "prof", 0)
        profile.disable()
        verify_ms = 1000 * (time.process_time() - cpu) / args.docs
        assert result["verified"] == args.docs, result
    print(f"stamp_chunk {stamp_ms:.2f} CPU ms/doc, verify_chunk {verify_ms:.2f} CPU ms/doc"
          f"{'' if args.no_profile else ' (under the profiler)'}{' without the snapshot' if args.no_snapshot else ''}")
    if not args.no_profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
