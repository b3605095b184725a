"""Seal-data costs per operation on one core: SES_Signature building (without and with the
SM2 signature), parsing, and the full 验章 checks of one signature.

Usage: .venv/bin/python benchmarks/bench_ses.py [--n 2000]
Last stdout line: one JSON object (make_signature_splice_us, make_signature_per_s,
parse_signature_us, check_ses_signature_per_s, demo_official_seal_ms; the same per CPU second
of this process as ``*_cpu_us`` / ``*_per_cpu_s``). Target: splicing well
under 1 ms (OFD stamping runs at 300 documents/s per core including this).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _per_call(fn, n: int) -> tuple[float, float]:
    """Seconds per call of ``fn``: wall clock and CPU of this process (what a busy machine does not skew)."""
    fn()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n, max(time.process_time() - cpu, 1e-9) / n


class _NoSign:
    """A signer that returns a fixed value: isolates the byte splicing from SM2."""

    def __init__(self, certificate: bytes) -> None:
        self.certificate = certificate

    def sign(self, data: bytes) -> bytes:
        return b"\x30\x06\x02\x01\x01\x02\x01\x01"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n

    from gmpki.gm.sm3 import sm3
    from gmpki.keys.signer import SoftwareSigner
    from gmpki.pki.ca import DemoCA
    from gmpki.pki.trust import TrustStore
    from stamping.pictures import demo_official_seal
    from stamping.ses.codec import parse_signature
    from stamping.ses.make import SealSpec, make_seal, make_signature
    from stamping.verdict.result import SignatureResult
    from stamping.verdict.seal_checks import check_ses_signature

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        ca = DemoCA.create(Path(tmp) / "ca")
        key, cert = ca.issue_unit_signer("基准测试单位", "91450100MA0000000X")
        signer = SoftwareSigner(key, cert)
        start = time.perf_counter()
        demo_official_seal.cache_clear()
        picture = demo_official_seal("基准测试单位", bottom_text="业务专用章")
        seal_ms = (time.perf_counter() - start) * 1000
        spec = SealSpec("4501000000099", "基准测试单位", 1, [cert], now - timedelta(days=1),
                        now + timedelta(days=365), picture.png, picture.width_mm, picture.height_mm)
        seal_der = make_seal(spec, ca.maker_signer())
        data_hash = sm3(b"<Signature/>")
        prop = "/Doc_0/Signs/Sign_0/Signature.xml"
        nosign = _NoSign(cert)
        splice, splice_cpu = _per_call(lambda: make_signature(seal_der, data_hash, prop, nosign, now), n)
        full, full_cpu = _per_call(lambda: make_signature(seal_der, data_hash, prop, signer, now), max(1, n // 4))
        der = make_signature(seal_der, data_hash, prop, signer, now)
        parse, parse_cpu = _per_call(lambda: parse_signature(der), n // 4 or 1)
        trust = TrustStore([ca.root_der], [ca.intermediate_der])

        def check() -> None:
            result = SignatureResult()
            check_ses_signature(result, parse_signature(der), data_hash, trust, None)
            assert result.valid, result.to_json()

        checks, checks_cpu = _per_call(check, max(1, n // 10))
    out = {
        "seal_bytes": len(seal_der),
        "make_signature_splice_us": round(splice * 1e6, 1),
        "make_signature_per_s": round(1 / full, 1),
        "parse_signature_us": round(parse * 1e6, 1),
        "check_ses_signature_per_s": round(1 / checks, 1),
        "demo_official_seal_ms": round(seal_ms, 1),
        # the same per CPU second of this process
        "make_signature_splice_cpu_us": round(splice_cpu * 1e6, 1),
        "make_signature_per_cpu_s": round(1 / full_cpu, 1),
        "parse_signature_cpu_us": round(parse_cpu * 1e6, 1),
        "check_ses_signature_per_cpu_s": round(1 / checks_cpu, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
