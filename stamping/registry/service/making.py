"""Making a seal (制作), changing it (变更) and renewing it (续期): each issues a key, a signer
certificate and a V4 SESeal, then stores, files and audits them in one transaction.

Decisions:

* **Change makes a new seal with a new esID** and retires the old one (``superseded_by`` /
  ``supersedes`` link them). The esID is inside the signed SESeal and is all a verifier has to look
  a seal up by: after a rename the old seal must answer "retired" and the new one "active" to status
  lookups, which one esID cannot do. Renewal keeps the esID (the rules keep the seal's identity) and
  bumps ``version``; every version's SESeal stays in ``registry_seal_versions``.
* **Each seal version has its own key** (``seal-<esID>-v<n>-<random>`` in the key store, under the
  keeper's PIN), so two racing renewals never overwrite each other's key or certificate; the loser's
  key is simply never referenced.
* **The slow part runs outside the transaction** (:meth:`Making._issue`: key, certificate, SESeal);
  the step then re-reads the rows it depends on and refuses when they moved meanwhile.
* **A new seal row is built one way** (:meth:`Making._add_seal`) for making and for change: the
  row, its first status and its first version and certificate.
* **A seal's validity equals its certificate's** (:class:`ValidityMismatch` otherwise).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from gmpki.gm.sm3 import sm3
from stamping.registry import rules
from stamping.registry.errors import (
    ConcurrentChange,
    InvalidState,
    NotFound,
    PinRefused,
    RenewalWindow,
    ValidityMismatch,
)
from stamping.registry.models import (
    ApplicationStatus,
    Certificate,
    OfficialType,
    Person,
    Role,
    Seal,
    SealApplication,
    SealKind,
    SealVersion,
    Unit,
    aware,
    utc,
)
from stamping.registry.service.base import RegistryBase
from stamping.registry.service.payloads import CertInfo, audit_payload, cert_info, iso
from stamping.verdict.result import SealStatus

if TYPE_CHECKING:
    from stamping.pictures import SealPicture


class Making(RegistryBase):
    """制作, 变更 and 续期 (see the module docstring)."""

    def _picture(self, kind: SealKind, sub: OfficialType | None, name: str, unit_name: str) -> SealPicture:
        from stamping import pictures

        if kind is SealKind.PERSONAL:
            return pictures.demo_personal_seal(name)
        if kind is SealKind.POSITION:
            return pictures.demo_position_seal(name)
        bottom = name[len(unit_name):] if sub is not OfficialType.LEGAL_NAME else ""
        return pictures.demo_official_seal(unit_name, bottom_text=bottom)

    def _issue(self, *, kind: SealKind, es_id: str, version: int, pin: str, unit: Unit, holder: Person | None,
               name: str, type_code: int, start: datetime, end: datetime,
               picture: SealPicture | None, sub: OfficialType | None) -> dict[str, Any]:
        """Key into the key store, signer certificate from the CA, V4 SESeal by the maker: outside any
        transaction (slow, and nothing in the database refers to the key until the step commits)."""
        from stamping.ses.make import SealSpec, make_seal

        if kind is SealKind.PERSONAL:
            key, cert = self.ca.issue_person_signer(holder.name, holder.id_number, start, end)
        else:
            key, cert = self.ca.issue_unit_signer(unit.name, unit.credit_code, start, end)
        info = cert_info(cert)
        if info.not_before != utc(start) or info.not_after != utc(end):
            raise ValidityMismatch(f"the CA issued a certificate valid {info.not_before}..{info.not_after}, not the "
                                   f"seal's {start}..{end}; a seal's validity must equal its certificate's")
        key_id = f"seal-{es_id}-v{version}-{secrets.token_hex(3)}"
        try:
            self.keystore.create(key_id, pin, key)
        except Exception as exc:  # the key store says what is wrong with the PIN (too short…)
            raise PinRefused(f"the key store refused the new key for seal {es_id}: {exc}") from None
        self.keystore.set_certificate(key_id, cert)
        picture = picture or self._picture(kind, sub, name, unit.name)
        spec = SealSpec(es_id=es_id, name=name, seal_type=type_code, signer_certs=[cert], valid_start=start,
                        valid_end=end, picture_png=picture.png, width_mm=picture.width_mm,
                        height_mm=picture.height_mm, create_date=self._clock())
        seal_der = make_seal(spec, self.ca.maker_signer())
        return {"key_id": key_id, "cert": cert, "cert_info": info, "seal_der": seal_der,
                "seal_sm3": sm3(seal_der).hex()}

    def _store_version(self, session: Session, seal: Seal, made: dict[str, Any]) -> None:
        now = self._clock()
        session.add(SealVersion(seal_id=seal.id, es_id=seal.es_id, version=seal.version, seal_der=made["seal_der"],
                                seal_sm3=made["seal_sm3"], key_id=made["key_id"], valid_start=seal.valid_start,
                                valid_end=seal.valid_end, created_at=now))
        info: CertInfo = made["cert_info"]
        session.add(Certificate(seal_id=seal.id, es_id=seal.es_id, seal_version=seal.version, serial=info.serial,
                                subject=info.subject, cert_der=made["cert"], cert_sm3=sm3(made["cert"]).hex(),
                                not_before=info.not_before, not_after=info.not_after, created_at=now))

    def _add_seal(self, session: Session, *, es_id: str, kind: SealKind, sub: OfficialType | None, code: int,
                  name: str, unit: Unit, holder: Person | None, keeper: str, made: dict[str, Any], start: datetime,
                  end: datetime, application_id: int | None, actor: str, reason: str,
                  supersedes: str | None = None) -> Seal:
        """A new active seal at version 1 (making, or the new seal of a change): the row, its first status
        and its first version and certificate."""
        seal = Seal(es_id=es_id, version=1, kind=kind.value, official_type=sub.value if sub else None,
                    type_code=code, name=name, unit_id=unit.id, holder_id=holder.id if holder else None,
                    keeper=keeper, key_id=made["key_id"], signer_cert_der=made["cert"], seal_der=made["seal_der"],
                    seal_sm3=made["seal_sm3"], valid_start=start, valid_end=end, status=SealStatus.ACTIVE.value,
                    supersedes=supersedes, application_id=application_id, created_at=start, updated_at=start)
        session.add(seal)
        session.flush()
        self._history(session, seal, SealStatus.ACTIVE, actor, reason, initial=True)
        self._store_version(session, seal, made)
        return seal

    def make(self, actor: str, application_id: int, pin: str, *, picture: SealPicture | None = None,
             valid_days: int | None = None) -> str:
        """制作: after every level approved, make the seal (key under the keeper's ``pin``, signer
        certificate, V4 SESeal), store it, file it and audit it. Returns the new esID."""
        with self._sessions() as session:
            app = session.get(SealApplication, application_id)
            if app is None:
                raise NotFound(f"no seal application {application_id}; see `sealflow seal list --applications`")
            if app.status != ApplicationStatus.APPROVED:
                raise InvalidState(f"application {app.id} is {app.status}: a seal is made only after all "
                                   f"{app.levels_required} review level(s) approved it")
            unit = session.get(Unit, app.unit_id)
            holder = session.get(Person, app.holder_id) if app.holder_id else None
            if actor != app.keeper:
                self._require(session, unit, actor, (Role.ADMIN,), "make this seal (the keeper or an admin may)")
            kind, sub = rules.seal_kind(app.kind, app.official_type)
            name = rules.check_seal_name(kind, sub, app.name, unit.name, holder.name if holder else None)
            session.expunge_all()
        start = self._clock()
        end = start + timedelta(days=valid_days or self.settings.seal_validity_days)
        es_id = rules.new_es_id(self.settings.seal_region_code, start)
        code = rules.type_code(kind, sub)
        made = self._issue(kind=kind, es_id=es_id, version=1, pin=pin, unit=unit, holder=holder, name=name,
                           type_code=code, start=start, end=end, picture=picture, sub=sub)

        def step(session: Session) -> str:
            current = self._application(session, application_id)
            if current.status != ApplicationStatus.APPROVED:
                raise InvalidState(f"application {current.id} is {current.status} now (made at the same moment?)")
            seal = self._add_seal(session, es_id=es_id, kind=kind, sub=sub, code=code, name=name, unit=unit,
                                  holder=holder, keeper=current.keeper, made=made, start=start, end=end,
                                  application_id=current.id, actor=actor, reason="made")
            current.status, current.es_id = ApplicationStatus.MADE.value, es_id
            self._file(session, "seal.make", seal, unit, holder, reason="")
            self.audit.append(session, actor=actor, action="seal.make", es_id=es_id,
                              payload=audit_payload(seal, application=current.id))
            return es_id

        return self._tx(step)

    def change(self, actor: str, es_id: str, pin: str, *, new_name: str | None = None,
               new_unit_code: str | None = None, reason: str = "", picture: SealPicture | None = None) -> str:
        """变更 (rename, merger): a new seal (new esID) with the new name or owner; the old one is
        retired. Returns the new esID. A unit rename is recorded first with :meth:`rename_unit`."""
        with self._sessions() as session:
            old = self._seal(session, es_id)
            self._check_live(old, "change", allow=(SealStatus.ACTIVE,))
            unit = session.get(Unit, old.unit_id)
            self._require(session, unit, actor, (Role.ADMIN, Role.KEEPER), "change this seal")
            target = self._unit(session, new_unit_code) if new_unit_code else unit
            if target.id != unit.id:
                self._require(session, target, actor, (Role.ADMIN, Role.KEEPER), "move a seal into this unit")
            holder = session.get(Person, old.holder_id) if old.holder_id else None
            kind, sub = rules.seal_kind(old.kind, old.official_type)
            name = rules.check_seal_name(kind, sub, new_name or old.name, target.name, holder.name if holder else None)
            old_keeper = old.keeper
            session.expunge_all()
        start = self._clock()
        end = start + timedelta(days=self.settings.seal_validity_days)
        new_id = rules.new_es_id(self.settings.seal_region_code, start)
        code = rules.type_code(kind, sub)
        made = self._issue(kind=kind, es_id=new_id, version=1, pin=pin, unit=target, holder=holder, name=name,
                           type_code=code, start=start, end=end, picture=picture, sub=sub)

        def step(session: Session) -> str:
            seal = self._seal(session, es_id, lock=True)
            self._check_live(seal, "change", allow=(SealStatus.ACTIVE,))
            new = self._add_seal(session, es_id=new_id, kind=kind, sub=sub, code=code, name=name, unit=target,
                                 holder=holder, keeper=old_keeper, made=made, start=start, end=end,
                                 application_id=seal.application_id, actor=actor,
                                 reason=f"made by change of {seal.es_id}", supersedes=seal.es_id)
            self._history(session, seal, SealStatus.RETIRED, actor, f"changed into {new_id}: {reason}".strip(": "))
            seal.superseded_by, seal.updated_at = new_id, start
            self._file(session, "seal.change", seal, unit, holder, reason=reason, superseded_by=new_id)
            self._file(session, "seal.make", new, target, holder, reason=reason, supersedes=seal.es_id)
            self.audit.append(session, actor=actor, action="seal.change", es_id=seal.es_id, reason=reason,
                              payload={"old": audit_payload(seal), "new": audit_payload(new)})
            return new_id

        return self._tx(step)

    def renew(self, actor: str, es_id: str, pin: str, *, valid_days: int | None = None) -> int:
        """续期: within the 30 days before expiry, a new certificate and SESeal with a new validity,
        same esID. Returns the new version number."""
        now = self._clock()
        with self._sessions() as session:
            seal = self._seal(session, es_id)
            self._check_live(seal, "renew", allow=(SealStatus.ACTIVE,))
            unit = session.get(Unit, seal.unit_id)
            self._require(session, unit, actor, (Role.ADMIN, Role.KEEPER), "renew this seal")
            self._check_window(seal, now)
            holder = session.get(Person, seal.holder_id) if seal.holder_id else None
            kind, sub = rules.seal_kind(seal.kind, seal.official_type)
            version, old_end, name, code = seal.version, aware(seal.valid_end), seal.name, seal.type_code
            session.expunge_all()
        end = old_end + timedelta(days=valid_days or self.settings.seal_validity_days)
        made = self._issue(kind=kind, es_id=es_id, version=version + 1, pin=pin, unit=unit, holder=holder, name=name,
                           type_code=code, start=now, end=end, picture=None, sub=sub)

        def step(session: Session) -> int:
            seal = self._seal(session, es_id, lock=True)
            self._check_live(seal, "renew", allow=(SealStatus.ACTIVE,))
            if seal.version != version:
                raise ConcurrentChange(f"seal {es_id} was renewed or changed at the same moment (now version "
                                       f"{seal.version}); nothing more to do")
            self._check_window(seal, now)
            seal.version, seal.key_id, seal.signer_cert_der = version + 1, made["key_id"], made["cert"]
            seal.seal_der, seal.seal_sm3, seal.valid_start, seal.valid_end = (made["seal_der"], made["seal_sm3"],
                                                                              now, end)
            seal.updated_at = now
            session.flush()
            self._store_version(session, seal, made)
            self._file(session, "seal.renew", seal, unit, holder, reason="")
            self.audit.append(session, actor=actor, action="seal.renew", es_id=es_id,
                              payload=audit_payload(seal, previous_valid_end=iso(old_end)))
            return seal.version

        return self._tx(step)

    @staticmethod
    def _check_window(seal: Seal, now: datetime) -> None:
        end = aware(seal.valid_end)
        opens = end - timedelta(days=rules.RENEWAL_WINDOW_DAYS)
        if now < opens:
            raise RenewalWindow(f"seal {seal.es_id} expires on {end:%Y-%m-%d}; renewal opens on {opens:%Y-%m-%d} "
                                f"(the {rules.RENEWAL_WINDOW_DAYS} days before expiry); try again then")
        if now >= end:
            raise RenewalWindow(f"seal {seal.es_id} expired on {end:%Y-%m-%d}; an expired seal cannot be renewed, "
                                "apply for a new one")
