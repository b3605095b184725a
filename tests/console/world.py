"""What the console tests build before they look: a home with the demo's registry (people, seals) on a
migrated database, and a page fetched in-process as the administrator.

Shared by the alert, metrics, health and console-app tests so they all start from the same world and
reach the app the same way (Airflow's ``get_user`` overridden for one request, then restored, so no
test leaks its user into the next).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import Settings

KEK = "00" * 32


@dataclass
class DemoWorld:
    """A home set up with ``bootstrap_demo``: its settings, database and the demo's ids."""

    settings: Settings
    engine: Any
    sessions: Any
    registry: Any
    demo: dict


def demo_world(home: Path, *, demo: dict[str, str] | None = None, **settings: Any) -> DemoWorld:
    """A fresh home at ``home`` (KEK ``KEK`` unless given) with the demo's people and seals;
    ``demo``: keyword arguments for ``bootstrap_demo`` (e.g. the seals' PINs). Dispose of ``engine``."""
    from stamping.registry.demo import bootstrap_demo
    from stamping.registry.service import SealRegistry

    resolved = Settings(home=home, **{"kek": KEK, **settings})
    engine = make_engine(resolved.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    registry = SealRegistry(sessions, resolved)
    return DemoWorld(resolved, engine, sessions, registry, bootstrap_demo(registry, **(demo or {})))


class _Admin:
    """What Airflow's ``get_user`` hands to a route for the demo's administrator."""

    def get_name(self) -> str:
        return "admin"


def get_as_admin(path: str):
    """The console's answer to GET ``path`` for the administrator (the glue must be importable:
    call ``pipeline_module(settings)`` first)."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient
    from sealflow_airflow.console.app import app

    app.dependency_overrides[get_user] = _Admin
    try:
        return TestClient(app).get(path)
    finally:
        app.dependency_overrides.clear()
