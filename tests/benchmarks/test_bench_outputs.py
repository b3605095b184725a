"""Every benchmark, run at a tiny size, ends with one JSON object whose CPU-normalized fields exist
and are positive numbers (issue 19). Nothing here is timed: the figures' values are the
benchmarks' business; these tests only show that each one produces them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def last_json(script: str, *args: str, timeout: float = 900) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_positive(figures: dict, fields: list[str]) -> None:
    bad = {f: figures.get(f) for f in fields
           if not isinstance(figures.get(f), int | float) or isinstance(figures.get(f), bool) or figures[f] <= 0}
    assert not bad, f"fields missing or not positive numbers: {bad}"


def test_bench_docs_reports_ratios_to_openssl_and_pyhanko() -> None:
    figures = last_json("bench_docs.py", "--seconds", "0.02", "--docs", "2")
    assert_positive(figures, ["ofd_sign_sm2_ratio", "pdf_sign_sm2_ratio", "ofd_verify_sm2_ratio",
                              "pdf_verify_sm2_ratio", "pdf_sign_vs_pyhanko", "ofd_sign_per_cpu_s",
                              "pdf_verify_per_cpu_s", "openssl_sm2_sign_per_s", "openssl_sm2_verify_per_s"])


def test_bench_ses_and_registry_report_cpu_figures() -> None:
    assert_positive(last_json("bench_ses.py", "--n", "8"),
                    ["make_signature_per_cpu_s", "check_ses_signature_per_cpu_s", "parse_signature_cpu_us"])
    assert_positive(last_json("bench_registry.py", "--seals", "1", "--uses", "20", "--lookups", "10"),
                    ["make_seal_cpu_s", "status_lookups_per_cpu_s", "audited_uses_per_cpu_s"])


def test_bench_filing_reports_records_per_cpu_second() -> None:
    figures = last_json("bench_filing.py", "--records", "40", "--batch-size", "10", "--workers", "2")
    assert_positive(figures, ["records_per_cpu_s", "client_cpu_s", "platform_cpu_s"])


@pytest.mark.stack
@pytest.mark.slow
def test_bench_pipeline_reports_stack_cpu_against_the_domain_reference() -> None:
    figures = last_json("bench_pipeline.py", "6", "--chunk-size", "3")
    assert_positive(figures, ["stack_cpu_ms_per_doc", "domain_cpu_ms_per_doc", "cpu_overhead_ratio"])
    assert figures["runs"][0]["verified"] == 6


@pytest.mark.stack
@pytest.mark.slow
def test_bench_e2e_reports_the_whole_path_inbox_to_filed() -> None:
    figures = last_json("bench_e2e.py", "--docs", "6", timeout=1500)
    assert_positive(figures, ["wall_s", "stack_cpu_ms_per_doc", "domain_cpu_ms_per_doc", "cpu_overhead_ratio",
                              "filed", "peak_rss_mb", "peak_pss_total_mb"])
    assert figures["verified"] == figures["archived"] == 6
    assert_positive(figures["stage_s"], ["inbox_scan", "approval", "stamp_verify", "archive", "filing"])
