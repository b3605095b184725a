"""The backup DAG under dag.test() in the embedded stack's Airflow: a verifiable backup, then an incremental."""

from __future__ import annotations

import json

import pytest

from backup.restore import backup_ids, verify_backup
from backup.service import backup_keys, destination

pytestmark = pytest.mark.stack


def test_the_daily_backup_run_leaves_a_backup_that_verifies(embedded_stack, tmp_path) -> None:
    from sealflow.stack import run_dag_test

    settings = embedded_stack.settings.with_overrides(
        database_url=f"sqlite:///{tmp_path / 'sealflow.db'}", backup_target=str(tmp_path / "backups"))
    for _ in range(2):
        done = run_dag_test(settings, "backup", timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["state"] == "success"
    dest = destination(settings, None)
    ids = backup_ids(dest)
    assert len(ids) == 2
    check = verify_backup(dest, ids[-1], keys=backup_keys(settings))
    assert check.ok, check.problems
    assert check.manifest["base"] == ids[0]
