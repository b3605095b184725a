"""Who may open which console page (控制台权限): the person's SealFlow roles, read from the registry.

The Airflow user is authenticated by Airflow (``get_user``: bearer JWT or the UI's ``_token`` cookie);
their name is their registry user name (docs/identities.md), and the registry's ``registry_unit_users``
rows say which roles they hold. The Airflow role alone is not enough: keepers, archivists and records
offices all map to Airflow's ``user`` role.

Decisions:
- The keeper's inbox needs the keeper role and then shows only the approvals whose keeper is this
  very user: another keeper's approvals are never listed (and the answer gate refuses their answer).
- No registry role, no page (403), except 验章 upload, which the seeds' platform offers to every
  connected party: any authenticated Airflow user may verify a file.
- The roles are looked up on every request (one indexed query), so a revoked role takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, status
from sqlalchemy import select

from stamping.registry.models import UnitUser

ADMIN = "admin"
BATCHES = frozenset({ADMIN, "operator", "records_office", "keeper", "applicant", "auditor"})
ARCHIVE = frozenset({ADMIN, "archivist", "records_office", "auditor"})
HEALTH = frozenset({ADMIN, "operator", "archivist", "auditor"})
METRICS = frozenset({ADMIN, "operator", "auditor"})
# The inbox holds only the person's own approvals: the keeper role, and then the approval's keeper name.
INBOX = frozenset({"keeper"})
# Making a dead-lettered filing due again is an operator's action (audited); seeing it is HEALTH.
RETRY = frozenset({ADMIN, "operator"})


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    roles: frozenset[str]


def registry_roles(sessions, username: str) -> frozenset[str]:
    with sessions() as session:
        return frozenset(session.scalars(select(UnitUser.role).where(UnitUser.username == username)))


def _airflow_user_dependency():
    # Imported lazily: Airflow's security module pulls in the whole api-server (only there is it needed).
    from airflow.api_fastapi.core_api.security import get_user

    return get_user


def requires(allowed: Iterable[str] | None, sessions_provider: Callable[[], object]) -> Callable:
    """A FastAPI dependency: the authenticated user, refused with 403 unless they hold an allowed role.

    ``allowed=None`` admits any authenticated Airflow user.
    """
    wanted = None if allowed is None else frozenset(allowed)

    def dependency(user=Depends(_airflow_user_dependency())) -> ConsoleUser:  # noqa: B008 - FastAPI style
        name = user.get_name()
        roles = registry_roles(sessions_provider(), name)
        if wanted is not None and not (roles & wanted):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"{name} 无权访问此页 (needs one of the SealFlow roles: "
                                       f"{', '.join(sorted(wanted))}; ask the unit's administrator)")
        return ConsoleUser(name, roles)

    return dependency
