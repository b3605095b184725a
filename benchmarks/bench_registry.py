"""Benchmark: the seal registry and its audit log on a fresh SQLite database.

Times: making seals end to end (apply → reviews → make: key, certificate, SESeal, filing record,
audit), status lookups (``status_at``, what 验章 calls per signature), audited uses
(``record_uses`` in batches of 500, as the stamping pipeline writes them) and ``verify_audit``
over the whole log. Last line: one JSON object; ``*_cpu_*`` fields give the same per CPU second
of this process (what a busy machine does not skew).

    python benchmarks/bench_registry.py [--seals 5] [--uses 20000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernel.db import make_engine, migrate, session_factory, transaction  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from stamping.audit import verify_audit  # noqa: E402
from stamping.registry import SealRegistry  # noqa: E402
from stamping.registry.demo import DEMO_UNIT, DEMO_UNIT_CODE, KEEPER, bootstrap_demo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seals", type=int, default=5)
    ap.add_argument("--uses", type=int, default=20000)
    ap.add_argument("--lookups", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "var", kek="44" * 32, review_levels=2, audit_key_pin="bench-pin")
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        migrate(engine)
        reg = SealRegistry(session_factory(engine), settings)
        demo = bootstrap_demo(reg)  # CA, audit key and the first two seals
        es_id = demo["es_ids"]["official"]

        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.seals):
            app = reg.apply("applicant", DEMO_UNIT_CODE, "official", DEMO_UNIT, keeper=KEEPER)
            reg.review("reviewer1", app, 1, True)
            reg.review("reviewer2", app, 2, True)
            reg.make(KEEPER, app, "bench-pin-1")
        make_s = (time.perf_counter() - t) / args.seals
        make_cpu_s = (time.process_time() - cpu) / args.seals

        now = datetime.now(UTC)
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.lookups):
            reg.status_at(es_id, now)
        lookups_per_s = args.lookups / (time.perf_counter() - t)
        lookups_per_cpu_s = args.lookups / max(1e-9, time.process_time() - cpu)

        t, cpu = time.perf_counter(), time.process_time()
        for start in range(0, args.uses, 500):
            docs = [(f"doc-{i}.pdf", f"{i:064x}") for i in range(start, min(start + 500, args.uses))]
            with transaction(reg.sessions) as session:
                reg.record_uses(session, es_id=es_id, actor=KEEPER, batch_id="bench", documents=docs)
        uses_per_s = args.uses / (time.perf_counter() - t)
        uses_per_cpu_s = args.uses / max(1e-9, time.process_time() - cpu)

        t = time.perf_counter()
        with reg.sessions() as session:
            report = verify_audit(session, reg.audit_public_key())
        verify_s = time.perf_counter() - t
        assert report.ok, report
        engine.dispose()
    print(json.dumps({"make_seal_s": round(make_s, 3), "status_lookups_per_s": round(lookups_per_s),
                      "audited_uses_per_s": round(uses_per_s), "audit_entries": report.entries,
                      "verify_audit_s": round(verify_s, 2),
                      "verify_entries_per_s": round(report.entries / verify_s),
                      "make_seal_cpu_s": round(make_cpu_s, 3), "status_lookups_per_cpu_s": round(lookups_per_cpu_s),
                      "audited_uses_per_cpu_s": round(uses_per_cpu_s)}))


if __name__ == "__main__":
    main()
