"""The result of 验章, one shape for OFD and PDF, the same that ``sealflow verify --json`` prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum


class SealStatus(StrEnum):
    """A seal's status in the registry at a moment in time."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RETIRED = "retired"


# Looks up a seal by es_id at a time; None when the seal is not in our registry.
SealStatusLookup = Callable[[str, datetime], SealStatus | None]


@dataclass
class Check:
    """One check of a signature: its name, whether it passed, and why."""

    name: str
    ok: bool
    reason: str = ""
    # "integrity" checks decide `intact`; "trust" checks decide `trusted`; "status" the rest.
    kind: str = "integrity"


@dataclass
class SignatureResult:
    signer: str = ""
    seal_name: str = ""
    es_id: str = ""
    signed_at: str | None = None
    checks: list[Check] = field(default_factory=list)
    seal_picture_png: bytes | None = field(default=None, repr=False)
    location: str = ""  # e.g. "/Doc_0/Signs/Sign_0/Signature.xml" or the PDF field name

    def add(self, name: str, ok: bool, reason: str = "", kind: str = "integrity") -> bool:
        self.checks.append(Check(name, ok, reason, kind))
        return ok

    @property
    def intact(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "integrity") and any(
            c.kind == "integrity" for c in self.checks
        )

    @property
    def trusted(self) -> bool:
        return all(c.ok for c in self.checks if c.kind == "trust") and any(
            c.kind == "trust" for c in self.checks
        )

    @property
    def valid(self) -> bool:
        return self.intact and self.trusted and all(c.ok for c in self.checks)

    def to_json(self) -> dict:
        return {
            "signer": self.signer,
            "seal_name": self.seal_name,
            "es_id": self.es_id,
            "signed_at": self.signed_at,
            "location": self.location,
            "intact": self.intact,
            "trusted": self.trusted,
            "valid": self.valid,
            "checks": [{k: v for k, v in asdict(c).items()} for c in self.checks],
        }


@dataclass
class DocumentResult:
    path: str
    format: str  # "ofd" | "pdf" | "unknown"
    signatures: list[SignatureResult] = field(default_factory=list)
    error: str | None = None

    @property
    def intact(self) -> bool:
        return self.error is None and bool(self.signatures) and all(s.intact for s in self.signatures)

    @property
    def trusted(self) -> bool:
        return self.error is None and bool(self.signatures) and all(s.trusted for s in self.signatures)

    @property
    def valid(self) -> bool:
        return self.error is None and bool(self.signatures) and all(s.valid for s in self.signatures)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "intact": self.intact,
            "trusted": self.trusted,
            "valid": self.valid,
            "signatures": [s.to_json() for s in self.signatures],
            "error": self.error,
        }
