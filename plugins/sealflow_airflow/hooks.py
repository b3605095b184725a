"""Hooks: SealFlow's domain objects built from Airflow connections.

``sealflow_s3`` (type aws: login/password = access keys, extra ``endpoint_url``, ``region_name``,
optional ``work_bucket``/``archive_bucket``) is the object store; ``sealflow_platform`` (type http)
is the national platform's filing endpoint. A missing connection falls back to the ``SEALFLOW_*``
settings, so a task behaves the same under ``dag.test()``, the embedded stack and production.
"""

from __future__ import annotations

import logging
from typing import Any

from kernel.objectstore import make_s3_client
from kernel.settings import Settings, get_settings

log = logging.getLogger(__name__)

S3_CONN_ID = "sealflow_s3"
PLATFORM_CONN_ID = "sealflow_platform"


def _connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or None when it is not defined."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)  # in a task: through the execution API
    except Exception as exc:  # AirflowNotFoundException and friends
        first = exc
    try:
        # Outside a task (scripts, the CLI, tests) the SDK sees only env/secrets backends: ask the metastore.
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)
    except Exception as exc:  # not defined anywhere: fall back to settings
        log.info("connection %s not available (%s, %s); using SEALFLOW_* settings", conn_id,
                 type(first).__name__, type(exc).__name__)
        return None


def platform_overrides(conn: Any) -> dict[str, Any]:
    """What a ``sealflow_platform`` connection sets — the one reading of it (tasks, the filing hook):
    the endpoint (host/schema/port, or a full URL in host), our system id (login), the PIN of the sending
    system's key (password), and from extra the key id and the pinned platform certificate."""
    extra = conn.extra_dejson or {}
    overrides: dict[str, Any] = {}
    host = conn.host or ""
    if "://" in host:
        overrides["platform_url"] = host.rstrip("/")
    elif host:
        url = f"{conn.schema or 'http'}://{host}"
        overrides["platform_url"] = f"{url}:{conn.port}" if conn.port else url
    if conn.login:
        overrides["filing_system_id"] = conn.login
    if conn.password:
        overrides["filing_key_pin"] = conn.password
    if extra.get("key_id"):
        overrides["filing_key_id"] = str(extra["key_id"])
    if extra.get("platform_cert"):
        overrides["platform_cert"] = str(extra["platform_cert"])
    return overrides


def settings_from_connections(base: Settings | None = None) -> Settings:
    """``Settings`` from the environment, with the external endpoints taken from the connections."""
    settings = base or get_settings()
    overrides: dict[str, Any] = {}
    s3 = _connection(S3_CONN_ID)
    if s3 is not None:
        extra = s3.extra_dejson or {}
        for field_name, key in (("s3_endpoint", "endpoint_url"), ("s3_region", "region_name"),
                                ("work_bucket", "work_bucket"), ("archive_bucket", "archive_bucket")):
            if extra.get(key):
                overrides[field_name] = str(extra[key])
        if s3.login:
            overrides["s3_access_key"] = s3.login
        if s3.password:
            overrides["s3_secret_key"] = s3.password
    platform = _connection(PLATFORM_CONN_ID)
    if platform is not None:
        overrides.update(platform_overrides(platform))
    return settings.with_overrides(**overrides) if overrides else settings


def s3_client(conn_id: str = S3_CONN_ID) -> Any:
    """A boto3 S3 client for the object store of ``conn_id`` (checksums only when required)."""
    conn = _connection(conn_id)
    if conn is None:
        settings = get_settings()
        return make_s3_client(settings.resolved_s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                              settings.s3_region)
    extra = conn.extra_dejson or {}
    return make_s3_client(extra.get("endpoint_url"), conn.login, conn.password,
                          extra.get("region_name") or get_settings().s3_region)


def platform_url(conn_id: str = PLATFORM_CONN_ID) -> str:
    """Base URL of the national platform (or its simulator)."""
    if conn_id == PLATFORM_CONN_ID:
        return settings_from_connections().resolved_platform_url
    conn = _connection(conn_id)
    url = platform_overrides(conn).get("platform_url") if conn is not None else None
    return url or get_settings().resolved_platform_url
