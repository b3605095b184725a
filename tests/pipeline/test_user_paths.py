"""A records office's careless or hostile batch folder through stamp_batch and archive_batch on the
embedded stack, then the paths a person takes on what the pipeline made: the task log names each
quarantined row and why, ``sealflow batch status`` counts every stage from the database, and
``sealflow archive search`` prints a table with its headers."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from sealflow.stack import sealflow_env
from stamping.batch.models import BatchDocument
from stamping.batch.samples import write_batch
from tests.pipeline.conftest import PipelineEnv, batch_conf

SEALFLOW = str(Path(sys.executable).with_name("sealflow"))


def _hostile_folder(folder: Path, outside: Path) -> dict[str, int]:
    """A sample batch, then five of its rows made hostile in the ways a careless office would."""
    expected = write_batch(folder, 8, bad=False, start=7300)
    manifest = folder / "manifest.csv"
    with manifest.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    outside.write_bytes((folder / rows[0]["file"]).read_bytes())
    (folder / rows[0]["file"]).unlink()
    (folder / rows[0]["file"]).symlink_to(outside)  # a link out of the batch folder
    (folder / rows[1]["file"]).unlink()
    os.mkfifo(folder / rows[1]["file"])  # would block a reader forever
    rows[2]["file"] = "./" + rows[3]["file"]  # one file named twice
    rows[4]["file"] = "nul\x00.pdf"
    rows[5]["holder_name"] = "长" * (140 * 1024)  # over the csv module's field limit
    with manifest.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"good": expected["documents"] - 6, "bad": 6}


def _sealflow(env: PipelineEnv, *args: str) -> subprocess.CompletedProcess:
    run_env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEALFLOW_")},
               **sealflow_env(env.settings)}
    return subprocess.run([SEALFLOW, *args], env=run_env, capture_output=True, text=True, timeout=120)


def test_a_hostile_batch_goes_on_and_every_path_reads_what_it_made(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    counts = _hostile_folder(tmp_path / "in", tmp_path / "outside.pdf")
    result = pipeline_env.run_batch(batch_conf(pipeline_env, tmp_path / "in", "hostile-e2e"), "Approve")
    assert result.returncode == 0, result.stdout[-4000:]
    with pipeline_env.sessions() as session:
        docs = list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == "hostile-e2e")))
    states = [d.state for d in docs]
    assert states.count("verified") == counts["good"] and states.count("quarantined") == counts["bad"]
    reasons = " | ".join("; ".join(d.reasons) for d in docs)
    for why in ("is a symbolic link", "is a FIFO (named pipe)", "appears 2 times", "\\x00",
                "field larger than field limit"):
        assert why in reasons, why
    assert not any(d.output_path for d in docs if d.state == "quarantined")  # nothing sealed for a refused row

    # The operator's view: the ingest task's log lists each quarantined row with its reasons.
    log = result.stdout
    assert "row(s) quarantined, not stamped" in log
    assert "is a FIFO (named pipe), not a regular file" in log

    status = _sealflow(pipeline_env, "batch", "status", "hostile-e2e")
    assert status.returncode == 0, status.stderr
    assert status.stderr == ""  # no alembic or httpx chatter
    lines = status.stdout.splitlines()
    assert lines[0].startswith("batch hostile-e2e — done — seal ") and "approval: approved" in lines[0]
    table = {line.split()[0]: int(line.split()[1]) for line in lines[1:9]}
    assert table["checked"] == 8 and table["quarantined"] == 6 and table["stamped"] == counts["good"]
    assert table["verified"] == counts["good"] and table["archived"] == 0

    from tests.pipeline.test_stamp_batch import _archive_the_batch

    _archive_the_batch(pipeline_env, "hostile-e2e", counts["good"])
    status = _sealflow(pipeline_env, "batch", "status", "hostile-e2e")
    archived = next(line for line in status.stdout.splitlines() if line.split()[0] == "archived")
    assert archived.split()[1] == str(counts["good"])

    search = _sealflow(pipeline_env, "archive", "search", "--batch", "hostile-e2e")
    assert search.returncode == 0 and search.stderr == "", search.stderr
    out = search.stdout.splitlines()
    assert out[0].split() == ["档号", "archival", "code", "证照编号", "number", "持证主体", "holder",
                              "持证主体代码", "holder", "code", "归档", "archived", "证照类型", "type"]
    assert len(out) == counts["good"] + 2 and out[-1] == f"{counts['good']} record(s)"
