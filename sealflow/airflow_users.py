"""The registry's people as Airflow users: SealFlow roles mapped onto the auth manager's roles.

In Airflow the person acting is the logged-in user (the auth manager's user on API calls and on
the HITL response), so each registry user (``registry_users`` and their unit roles) is an Airflow
user of the same name — the convention the 用章审批 step relies on when it assigns the approval to
the keeper's Airflow user. On every stack and in compose the auth manager is the SimpleAuthManager
(``sealflow.stack.layout.AUTH_MANAGER``, docs/identities.md says why): the API server gets them through
``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` and a 0600 passwords file (one generated password per
user, kept there for the person to collect).

Mapping (the highest wins when a user holds several roles):

=====================  ==========================  ==============================================
SealFlow role          SimpleAuthManager role      why
=====================  ==========================  ==============================================
admin (印章管理员)     admin                       manages connections, users of the stack
operator               op                          runs and clears batches, pools
keeper, reviewer,      user                        answers HITL (用章审批), triggers what they own
applicant, records,
archivist
auditor                viewer                      reads runs, logs and the audit trail only
=====================  ==========================  ==============================================

Decision: read the registry when the stack's Airflow environment is built; a registry that cannot
be read yields no users but the stack's own administrator (the stack still starts; restart it
after adding people).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from kernel.settings import Settings

AIRFLOW_ROLE_RANK = ("viewer", "user", "op", "admin")
ROLE_MAP = {"admin": "admin", "operator": "op", "keeper": "user", "reviewer": "user", "applicant": "user",
            "records_office": "user", "archivist": "user", "auditor": "viewer"}


def airflow_role(sealflow_roles: list[str]) -> str | None:
    """The auth manager role for a user holding ``sealflow_roles`` (None: no roles, no login)."""
    mapped = [ROLE_MAP[r] for r in sealflow_roles if r in ROLE_MAP]
    return max(mapped, key=AIRFLOW_ROLE_RANK.index) if mapped else None


def registry_users(settings: Settings) -> list[dict[str, Any]]:
    """Every registry user with their roles, read without migrating; [] when there is no registry yet."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    url = settings.resolved_database_url
    if url.startswith("sqlite") and not (settings.state_dir / "sealflow.db").exists() and not settings.database_url:
        return []
    from sealflow import root

    try:
        with root.database(url, migrated=False) as sessions:
            if not inspect(sessions.kw["bind"]).has_table("registry_users"):
                return []
            return root.registry(settings, sessions).users()
    except SQLAlchemyError:
        return []


def simple_auth_users(users: list[dict[str, Any]], stack_admin: str) -> list[tuple[str, str]]:
    """``(name, role)`` for the SimpleAuthManager: the stack's administrator, then every registry
    user with a role, in name order."""
    out = {stack_admin: "admin"}
    for user in users:
        role = airflow_role([r["role"] for r in user["roles"]])
        if role and "," not in user["username"] and ":" not in user["username"]:
            out.setdefault(user["username"], role)
    return sorted(out.items(), key=lambda item: (item[0] != stack_admin, item[0]))


def ensure_passwords(path: Path, names: list[str], write_private) -> dict[str, str]:
    """A generated password for each user who has none in the passwords file (0600, via ``write_private``)."""
    passwords: dict[str, str] = {}
    if path.exists():
        try:
            passwords = json.loads(path.read_text() or "{}")
        except ValueError:
            passwords = {}
    missing = [n for n in names if n not in passwords]
    if missing:
        passwords.update({n: secrets.token_urlsafe(12) for n in missing})
        write_private(path, json.dumps(passwords) + "\n")
    return passwords
