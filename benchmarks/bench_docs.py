"""Documents per second per core (one process) on generated 1-page business licences:
OFD and PDF stamp+sign and verify, wall-clock and per CPU second, with references measured in
the same run.

References: OpenSSL's SM2 sign and verify rates (``openssl speed sm2``, per CPU second), and
pyHanko signing the same PDFs with the same SM2 signer (an invisible signature field, SM3 digest,
CMS SignedData: the same cryptographic work without our seal image and 电子印章 structure).
Ratios: documents per CPU second over SM2 signatures (stamp+sign) or verifications (验章) per CPU
second; ``pdf_sign_vs_pyhanko`` is our PDF stamp+sign rate over pyHanko's, both per CPU second.

Last stdout line: one JSON object with pdf_sign_per_s, ofd_sign_per_s, pdf_verify_per_s,
ofd_verify_per_s, pdf_verify_two_seals_per_s (wall; per CPU second with ``--cpu``), the same
``*_per_cpu_s``, sm2_sign_per_s (our signer), openssl_sm2_sign_per_s / openssl_sm2_verify_per_s,
ofd_sign_sm2_ratio, pdf_sign_sm2_ratio, ofd_verify_sm2_ratio, pdf_verify_sm2_ratio,
pyhanko_pdf_sign_per_cpu_s and pdf_sign_vs_pyhanko (PDF figures are null when stamping.pdf is not
available).
Targets (issue 19): OFD stamp+sign ≥ 0.5, PDF ≥ 0.35 of the SM2 sign rate; 验章 ≥ 0.35 of the SM2
verify rate; PDF stamp+sign ≥ 10× pyHanko.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import tempfile
from pathlib import Path

from cpu_figures import OpensslReference, Rates, rates

from stamping.ofd.demo import make_demo_kit
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.pdf import stamp_pdf, verify_pdf
from stamping.pdf.samples import make_sample_certificate_pdf
from stamping.placement import Placement

REPO = Path(__file__).resolve().parents[1]


def pyhanko_signer(signer):
    """A pyHanko signer whose raw signature is made by our SM2 ``signer`` (SM2-with-SM3)."""
    sys.path.insert(0, str(REPO))
    from asn1crypto import algos, x509
    from pyhanko.sign.signers import Signer

    from tests.pdf.pyhanko_check import _register_gm_oids

    _register_gm_oids()

    class SM2Signer(Signer):
        def __init__(self) -> None:
            super().__init__(signing_cert=x509.Certificate.load(signer.certificate), embed_roots=False,
                             signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"}))

        async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
            return bytes(72) if dry_run else signer.sign(data)

    return SM2Signer()


def pyhanko_sign(pdf: bytes, signer) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    out = io.BytesIO()
    meta = signers.PdfSignatureMetadata(field_name="Seal", md_algorithm="sm3")
    asyncio.run(signers.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer, output=out))
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum CPU seconds per measurement")
    parser.add_argument("--docs", type=int, default=20, help="distinct sample documents")
    parser.add_argument("--cpu", action="store_true",
                        help="headline *_per_s figures per CPU second of this process, not wall time")
    args = parser.parse_args()
    ossl = OpensslReference()
    ossl.sample()
    measured: dict[str, Rates | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kit = make_demo_kit(Path(tmp))
        anchor = Placement(page=None, x_mm=None, y_mm=None, anchor_text="（盖章）", offset_mm=(0.0, 0.0),
                           cross_page=False)
        payload = b"SealFlow benchmark payload " * 8
        measured["sm2_sign"] = rates(kit.signer.sign, [payload], args.seconds)

        ofd_docs = [make_sample_certificate_ofd(sample_business_licence_fields(i), "business_licence")
                    for i in range(args.docs)]
        measured["ofd_sign"] = rates(lambda d: stamp_ofd(d, kit.seal_der, kit.signer, anchor), ofd_docs,
                                     args.seconds)
        sealed = [stamp_ofd(d, kit.seal_der, kit.signer, anchor) for d in ofd_docs]
        assert verify_ofd(sealed[0], "bench.ofd", kit.trust).valid, "benchmark output does not verify"
        measured["ofd_verify"] = rates(lambda d: verify_ofd(d, "bench.ofd", kit.trust), sealed, args.seconds)
        ossl.sample()

        pdf_docs = [make_sample_certificate_pdf(sample_business_licence_fields(i), "business_licence")
                    for i in range(args.docs)]
        measured["pdf_sign"] = rates(lambda d: stamp_pdf(d, kit.seal_der, kit.signer, anchor),
                                     pdf_docs, args.seconds)
        signed = [stamp_pdf(d, kit.seal_der, kit.signer, anchor) for d in pdf_docs]
        measured["pdf_verify"] = rates(lambda d: verify_pdf(d, "bench.pdf", kit.trust), signed, args.seconds)
        # Two seals: the first seal's later update is classified and its page rendered and compared
        # (single seals, above, skip that: nothing follows them).
        two = [stamp_pdf(d, kit.seal_der, kit.signer, Placement(page=0, x_mm=50, y_mm=60)) for d in signed]
        measured["pdf_verify_two_seals"] = rates(lambda d: verify_pdf(d, "bench.pdf", kit.trust), two,
                                                 args.seconds)
        hanko = pyhanko_signer(kit.signer)
        measured["pyhanko_pdf_sign"] = rates(lambda d: pyhanko_sign(d, hanko), pdf_docs, args.seconds)
        ossl.sample()
    figures = summarize(measured, ossl, args.cpu)
    print(json.dumps(figures))


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 3) if num and den else None


def summarize(measured: dict[str, Rates | None], ossl: OpensslReference, headline_cpu: bool) -> dict:
    """Prints the human lines and returns the JSON figures."""
    figures: dict[str, float | None] = {}
    for name, r in measured.items():
        figures[f"{name}_per_s"] = None if r is None else round(r.per_cpu_s if headline_cpu else r.per_s, 1)
        figures[f"{name}_per_cpu_s"] = None if r is None else round(r.per_cpu_s, 1)
    figures["openssl_sm2_sign_per_s"] = round(ossl.sign, 1)
    figures["openssl_sm2_verify_per_s"] = round(ossl.verify, 1)
    for kind in ("ofd", "pdf"):
        figures[f"{kind}_sign_sm2_ratio"] = _ratio(figures[f"{kind}_sign_per_cpu_s"], ossl.sign)
        figures[f"{kind}_verify_sm2_ratio"] = _ratio(figures[f"{kind}_verify_per_cpu_s"], ossl.verify)
    figures["pdf_sign_vs_pyhanko"] = _ratio(figures["pdf_sign_per_cpu_s"], figures["pyhanko_pdf_sign_per_cpu_s"])
    targets = {"ofd_sign": "ratio target 0.5 of SM2 sign", "pdf_sign": "ratio target 0.35 of SM2 sign",
               "ofd_verify": "ratio target 0.35 of SM2 verify", "pdf_verify": "ratio target 0.35 of SM2 verify"}
    print(f"OpenSSL SM2: sign {ossl.sign:8.1f}/CPU-s  verify {ossl.verify:8.1f}/CPU-s", flush=True)
    for name, r in measured.items():
        if r is None:
            continue
        ratio = figures.get(f"{name}_sm2_ratio")
        extra = f"  ratio {ratio} ({targets[name]})" if name in targets else ""
        print(f"{name:18s} {r.per_s:8.1f}/s wall  {r.per_cpu_s:8.1f}/CPU-s{extra}", flush=True)
    if figures["pdf_sign_vs_pyhanko"] is not None:
        print(f"PDF stamp+sign over pyHanko: {figures['pdf_sign_vs_pyhanko']}× (target 10×)", flush=True)
    return figures


if __name__ == "__main__":
    main()
