"""The console's Prometheus metrics in-process: SealFlow's counters and gauges are all there, in valid
text format, with the last fixity pass and batches by status. The same endpoint is scraped on the real
api-server after a batch ran through the pipeline in tests/pipeline/test_console.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from kernel.db import transaction
from tests.console.world import demo_world, get_as_admin
from tests.pipeline.plugins_path import pipeline_module

SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? -?[0-9.e+]+$')
FAMILIES = ("sealflow_documents_sealed", "sealflow_documents_verified", "sealflow_documents_quarantined",
            "sealflow_documents_failed", "sealflow_verification_failures", "sealflow_filing_outbox",
            "sealflow_filing_backlog", "sealflow_filing_dead_letters", "sealflow_archive_records",
            "sealflow_archive_bytes", "sealflow_fixity_problems", "sealflow_fixity_records_checked",
            "sealflow_fixity_last_run_timestamp_seconds", "sealflow_batches", "sealflow_seals",
            "sealflow_seal_days_to_expiry", "sealflow_key_wrong_pins", "sealflow_key_locked")


@pytest.fixture
def scrape(tmp_path):
    from archive.fixity import record_run
    from stamping.batch.models import Batch, BatchDocument
    from stamping.registry.models import Seal

    world = demo_world(tmp_path / "var")
    settings, sessions, demo = world.settings, world.sessions, world.demo
    es_id = demo["es_ids"]["official"]
    checked_at = datetime(2026, 11, 28, 16, 0, 0, 250000, tzinfo=UTC)
    with transaction(sessions) as session:
        session.execute(update(Seal).where(Seal.es_id == demo["es_ids"]["personal"]).values(status="revoked"))
        for batch_id, status in (("m-1", "done"), ("m-2", "refused")):
            session.add(Batch(batch_id=batch_id, source="/in", es_id=es_id, requester="applicant", status=status,
                              work_dir="/tmp/x", created_at=checked_at))
        session.flush()
        for row, state in enumerate(("verified", "verified", "quarantined", "failed"), start=2):
            verification = {"signatures": [{"checks": [{"name": "data_hash", "ok": False}]}]} if state == "failed" \
                else {}
            session.add(BatchDocument(batch_id="m-1", file=f"d{row}.pdf", row=row, state=state,
                                      verification=verification))
    record_run(sessions, {"checked_at": checked_at.isoformat(), "records_checked": 40, "ok": False,
                          "problem_counts": {"missing": 2, "mismatch": 1}, "problems": [],
                          "report_key": "reports/fixity/x.json"})
    pipeline_module(settings)
    response = get_as_admin("/metrics")
    yield response, es_id, checked_at
    world.engine.dispose()


def test_every_family_is_exposed_in_valid_prometheus_text(scrape) -> None:
    response, _, _ = scrape
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    for family in FAMILIES:
        assert f"# TYPE {family} gauge" in response.text, family
    for line in response.text.splitlines():
        assert line.startswith("# ") or SAMPLE.match(line), line


def test_documents_per_batch_and_seal_failures_by_reason_fixity_and_batches_by_status(scrape) -> None:
    response, es_id, checked_at = scrape
    text = response.text
    key = f'batch="m-1",seal="{es_id}"'
    assert f"sealflow_documents_verified{{{key}}} 2" in text
    assert f"sealflow_documents_sealed{{{key}}} 2" in text
    assert f"sealflow_documents_quarantined{{{key}}} 1" in text
    assert f"sealflow_documents_failed{{{key}}} 1" in text
    assert 'sealflow_verification_failures{reason="data_hash"} 1' in text
    assert 'sealflow_fixity_problems{problem="missing"} 2' in text
    assert 'sealflow_fixity_problems{problem="mismatch"} 1' in text
    assert "sealflow_fixity_records_checked 40" in text
    assert f"sealflow_fixity_last_run_timestamp_seconds {checked_at.timestamp()!r}" in text  # not rounded
    assert 'sealflow_batches{status="done"} 1' in text and 'sealflow_batches{status="refused"} 1' in text
    assert 'sealflow_seals{status="revoked"} 1' in text
