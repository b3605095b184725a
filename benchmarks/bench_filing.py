"""Benchmark: drain 10,000 filing records to the platform simulator over HTTP.

Starts ``python -m filing.simulator`` on a free port, queues N seal events (4 per seal, so the
order per seal matters) in a fresh SQLite outbox, and times one ``drain`` until every record has
a checked, signed receipt. Last line: one JSON object with records, wall_s, records_per_s,
peak_rss_mb (of this client process), and per CPU second: client_cpu_s (this process: drain
threads, signing, receipt checks), platform_cpu_s (the simulator, when this benchmark started it)
and records_per_cpu_s (records over both), which a busy machine does not skew.

    python benchmarks/bench_filing.py [--records 10000] [--batch-size 200] [--workers 2] [--single]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cpu_figures import TreeCpu  # noqa: E402

from filing.client import PlatformClient  # noqa: E402
from filing.dispatcher import drain  # noqa: E402
from filing.outbox import SENT, OutboxRecord, enqueue  # noqa: E402
from filing.protocol import pem_to_der  # noqa: E402
from kernel.db import make_engine, migrate, session_factory, transaction  # noqa: E402


def payload(es_id: str) -> dict:
    return {
        "es_id": es_id, "seal_name": "南宁市行政审批局电子公章", "seal_kind": "official", "seal_type": 1,
        "owner_name": "南宁市行政审批局", "owner_id": "11450100MB1234567X",
        "maker_name": "广西壮族自治区电子印章制作中心", "maker_cert": "MIIBdGVzdA==",
        "signer_certs": [{"serial": "0a1b", "sm3": "ab" * 32}],
        "valid_start": "2025-01-01T00:00:00+08:00", "valid_end": "2027-01-01T00:00:00+08:00",
        "event_time": datetime.now(UTC).isoformat(), "seal_sm3": "cd" * 32,
    }


def start_simulator(state: Path) -> tuple[subprocess.Popen, str]:
    log = (state / "simulator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "filing.simulator", "--port", "0", "--db", str(state / "platform.db"),
         "--accept-any-sender"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--per-seal", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--single", action="store_true", help="one request per record instead of batches")
    parser.add_argument("--url", help="use a simulator already running there (with /admin) instead of starting one")
    args = parser.parse_args()

    from gmpki.keys.signer import SoftwareSigner
    from gmpki.pki.ca import DemoCA

    with tempfile.TemporaryDirectory(prefix="bench-filing-") as tmp:
        state = Path(tmp)
        proc, url = (None, args.url.rstrip("/")) if args.url else start_simulator(state)
        try:
            key, cert = DemoCA.create(state / "ca").issue_unit_signer("SealFlow filing system", "91450000000000000X")
            import httpx

            platform_cert = pem_to_der(httpx.get(url + "/v1/platform-certificate").content)
            engine = make_engine(f"sqlite:///{state / 'outbox.db'}")
            migrate(engine)
            sessions = session_factory(engine)
            t0 = time.perf_counter()
            seals = max(1, args.records // args.per_seal)
            queued = 0
            while queued < args.records:
                with transaction(sessions) as session:
                    for _ in range(min(1000, args.records - queued)):
                        es_id = f"45010000{queued % seals:08d}"
                        enqueue(session, "seal.change", es_id, payload(es_id))
                        queued += 1
            enqueue_s = time.perf_counter() - t0
            print(f"queued {queued} records for {seals} seals in {enqueue_s:.1f}s", flush=True)

            platform_cpu = TreeCpu([proc.pid] if proc is not None else []).start()
            with PlatformClient(url, SoftwareSigner(key, cert), platform_cert, timeout=60) as client:
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                result = drain(sessions, client, batch_size=args.batch_size, workers=args.workers,
                               use_batch=not args.single)
                wall = time.perf_counter() - t0
                client_cpu = time.process_time() - cpu0
            platform_cpu.stop()
            with sessions() as session:
                sent = session.scalar(select(func.count()).where(OutboxRecord.state == SENT))
            platform = httpx.get(url + "/admin/stats").json()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=10)
    if sent != args.records or (proc is not None and platform["records"] != args.records):
        raise SystemExit(f"incomplete: sent {sent}, platform holds {platform}, drain {result.as_dict()}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"drain: {result.as_dict()}", flush=True)
    print(json.dumps({
        "records": sent, "wall_s": round(wall, 3), "records_per_s": round(sent / wall, 1),
        "peak_rss_mb": round(peak, 1), "batch_size": args.batch_size, "workers": args.workers,
        "mode": "single" if args.single else "batch", "enqueue_s": round(enqueue_s, 2),
        "platform_records": platform["records"],
        "client_cpu_s": round(client_cpu, 2), "platform_cpu_s": round(platform_cpu.seconds, 2),
        "records_per_cpu_s": round(sent / max(1e-9, client_cpu + platform_cpu.seconds), 1),
    }))


if __name__ == "__main__":
    main()
