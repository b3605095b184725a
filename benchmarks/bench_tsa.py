"""Benchmark: what trusted time (RFC 3161 tokens) costs per document.

Starts the TSA program (``python -m stamping.tsa.server``) as its own process on a free loopback
port (real HTTP, kept-alive connection, as the batch uses it) and measures per document, for OFD
and PDF:
- a token request alone (``TsaClient.timestamp``), and the TSA's own work (``TimestampAuthority.issue``);
- stamping without and with a token (the difference is the token's cost in the batch);
- 验章 of those documents without and with a token (the difference is the token's verification).
Last line: one JSON object.

    python benchmarks/bench_tsa.py [--docs 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gmpki.pki.tsa_client import TsaClient, TsaUnavailable  # noqa: E402
from kernel.settings import local_url  # noqa: E402
from sealflow.stack.ports import free_port  # noqa: E402
from stamping.ofd.demo import make_demo_kit  # noqa: E402
from stamping.ofd.stamp import stamp_ofd  # noqa: E402
from stamping.ofd.verify import verify_ofd  # noqa: E402
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields  # noqa: E402
from stamping.pdf.samples import make_sample_certificate_pdf  # noqa: E402
from stamping.pdf.sign import stamp_pdf  # noqa: E402
from stamping.pdf.verify import verify_pdf  # noqa: E402
from stamping.placement import Placement  # noqa: E402
from stamping.tsa.server import tsa_identity  # noqa: E402

ANCHOR = Placement.parse("anchor:（盖章）")


CPU: dict[str, float] = {}


def per_doc_ms(fn, items, name: str = "") -> float:
    """Wall milliseconds per item; this process's CPU milliseconds go to CPU[name] (less noisy on a
    shared machine)."""
    started, cpu = time.perf_counter(), time.process_time()
    for item in items:
        fn(item)
    if name:
        CPU[name] = round((time.process_time() - cpu) * 1000 / len(items), 3)
    return round((time.perf_counter() - started) * 1000 / len(items), 3)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tsa-"))
    kit = make_demo_kit(work / "kit")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "stamping.tsa.server", "--port", str(port), "--dir",
                               str(work / "tsa"), "--ca", str(kit.ca.directory)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    tsa = TsaClient(local_url(port, "/"), retries=0)
    for _ in range(100):
        try:
            tsa.timestamp(b"warm-up")
            break
        except TsaUnavailable:
            time.sleep(0.2)
    out: dict[str, float | int] = {"docs": args.docs}
    values = [b"signature %d" % i for i in range(args.docs)]
    out["token_request_ms"] = per_doc_ms(tsa.timestamp, values, "token_request_client")
    out["tsa_issue_in_process_ms"] = per_doc_ms(tsa_identity(work / "tsa", kit.ca.directory).timestamp, values,
                                                 "tsa_issue")
    sources = {
        "ofd": [make_sample_certificate_ofd(sample_business_licence_fields(i), "business_licence")
                for i in range(args.docs)],
        "pdf": [make_sample_certificate_pdf(sample_business_licence_fields(i), "business_licence")
                for i in range(args.docs)],
    }
    stampers = {"ofd": stamp_ofd, "pdf": stamp_pdf}
    verifiers = {"ofd": verify_ofd, "pdf": verify_pdf}
    for fmt, docs in sources.items():
        stamp, verify = stampers[fmt], verifiers[fmt]
        stamp(docs[0], kit.seal_der, kit.signer, ANCHOR)  # warm caches (seal picture, keys)
        plain: list[bytes] = []
        stamped: list[bytes] = []
        out[f"{fmt}_stamp_ms"] = per_doc_ms(
            lambda d, s=stamp, o=plain: o.append(s(d, kit.seal_der, kit.signer, ANCHOR)), docs, f"{fmt}_stamp")
        out[f"{fmt}_stamp_with_token_ms"] = per_doc_ms(
            lambda d, s=stamp, o=stamped: o.append(s(d, kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)), docs,
            f"{fmt}_stamp_with_token")
        verify(plain[0], "warm", kit.trust)
        out[f"{fmt}_verify_ms"] = per_doc_ms(lambda d, v=verify: v(d, "x", kit.trust), plain, f"{fmt}_verify")
        out[f"{fmt}_verify_with_token_ms"] = per_doc_ms(lambda d, v=verify: v(d, "x", kit.trust), stamped,
                                                         f"{fmt}_verify_with_token")
        assert all(verify(d, "x", kit.trust).valid for d in stamped[:5])
        out[f"{fmt}_bytes_added_by_token"] = round(sum(map(len, stamped)) / len(stamped)
                                                   - sum(map(len, plain)) / len(plain))
    server.terminate()
    server.wait(10)
    out["cpu_ms"] = CPU
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
