"""What the distributed tests share: whether PostgreSQL and Redis are there (else the reason to skip),
the settings of a test stack, and which Celery worker ran each task instance of a run.

The invariants after a fault are the embedded fault suite's (``tests.faults.helpers``): one way to
check them for both stacks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kernel.settings import Settings

PG_DSN = os.environ.get("SEALFLOW_TEST_PG_DSN", "")
REDIS_URL = os.environ.get("SEALFLOW_TEST_REDIS_URL", "")


def unavailable() -> str | None:
    """Why the distributed stack cannot run here, or None."""
    if not PG_DSN:
        return "SEALFLOW_TEST_PG_DSN is not set (no PostgreSQL for the distributed stack)"
    if not REDIS_URL:
        return "SEALFLOW_TEST_REDIS_URL is not set (no Redis broker for the distributed stack)"
    try:
        import redis
        from sqlalchemy import create_engine, text

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        engine = create_engine(PG_DSN)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # the reason goes into the skip message
        return f"PostgreSQL or Redis does not answer: {exc}"
    return None


def cluster_test_settings(home: Path, chunk: int, **overrides: Any) -> Settings:
    return Settings(home=home, kek="00" * 32, stamp_chunk_size=chunk, cluster_pg_dsn=PG_DSN,
                    cluster_redis_url=REDIS_URL).with_overrides(**overrides)


def ran_by(airflow_db_url: str, run_id: str, dag_id: str = "stamp_batch") -> list[dict[str, Any]]:
    """Each task instance of the run with the Celery worker that ran its current try (celery_taskmeta,
    which the layout's result_extended fills), from Airflow's metadata database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(airflow_db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT ti.task_id, ti.map_index, ti.try_number, ti.hostname, tm.worker FROM task_instance ti "
                "LEFT JOIN celery_taskmeta tm ON tm.task_id = ti.external_executor_id "
                "WHERE ti.dag_id = :dag AND ti.run_id = :run"), {"dag": dag_id, "run": run_id}).mappings().all()
    finally:
        engine.dispose()
    return [dict(row) for row in rows]


def worker_of(row: dict[str, Any]) -> str | None:
    """The launcher component (worker-1, worker-2) of a :func:`ran_by` row's Celery worker name."""
    return row["worker"].split("@")[0] if row["worker"] else None
