"""The ``sealflow_platform`` connection is read one way, by the tasks' settings and the filing hook alike."""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _hooks():
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    from sealflow_airflow import hooks

    return hooks


def _connection(**fields):
    from airflow.models.connection import Connection

    return Connection(conn_id="sealflow_platform", conn_type="http", **fields)


def test_a_full_url_in_host_is_the_endpoint_and_login_password_extra_name_the_sender():
    conn = _connection(host="https://platform.example.gov.cn:8443/", login="sys-450000", password="pin-123456",
                       extra=json.dumps({"key_id": "filing-2026", "platform_cert": "/etc/sealflow/platform.pem"}))
    assert _hooks().platform_overrides(conn) == {
        "platform_url": "https://platform.example.gov.cn:8443", "filing_system_id": "sys-450000",
        "filing_key_pin": "pin-123456", "filing_key_id": "filing-2026",
        "platform_cert": "/etc/sealflow/platform.pem"}


def test_host_schema_and_port_make_the_endpoint_and_an_empty_connection_changes_nothing():
    hooks = _hooks()
    assert hooks.platform_overrides(_connection(host="10.0.0.5", schema="https", port=18600)) == {
        "platform_url": "https://10.0.0.5:18600"}
    assert hooks.platform_overrides(_connection()) == {}
