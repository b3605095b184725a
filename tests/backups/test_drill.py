"""The disaster-recovery drill, small: a batch through the real pipeline (Airflow, SeaweedFS and its replica,
the platform simulator), a backup, more documents sealed, the home and the primary archive store
destroyed, the restore from the backup and the replica, and every check — on SQLite, and on PostgreSQL
when SEALFLOW_TEST_PG_DSN names a server (the drill makes a fresh database there and drops it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.slow, pytest.mark.timeout(3600)]

PG_DSN = os.environ.get("SEALFLOW_TEST_PG_DSN", "")


def _drill(tmp_path: Path, *extra: str) -> dict:
    sealflow = Path(sys.executable).parent / "sealflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALFLOW_")}
    done = subprocess.run([str(sealflow), "backup", "drill", "--docs", "2", "--after", "1", "--new", "1",
                           "--work", str(tmp_path / "drill"), *extra], env=env, capture_output=True, text=True,
                          timeout=3300, check=False)
    lines = done.stdout.strip().splitlines()
    assert lines, f"the drill printed nothing (exit {done.returncode}):\n{done.stderr[-4000:]}"
    try:
        result = json.loads(lines[-1])
    except ValueError:
        raise AssertionError(f"the drill's last line is not JSON (exit {done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}") from None
    assert done.returncode == 0, f"{result}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    return result


def _assert_recovered(result: dict) -> None:
    assert result["restored"] is True
    assert result["audit_ok"] is True
    assert result["archive_ok"] is True and result["packages_verified"] == 2  # the batch before the backup
    assert result["copies_repaired"] > 0  # the primary store, lost with the home, refilled from the replica
    assert result["duplicates_filed"] == 0 and result["filing_ok"] is True
    assert result["lost_after_backup"] == result["sealed_after_backup"] == 1 and result["lost_match"] is True
    assert result["new_batch_ok"] is True
    assert result["rpo_s"] > 0 and result["rto_s"] > 0 and result["backup_mb"] > 0


def test_the_drill_on_sqlite(tmp_path: Path) -> None:
    result = _drill(tmp_path)
    assert result["database"] == "sqlite"
    _assert_recovered(result)


@pytest.mark.skipif(not PG_DSN, reason="SEALFLOW_TEST_PG_DSN is not set (no PostgreSQL server to drill on)")
def test_the_drill_on_postgresql(tmp_path: Path) -> None:
    result = _drill(tmp_path, "--pg", PG_DSN)
    assert result["database"] == "postgresql"
    _assert_recovered(result)
