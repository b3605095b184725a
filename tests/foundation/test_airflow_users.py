"""The registry's people are the embedded stack's Airflow users (SimpleAuthManager), each with the
auth manager role their SealFlow roles map to, and the keeper's Airflow user is named like the
registry user (issue 13 item 1)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from kernel.settings import Settings
from sealflow.airflow_users import airflow_role


def test_sealflow_roles_map_onto_the_auth_managers_roles() -> None:
    assert airflow_role(["admin"]) == "admin"
    assert airflow_role(["operator"]) == "op"
    assert airflow_role(["keeper"]) == airflow_role(["reviewer"]) == airflow_role(["records_office"]) == "user"
    assert airflow_role(["auditor"]) == "viewer"
    assert airflow_role(["auditor", "keeper"]) == "user"  # the highest wins
    assert airflow_role([]) is None


def test_the_stack_gives_every_registry_user_an_airflow_login(tmp_path: Path) -> None:
    from sealflow.commands.seal import registry
    from sealflow.stack import airflow_env, ensure_identity
    from sealflow.stack.ports import free_port_block
    from stamping.registry.demo import bootstrap_demo
    from tests.stack_fixtures import stop_stack

    settings = Settings(home=tmp_path / "var", kek="55" * 32, review_levels=1, audit_key_pin="audit-pin-5",
                        identity_port=free_port_block(1))
    try:  # the CLI's registry checks the demo's people against the stack's identity simulator
        ensure_identity(settings, out=lambda _m: None)
        bootstrap_demo(registry(settings), official_pin="official-pin-5")
    finally:
        stop_stack(settings.home)
    users = dict(pair.split(":") for pair in airflow_env(settings)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
                 .split(","))
    assert users["admin"] == "admin" and users["keeper"] == "user" and users["reviewer1"] == "user"
    assert users["operator"] == "op" and users["auditor"] == "viewer" and users["archivist"] == "user"
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert set(json.loads(passwords.read_text())) == set(users)
