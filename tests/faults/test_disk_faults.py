"""A full or read-only disk under the batch's work area is the machine's fault, not the documents':
the chunk's task fails (Airflow retries it), what was sealed before is kept with its seal.use, the
rest stay ``accepted`` — none is marked ``failed`` — and once space is back the retry seals each
remaining document exactly once. The report of a batch with waiting documents says ``incomplete``.

The disk is a small tmpfs mounted for the test (root and mount permission needed; skipped with
the reason elsewhere), holding the work store as a folder (``kernel.workstore.FolderWorkStore``): in
production the store is S3, whose failures (botocore) are the same machine fault to the steps — see
tests/batch/test_work_store_batches.py and tests/faults/test_object_store_faults.py.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stamping.batch import process
from stamping.batch.samples import write_batch
from tests.faults.helpers import Bench, assert_batch_invariants, documents, make_bench, seal_uses

pytestmark = pytest.mark.faults


def _mount(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    done = _mount(["-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)])
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); "
                    f"the disk-full test needs root in a machine that allows mounting")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return make_bench(tmp_path_factory.mktemp("bench") / "var")


def test_a_full_disk_fails_the_chunk_for_a_retry_and_marks_no_document_failed(
        bench: Bench, small_disk: Path, tmp_path: Path) -> None:
    write_batch(tmp_path / "in", 12, bad=False)
    tools = bench.tools(small_disk / "batches")
    bench.ingest(tools, "full-1", tmp_path / "in")

    with pytest.raises(process.InfrastructureError, match="ENOSPC") as raised:
        process.stamp_chunk(tools, "full-1", 0, actor="applicant")
    assert "stamp_chunk[0]" in str(raised.value)  # says what to clear
    states = [d.state for d in documents(bench.sessions, "full-1")]
    assert "failed" not in states
    assert 0 < states.count("stamped") < 12 and states.count("accepted") == 12 - states.count("stamped")
    assert sum(seal_uses(bench.sessions, "full-1").values()) == states.count("stamped")

    assert _mount(["-o", "remount,size=64m", str(small_disk)]).returncode == 0  # the operator frees space
    waiting = process.finish(tools, "full-1")
    assert waiting["status"] == "incomplete" and waiting["pending_chunks"] == [0]

    process.stamp_chunk(tools, "full-1", 0, actor="applicant")  # Airflow's retry
    process.verify_chunk(tools, "full-1", 0)
    assert {d.state for d in documents(bench.sessions, "full-1")} == {"verified"}
    assert_batch_invariants(bench.sessions, bench.registry, "full-1")
    assert process.finish(tools, "full-1")["status"] == "done"


def test_a_read_only_disk_fails_the_chunk_and_the_retry_seals_the_rest(
        bench: Bench, small_disk: Path, tmp_path: Path) -> None:
    assert _mount(["-o", "remount,size=64m", str(small_disk)]).returncode == 0
    write_batch(tmp_path / "in", 4, bad=False, start=40)
    tools = bench.tools(small_disk / "batches")
    bench.ingest(tools, "readonly-1", tmp_path / "in")
    assert _mount(["-o", "remount,ro", str(small_disk)]).returncode == 0

    with pytest.raises(process.InfrastructureError, match="EROFS"):
        process.stamp_chunk(tools, "readonly-1", 0, actor="applicant")
    assert {d.state for d in documents(bench.sessions, "readonly-1")} == {"accepted"}
    assert seal_uses(bench.sessions, "readonly-1") == {}

    assert _mount(["-o", "remount,rw", str(small_disk)]).returncode == 0
    process.stamp_chunk(tools, "readonly-1", 0, actor="applicant")
    process.verify_chunk(tools, "readonly-1", 0)
    assert_batch_invariants(bench.sessions, bench.registry, "readonly-1")


def test_a_document_that_cannot_be_sealed_is_still_failed_with_its_reason(bench: Bench, tmp_path: Path) -> None:
    """The other kind of failure stays as it was: a bad document is set aside, the batch goes on."""
    write_batch(tmp_path / "in", 3, bad=False, start=80)
    tools = bench.tools(tmp_path / "batches")
    bench.ingest(tools, "badanchor-1", tmp_path / "in")
    def refusing(real):
        def stamp(src, seal, signer, placement, path, options):
            if "000081" in path:
                raise ValueError("anchor text （盖章） not found on any page")
            return real(src, seal, signer, placement, path, options)
        return stamp

    tools.stampers = {kind: refusing(real) for kind, real in tools.stampers.items()}
    process.stamp_chunk(tools, "badanchor-1", 0, actor="applicant")
    process.verify_chunk(tools, "badanchor-1", 0)
    assert_batch_invariants(bench.sessions, bench.registry, "badanchor-1")
    states = {d.file: d.state for d in documents(bench.sessions, "badanchor-1")}
    assert sorted(states.values()) == ["failed", "verified", "verified"]
    assert process.finish(tools, "badanchor-1")["status"] == "done"


def test_machine_errors_are_told_apart_from_document_errors() -> None:
    import errno

    from PIL import UnidentifiedImageError

    assert process.is_infrastructure(OSError(errno.ENOSPC, "No space left on device"))
    assert process.is_infrastructure(PermissionError(errno.EACCES, "Permission denied"))
    wrapped = RuntimeError("could not write the sealed file")
    wrapped.__cause__ = OSError(errno.EIO, "Input/output error")
    assert process.is_infrastructure(wrapped)
    assert not process.is_infrastructure(ValueError("anchor not found"))
    assert not process.is_infrastructure(UnidentifiedImageError("cannot identify image file"))
