"""The registry's daily job (``seal_maintenance`` DAG): expire seals past their validity and sign
an audit checkpoint, so that even a quiet day ends with the whole log covered by a signature."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sealflow.db import make_engine, migrate, session_factory, transaction
from sealflow.settings import Settings
from stamping.registry.service import SealRegistry


def run_maintenance(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Expire due seals (filed and audited each) and checkpoint the audit log; a summary for XCom."""
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        registry = SealRegistry(session_factory(engine), settings)
        expired = registry.expire_due(now)
        with transaction(registry._sessions) as session:
            point = registry.audit.checkpoint(session)
        return {"expired": expired, "checkpoint_seq": point.seq if point else None}
    finally:
        engine.dispose()
