"""Benchmark: what trusted time (RFC 3161 tokens) costs per document.

Starts the TSA program's server in this process on a free loopback port (real HTTP, kept-alive
connection, as the batch uses it) and measures per document, for OFD and PDF:
- a token request alone (``TsaClient.timestamp``), and the TSA's own work (``TimestampAuthority.issue``);
- stamping without and with a token (the difference is the token's cost in the batch);
- 验章 of those documents without and with a token (the difference is the token's verification).
Last line: one JSON object.

    python benchmarks/bench_tsa.py [--docs 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stamping.ofd.demo import make_demo_kit  # noqa: E402
from stamping.ofd.stamp import stamp_ofd  # noqa: E402
from stamping.ofd.verify import verify_ofd  # noqa: E402
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields  # noqa: E402
from stamping.pdf.samples import make_sample_certificate_pdf  # noqa: E402
from stamping.pdf.sign import stamp_pdf  # noqa: E402
from stamping.pdf.verify import verify_pdf  # noqa: E402
from stamping.pki.tsa_client import TsaClient  # noqa: E402
from stamping.placement import Placement  # noqa: E402
from stamping.tsa.server import make_server  # noqa: E402

ANCHOR = Placement.parse("anchor:（盖章）")


def per_doc_ms(fn, items) -> float:
    started = time.perf_counter()
    for item in items:
        fn(item)
    return round((time.perf_counter() - started) * 1000 / len(items), 3)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tsa-"))
    kit = make_demo_kit(work / "kit")
    server = make_server("127.0.0.1", 0, work / "tsa", kit.ca.directory)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    tsa = TsaClient(f"http://127.0.0.1:{server.server_address[1]}/")
    out: dict[str, float | int] = {"docs": args.docs}
    values = [b"signature %d" % i for i in range(args.docs)]
    tsa.timestamp(b"warm-up")
    out["token_request_ms"] = per_doc_ms(tsa.timestamp, values)
    out["tsa_issue_ms"] = per_doc_ms(server.authority.timestamp, values)
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
            lambda d, s=stamp, o=plain: o.append(s(d, kit.seal_der, kit.signer, ANCHOR)), docs)
        out[f"{fmt}_stamp_with_token_ms"] = per_doc_ms(
            lambda d, s=stamp, o=stamped: o.append(s(d, kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)), docs)
        verify(plain[0], "warm", kit.trust)
        out[f"{fmt}_verify_ms"] = per_doc_ms(lambda d, v=verify: v(d, "x", kit.trust), plain)
        out[f"{fmt}_verify_with_token_ms"] = per_doc_ms(lambda d, v=verify: v(d, "x", kit.trust), stamped)
        assert all(verify(d, "x", kit.trust).valid for d in stamped[:5])
        out[f"{fmt}_bytes_added_by_token"] = round(sum(map(len, stamped)) / len(stamped)
                                                   - sum(map(len, plain)) / len(plain))
    server.shutdown()
    server.server_close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
