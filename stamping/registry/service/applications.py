"""Applying for a seal (申领) and reviewing the application level by level (逐级审核).

Decisions:

* **身份核验 before the step's transaction**: the unit, the holder and the applicant are checked
  against the identity registers first (a slow HTTP call, never inside a transaction); the step
  then reads everything again and checks the roles once more, so what it writes is what it saw.
* **Levels in order, one reviewer per level**: level ``n`` is decided only after level ``n-1``
  approved; nobody reviews their own application or two levels of one. Reviews are unique per
  (application, level) in the database, so two reviewers racing on one level cannot both win.
* **A personal seal is kept by its holder**: the keeper named must be a keeper of the unit and,
  for a personal seal, linked to the holder.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from stamping.registry import rules
from stamping.registry.errors import InvalidInput, InvalidState, ReviewRefused
from stamping.registry.models import ApplicationStatus, Person, Review, Role, SealApplication, SealKind, Unit
from stamping.registry.service.identity_checks import IdentityChecks


class Applications(IdentityChecks):
    """申领 and 逐级审核 (see the module docstring)."""

    def apply(self, actor: str, credit_code: str, kind: str, name: str, *, official_type: str | None = None,
              holder_id_number: str | None = None, keeper: str | None = None, reason: str = "") -> int:
        """申领: ask for a new seal; returns the application id. Reviews follow (:meth:`review`)."""
        k, sub = rules.seal_kind(kind, official_type)
        with self._sessions() as session:  # 身份核验 of the unit, the holder and the applicant first
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.APPLICANT, Role.ADMIN), "apply for seals")
            people = [p for p in (self._person(session, holder_id_number) if holder_id_number else None,
                                  self._user_person(session, unit, actor)) if p is not None]
            session.expunge_all()
        self._check_identities(actor, "seal.apply", None, unit, people)

        def step(session: Session) -> int:
            unit = self._unit(session, credit_code)
            self._require(session, unit, actor, (Role.APPLICANT, Role.ADMIN), "apply for seals")
            holder = self._person(session, holder_id_number) if holder_id_number else None
            checked = rules.check_seal_name(k, sub, name, unit.name, holder.name if holder else None)
            keeper_name = keeper or actor
            self._check_keeper(session, unit, keeper_name, k, holder)
            app = SealApplication(unit_id=unit.id, applicant=actor, kind=k.value,
                                  official_type=sub.value if sub else None, name=checked,
                                  holder_id=holder.id if holder else None, keeper=keeper_name,
                                  levels_required=max(1, self.settings.review_levels), levels_approved=0,
                                  status=ApplicationStatus.SUBMITTED.value, reason=reason, created_at=self._clock())
            session.add(app)
            session.flush()
            self.audit.append(session, actor=actor, action="seal.apply", reason=reason,
                              payload={"application": app.id, "unit": unit.credit_code, "kind": k.value,
                                       "official_type": app.official_type, "name": checked, "keeper": keeper_name})
            return app.id

        return self._tx(step)

    def _check_keeper(self, session: Session, unit: Unit, keeper: str, kind: SealKind, holder: Person | None) -> None:
        rows = [r for r in self._roles(session, unit.id, keeper) if r.role == Role.KEEPER]
        if not rows:
            raise InvalidInput(f"{keeper!r} is not a keeper (保管人) of {unit.name}; name a user with the keeper role")
        if kind is SealKind.PERSONAL and holder is not None and all(r.person_id != holder.id for r in rows):
            raise InvalidInput(f"a personal seal is kept by its holder: {keeper!r} is not linked to {holder.name}")

    def review(self, actor: str, application_id: int, level: int, approve: bool, comment: str = "") -> str:
        """逐级审核: decide ``level`` of an application; returns the application's new status."""

        def step(session: Session) -> str:
            app = self._application(session, application_id)
            unit = session.get(Unit, app.unit_id)
            if app.status != ApplicationStatus.SUBMITTED:
                raise InvalidState(f"application {app.id} is {app.status}; only submitted applications are reviewed")
            if level != app.levels_approved + 1:
                raise ReviewRefused(f"application {app.id} waits for level {app.levels_approved + 1}, not level "
                                    f"{level}; levels are reviewed in order")
            self._require(session, unit, actor, (Role.REVIEWER,), f"review level {level}", level=level)
            if actor == app.applicant:
                raise ReviewRefused(f"{actor!r} applied for this seal and may not review it; another reviewer must")
            earlier = session.scalars(select(Review.reviewer).where(Review.application_id == app.id)).all()
            if actor in earlier:
                raise ReviewRefused(f"{actor!r} already reviewed an earlier level of application {app.id}; each "
                                    "level needs a different reviewer")
            session.add(Review(application_id=app.id, level=level, reviewer=actor, approved=approve,
                               comment=comment, at=self._clock()))
            if not approve:
                app.status = ApplicationStatus.REJECTED.value
            else:
                app.levels_approved = level
                if level >= app.levels_required:
                    app.status = ApplicationStatus.APPROVED.value
            session.flush()
            self.audit.append(session, actor=actor, action="seal.review", reason=comment,
                              payload={"application": app.id, "level": level, "approved": approve,
                                       "status": app.status})
            return app.status

        return self._tx(step)
