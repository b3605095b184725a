"""The distributed stack's share of the machine's PostgreSQL and Redis: this stack's databases
(``layout.DATABASES``, named by its plan) and its Redis keys (its prefix), made, checked and
dropped — never anyone else's.

Decision: the stores are used, never started (``SEALFLOW_CLUSTER_PG_DSN``,
``SEALFLOW_CLUSTER_REDIS_URL``); :func:`purge` is the one way a stopped stack forgets them.
"""

from __future__ import annotations

from typing import Any

from kernel.settings import Settings
from sealflow.stack import layout
from sealflow.stack.cluster import ClusterPlan, env_file, plan_file, read_plan
from sealflow.stack.paths import StackError


def _pg_admin(plan: ClusterPlan) -> Any:
    from sqlalchemy import create_engine

    return create_engine(plan.pg_dsn, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def ensure_databases(plan: ClusterPlan) -> list[str]:
    """Create this stack's databases (layout.DATABASES) that do not exist yet; returns those made."""
    from sqlalchemy import text

    made: list[str] = []
    engine = _pg_admin(plan)
    try:
        with engine.connect() as conn:
            for role in layout.DATABASES:
                name = plan.database(role)
                if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                    # a name we made (sf_<hex>_<role>): CREATE DATABASE takes no bind parameter
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    made.append(name)
    except Exception as exc:
        raise StackError(f"PostgreSQL at {plan.pg_dsn} did not let us create the stack's databases ({exc}); "
                         "start it, or set SEALFLOW_CLUSTER_PG_DSN to a server where this user may CREATE "
                         "DATABASE") from exc
    finally:
        engine.dispose()
    return made


def drop_databases(plan: ClusterPlan) -> None:
    from sqlalchemy import text

    engine = _pg_admin(plan)
    try:
        with engine.connect() as conn:
            for role in layout.DATABASES:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{plan.database(role)}" WITH (FORCE)'))
    finally:
        engine.dispose()


def _redis(plan: ClusterPlan) -> Any:
    import redis

    return redis.Redis.from_url(plan.redis_url, socket_connect_timeout=3, socket_timeout=5)


def check_redis(plan: ClusterPlan) -> None:
    try:
        _redis(plan).ping()
    except Exception as exc:
        raise StackError(f"Redis at {plan.redis_url} does not answer ({exc}); start it, or set "
                         "SEALFLOW_CLUSTER_REDIS_URL") from exc


def flush_redis(plan: ClusterPlan) -> int:
    """Delete this stack's Redis keys (its prefix) and nothing else; how many there were."""
    client = _redis(plan)
    keys = list(client.scan_iter(match=f"{plan.redis_prefix}*", count=500))
    return client.delete(*keys) if keys else 0


def purge(settings: Settings) -> None:
    """Forget a stopped distributed stack's shared stores: its databases, its Redis keys, its plan."""
    plan = read_plan(settings)
    if plan is None:
        return
    drop_databases(plan)
    flush_redis(plan)
    (settings.airflow_home / ".sealflow-prepared").unlink(missing_ok=True)
    env_file(settings).unlink(missing_ok=True)
    plan_file(settings).unlink(missing_ok=True)
