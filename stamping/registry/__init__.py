"""The seal registry (印章管理): units, persons, applications, level-by-level reviews, seals and
their lifecycle, status lookups for 验章, signers and use records."""

from stamping.registry.errors import (
    CANotConfigured,
    ConcurrentChange,
    InvalidInput,
    InvalidState,
    NameMismatch,
    NotAuthorised,
    NotFound,
    PinRefused,
    RegistryError,
    RenewalWindow,
    ReviewRefused,
    SealNotActive,
    SealRevoked,
    ValidityMismatch,
)
from stamping.registry.models import OfficialType, Role, SealKind
from stamping.registry.service import SealRegistry

__all__ = [
    "CANotConfigured", "ConcurrentChange", "InvalidInput", "InvalidState", "NameMismatch", "NotAuthorised", "NotFound",
    "OfficialType", "PinRefused", "RegistryError", "RenewalWindow", "ReviewRefused", "Role", "SealKind",
    "SealNotActive", "SealRegistry", "SealRevoked", "ValidityMismatch",
]
