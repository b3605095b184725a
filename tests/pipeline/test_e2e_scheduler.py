"""One end-to-end run of stamp_batch under the real scheduler (LocalExecutor), triggered and
approved through Airflow's REST API exactly as an office and its seal keeper do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealflow.batch_runner import prepare_demo_seal, run_batch
from sealflow.stack import down, up
from stamping.batch.samples import write_batch
from tests.stack_fixtures import stack_settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scheduler_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    # Its own state directory: a scheduler must not pick up the dag.test() runs of other tests.
    settings = stack_settings(tmp_path_factory.mktemp("e2e") / "var")
    try:
        up(settings, ui=True, out=lambda _m: None)
        yield settings
    finally:
        down(settings, out=lambda _m: None)


def test_batch_under_the_scheduler(scheduler_stack, tmp_path: Path) -> None:
    settings = scheduler_stack
    seal = prepare_demo_seal(settings)
    expected = write_batch(tmp_path / "in", 30, bad=True)
    result = run_batch(settings, tmp_path / "in", seal.es_id, seal.keeper, "e2e-1", timeout=600)
    assert result["state"] == "success", result
    report = json.loads((settings.state_dir / "batches" / "e2e-1" / "report.json").read_text())
    assert report["counts"]["verified"] == expected["good"]
    assert report["counts"]["quarantined"] == expected["bad"]
    assert report["status"] == "done"
