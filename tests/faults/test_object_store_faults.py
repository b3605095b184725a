"""SeaweedFS killed with SIGKILL while a batch is fetched from ``s3://``: the ingest fails with an
error that says "the machine" (so its task is retried, registering nothing half-way), and once the
store is back the retry registers every document once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sealflow import stack
from sealflow.batch_runner import prepare_demo_seal
from stamping.batch import process
from stamping.batch.samples import write_batch
from tests.faults.helpers import documents
from tests.pipeline.plugins_path import pipeline_module

pytestmark = [pytest.mark.faults, pytest.mark.stack]


def test_object_store_killed_during_ingest_fails_the_task_and_the_retry_registers_each_document_once(
        embedded_stack, tmp_path: Path) -> None:
    settings = embedded_stack.settings
    seal = prepare_demo_seal(settings)
    pipeline = pipeline_module(settings)
    write_batch(tmp_path / "in", 6, bad=False, start=700)
    s3 = embedded_stack.s3()
    for path in (tmp_path / "in").iterdir():
        s3.upload_file(str(path), settings.work_bucket, f"inbox/s3kill-1/{path.name}")
    params = {"batch_location": f"s3://{settings.work_bucket}/inbox/s3kill-1", "es_id": seal.es_id,
              "requester": "applicant", "batch_id": "s3kill-1"}

    weed = stack.read_pid(settings, "seaweedfs")
    assert weed is not None
    os.kill(weed.pid, signal.SIGKILL)
    child = stack.CHILDREN.pop(weed.pid, None)
    if child is not None:
        child.wait(timeout=10)
    try:
        started = time.monotonic()
        with pytest.raises(Exception) as raised:
            pipeline.ingest_batch(params, "run-s3kill")
        assert process.is_infrastructure(raised.value), repr(raised.value)
        assert time.monotonic() - started < 60  # fails fast enough for Airflow's retry to matter
        assert documents(pipeline.sessions(), "s3kill-1") == []  # nothing registered half-way
    finally:
        embedded_stack.up()  # the operator (or systemd) restarts the store; leftovers are reaped

    counts = pipeline.ingest_batch(params, "run-s3kill")  # Airflow's retry
    assert counts["documents"] == 6 and counts["accepted"] == 6
    assert pipeline.ingest_batch(params, "run-s3kill")["documents"] == 6  # a further retry changes nothing
    assert sorted(d.state for d in documents(pipeline.sessions(), "s3kill-1")) == ["accepted"] * 6
