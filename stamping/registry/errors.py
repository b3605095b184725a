"""Typed refusals of the seal registry: each message says what is wrong and what to do."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry refusal."""


class NotFound(RegistryError):
    """No such unit, person, user, application or seal."""


class InvalidInput(RegistryError):
    """A malformed value: credit code, ID number, kind, name, role…"""


class NotAuthorised(RegistryError):
    """The actor is not an authorised user (with the needed role) of the owning unit."""


class NameMismatch(RegistryError):
    """The seal name does not match the ID-card name or the unit's legal name."""


class InvalidState(RegistryError):
    """The application or seal is not in a state that allows this step."""


class SealRevoked(InvalidState):
    """Revocation (注销) is final: nothing can be done with a revoked seal."""


class SealNotActive(InvalidState):
    """The seal is suspended, expired, retired or revoked, so it cannot be used or changed."""


class ReviewRefused(RegistryError):
    """A review out of order, by the applicant, or by a reviewer of an earlier level."""


class RenewalWindow(RegistryError):
    """Renewal (续期) is only possible in the 30 days before the seal expires."""


class ValidityMismatch(RegistryError):
    """The seal's validity differs from its signer certificate's."""


class PinRefused(RegistryError):
    """The key store refused the PIN (wrong PIN, or the key is locked)."""


class ConcurrentChange(RegistryError):
    """Someone else changed the same application or seal at the same moment; this change lost."""


class NotAuthenticated(RegistryError):
    """Who is at the keyboard is not known: the OS login is not mapped to a user, or the credential is wrong."""


class IdentityMismatch(RegistryError):
    """The identity register does not confirm a person's or unit's name and number (or cannot be asked)."""


class IdentityNotConfigured(IdentityMismatch):
    """No identity register is configured outside the embedded stack: nothing can be checked, so the step is refused."""


class CANotConfigured(RegistryError):
    """No CA to certify seals outside the embedded stack (``kernel.keys.CANotInstalled``): set one up first."""


class IdentityRegisterUnavailable(IdentityMismatch):
    """The identity register could not be asked (unreachable, an unreadable answer): the step is refused now,
    and the same step may pass once the register answers — a failing machine, not a disagreement."""
