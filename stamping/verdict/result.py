"""The result of 验章, one shape for OFD and PDF, the same that ``sealflow verify --json`` prints.

One verdict with three levels (``Verdict``):

- ``valid`` — every check passes and the signed content is everything a reader displays;
- ``valid_with_warnings`` — the signatures are intact and trusted, but something a reader draws is not
  covered (a template or resource outside the References), or the file has later updates that only add
  further signatures / DSS data, or it carries active content. Warnings are checks of kind ``warning``
  (per signature) or entries of ``DocumentResult.warnings`` (per file);
- ``not_valid`` — anything else.

``valid`` stays the strict boolean (``verdict == "valid"``): SealFlow's own batches accept only that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum


class Verdict(StrEnum):
    """The one verdict of 验章 (有效 / 有效但有警告 / 无效)."""

    VALID = "valid"
    VALID_WITH_WARNINGS = "valid_with_warnings"
    NOT_VALID = "not_valid"


class SealStatus(StrEnum):
    """A seal's status in the registry at a moment in time."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    RETIRED = "retired"


# Looks up a seal by es_id at a time; None when the seal is not in our registry.
SealStatusLookup = Callable[[str, datetime], SealStatus | None]
# Whether a signature value (by es_id) was recorded as a use of that seal in the audit log;
# None when the seal is not in our registry.
SignatureUseLookup = Callable[[str, bytes], bool | None]


@dataclass
class Check:
    """One check of a signature: its name, whether it passed, and why."""

    name: str
    ok: bool
    reason: str = ""
    # "integrity" checks decide `intact`; "trust" checks decide `trusted`; "status" the rest;
    # a failed "warning" check lowers the verdict to valid_with_warnings, never below.
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
    signature_sm3: str = ""  # SM3 (hex) of the signature value: how the audit log names a use

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

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.checks if c.kind == "warning" and not c.ok]

    @property
    def verdict(self) -> Verdict:
        if self.valid:
            return Verdict.VALID
        if self.intact and self.trusted and all(c.ok for c in self.checks if c.kind != "warning"):
            return Verdict.VALID_WITH_WARNINGS
        return Verdict.NOT_VALID

    def to_json(self) -> dict:
        return {
            "signer": self.signer,
            "seal_name": self.seal_name,
            "es_id": self.es_id,
            "signed_at": self.signed_at,
            "location": self.location,
            "signature_sm3": self.signature_sm3,
            "intact": self.intact,
            "trusted": self.trusted,
            "valid": self.valid,
            "verdict": str(self.verdict),
            "warnings": self.warnings,
            "checks": [{k: v for k, v in asdict(c).items()} for c in self.checks],
        }


@dataclass
class DocumentResult:
    path: str
    format: str  # "ofd" | "pdf" | "unknown"
    signatures: list[SignatureResult] = field(default_factory=list)
    error: str | None = None
    # File-level warnings (later updates that only add signatures, active content, ...).
    warnings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return self.error is None and bool(self.signatures) and all(s.intact for s in self.signatures)

    @property
    def trusted(self) -> bool:
        return self.error is None and bool(self.signatures) and all(s.trusted for s in self.signatures)

    @property
    def valid(self) -> bool:
        return (self.error is None and bool(self.signatures) and not self.warnings
                and all(s.valid for s in self.signatures))

    @property
    def verdict(self) -> Verdict:
        if self.valid:
            return Verdict.VALID
        if self.error is None and self.signatures and all(s.verdict != Verdict.NOT_VALID for s in self.signatures):
            return Verdict.VALID_WITH_WARNINGS
        return Verdict.NOT_VALID

    @property
    def all_warnings(self) -> list[str]:
        return [*self.warnings, *(w for s in self.signatures for w in s.warnings)]

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "intact": self.intact,
            "trusted": self.trusted,
            "valid": self.valid,
            "verdict": str(self.verdict),
            "warnings": self.all_warnings,
            "signatures": [s.to_json() for s in self.signatures],
            "error": self.error,
        }
