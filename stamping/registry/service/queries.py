"""Reading the registry: a seal's SESeal for export, lists of seals and applications, and everything
about one seal (certificates, versions, status history) for ``sealflow seal show``.

Decisions: read-only, one short session each, and plain dicts (JSON-ready, times as ISO 8601 UTC)
so that the CLI, the console and tests print them without knowing the models.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stamping.registry.errors import NotFound
from stamping.registry.models import Certificate, Seal, SealApplication, SealVersion, StatusChange, Unit
from stamping.registry.service.base import RegistryBase
from stamping.registry.service.payloads import iso


class Queries(RegistryBase):
    """Export and listings (see the module docstring)."""

    def seal_der(self, es_id: str, version: int | None = None) -> bytes:
        """The SESeal DER (the current one, or of ``version``) for export (.esl)."""
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            if version is None or version == seal.version:
                return seal.seal_der
            row = session.scalars(select(SealVersion).where(SealVersion.es_id == es_id,
                                                            SealVersion.version == version)).first()
            if row is None:
                raise NotFound(f"seal {es_id} has no version {version} (versions 1..{seal.version})")
            return row.seal_der

    def list_seals(self, *, credit_code: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            stmt = select(Seal, Unit).join(Unit, Unit.id == Seal.unit_id).order_by(Seal.id)
            if credit_code:
                stmt = stmt.where(Unit.credit_code == credit_code.strip().upper())
            if status:
                stmt = stmt.where(Seal.status == status)
            return [self._summary(seal, unit) for seal, unit in session.execute(stmt)]

    def list_applications(self, *, status: str | None = None) -> list[dict[str, Any]]:
        with self._sessions() as session:
            stmt = select(SealApplication, Unit).join(Unit, Unit.id == SealApplication.unit_id).order_by(
                SealApplication.id)
            if status:
                stmt = stmt.where(SealApplication.status == status)
            return [{"id": a.id, "unit": u.name, "credit_code": u.credit_code, "kind": a.kind,
                     "official_type": a.official_type, "name": a.name, "applicant": a.applicant, "keeper": a.keeper,
                     "status": a.status, "levels": f"{a.levels_approved}/{a.levels_required}", "es_id": a.es_id}
                    for a, u in session.execute(stmt)]

    @staticmethod
    def _summary(seal: Seal, unit: Unit) -> dict[str, Any]:
        return {"es_id": seal.es_id, "version": seal.version, "name": seal.name, "kind": seal.kind,
                "official_type": seal.official_type, "type_code": seal.type_code, "unit": unit.name,
                "credit_code": unit.credit_code, "keeper": seal.keeper, "status": seal.status,
                "valid_start": iso(seal.valid_start), "valid_end": iso(seal.valid_end), "seal_sm3": seal.seal_sm3,
                "supersedes": seal.supersedes, "superseded_by": seal.superseded_by}

    def show(self, es_id: str) -> dict[str, Any]:
        """Everything about one seal: summary, certificates, versions and status history."""
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            out = self._summary(seal, session.get(Unit, seal.unit_id))
            out["certificates"] = [{"version": c.seal_version, "serial": c.serial, "subject": c.subject,
                                    "not_before": iso(c.not_before), "not_after": iso(c.not_after),
                                    "sm3": c.cert_sm3}
                                   for c in session.scalars(select(Certificate).where(Certificate.es_id == es_id)
                                                            .order_by(Certificate.id))]
            out["history"] = [{"from": h.from_status, "to": h.to_status, "at": iso(h.at), "actor": h.actor,
                               "reason": h.reason}
                              for h in session.scalars(select(StatusChange).where(StatusChange.es_id == es_id)
                                                       .order_by(StatusChange.at, StatusChange.id))]
            return out
