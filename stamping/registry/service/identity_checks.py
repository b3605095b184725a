"""身份核验 for the registry's steps: before applying for a seal and before using one, the unit and
every person involved are checked against the identity registers (the data-sharing platform's
identity service; on the embedded stack, its simulator).

Decisions:

* **Production refuses without a register** (:class:`IdentityNotConfigured`); only the embedded
  stack, whose entry points point ``identity_url`` at their own simulator, may run with none.
* **A register that cannot be asked refuses the step**, like a mismatch: nobody is let through
  unchecked because the register was down.
* **Every refusal is audited in its own transaction** (``identity.mismatch``, with the step and the
  reason), so the refusal is recorded although the step itself rolls back; only the number's
  first six characters (the region) are written, never a whole 公民身份号码.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from stamping.registry.errors import IdentityMismatch, IdentityNotConfigured, IdentityRegisterUnavailable
from stamping.registry.models import Person, Unit
from stamping.registry.service.base import RegistryBase

if TYPE_CHECKING:
    from stamping.registry.identity_source import IdentitySource


class IdentityChecks(RegistryBase):
    """The identity source and the check every apply and use runs (see the module docstring)."""

    @property
    def identity(self) -> IdentitySource | None:
        """The identity registers (身份核验): the one given, else ``settings.identity_url``; None when
        neither — then the embedded stack checks nothing (its entry points set ``identity_url`` to the
        stack's simulator, see ``sealflow.root.with_stack_identity``) and production refuses."""
        if self._identity is None and self.settings.identity_url:
            from stamping.registry.identity_source import HttpIdentitySource

            self._identity = HttpIdentitySource(self.settings.identity_url)
        return self._identity

    def _check_identities(self, actor: str, action: str, es_id: str | None, unit: Unit,
                          persons: Iterable[Person]) -> None:
        """Ask the registers about the unit and each person; a mismatch (or a register that cannot be
        asked, or none configured in production) refuses the step with the reason and is audited in
        its own transaction."""
        source = self.identity
        if source is None:
            if self.settings.embedded:
                return
            reason = ("no identity register is configured and this install is not the embedded stack "
                      "(SEALFLOW_S3_ENDPOINT is set): set SEALFLOW_IDENTITY_URL to the data-sharing platform's "
                      "identity service")
            self._audit_identity_refusal(actor, action, es_id, "register", "", "", reason)
            raise IdentityNotConfigured(f"{action} refused: {reason}")
        from stamping.registry.identity_source import IdentityUnavailable

        asks = [("unit", unit.name, unit.credit_code, source.check_unit)]
        asks += [("person", p.name, p.id_number, source.check_person) for p in persons]
        for kind, name, number, ask in asks:
            try:
                verdict = ask(name, number)
                reason = verdict.reason
            except IdentityUnavailable as exc:
                where = " (on the embedded stack: `sealflow stack up` starts it)" if self.settings.embedded else ""
                verdict, reason = None, f"{exc}; try again when the register answers{where}"
            if verdict is not None and verdict.match:
                continue
            self._audit_identity_refusal(actor, action, es_id, kind, name, number, reason)
            refusal = IdentityMismatch if verdict is not None else IdentityRegisterUnavailable
            raise refusal(f"{action} refused: the identity register does not confirm the {kind} "
                          f"{name} ({number[:6]}…): {reason}")

    def _audit_identity_refusal(self, actor: str, action: str, es_id: str | None, kind: str, name: str,
                                number: str, reason: str) -> None:
        """``identity.mismatch`` with the step and the reason; only the number's first six characters
        (the region), never the whole 公民身份号码."""
        def record(session: Session) -> None:
            self.audit.append(session, actor=actor, action="identity.mismatch", es_id=es_id, reason=reason,
                              payload={"step": action, "kind": kind, "name": name, "number_prefix": number[:6]})

        self._tx(record)
