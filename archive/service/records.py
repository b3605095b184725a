"""What an archiving run takes and gives back, and where it stores things.

:class:`ArchiveInput` is one stamped certificate as the pipeline hands it over (the SM3, size and
verification result recorded at stamping are carried, not recomputed); :class:`RecordOutcome` and
:class:`ArchiveResult` say what became of each one — never a record skipped in silence.

Decision: the object keys (:func:`package_key`, :func:`run_prefix`, :data:`STAGING_PREFIX`) are
named here, once, because fixity checks, retrieval and the tests find stored objects by them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from archive.package import package_slug


@dataclass
class ArchiveInput:
    """One stamped certificate to archive."""

    path: str  # the sealed document on local (or mounted) storage
    record: dict[str, str]  # manifest fields: licence_id, licence_number, holder_name, retention, ...
    format: str = ""  # "ofd" | "pdf"; default from the record or the file suffix
    sm3: str = ""  # hex SM3 of the sealed document, recorded at stamping (carried, not recomputed)
    size: int | None = None  # bytes recorded at stamping (the registration form's count)
    verification: dict | None = None  # DocumentResult.to_json() from the pipeline's 验章
    name: str = ""  # file name inside the package; default: the path's name

    @property
    def file_name(self) -> str:
        return self.name or Path(self.path).name

    @property
    def doc_format(self) -> str:
        return (self.format or self.record.get("format") or Path(self.path).suffix.lstrip(".")).lower()


@dataclass
class RecordOutcome:
    licence_id: str
    file: str
    status: str  # archived | already_archived | rejected | failed
    archival_code: str = ""
    object_key: str = ""
    reasons: list[str] = field(default_factory=list)
    supersedes: str = ""  # a 换发/补发: the 档号 of the licence's record this one supersedes


@dataclass
class ArchiveResult:
    run_id: str
    batch_id: str
    outcomes: list[RecordOutcome] = field(default_factory=list)
    manifest_key: str = ""
    registration_key: str = ""
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def archived(self) -> int:
        return self.count("archived")

    def to_json(self) -> dict:
        return {
            "run_id": self.run_id, "batch_id": self.batch_id, "manifest_key": self.manifest_key,
            "registration_key": self.registration_key, "wall_s": round(self.wall_s, 3),
            "counts": dict(Counter(o.status for o in self.outcomes)),
            "not_archived": [asdict(o) for o in self.outcomes if o.status in ("rejected", "failed")],
            "superseding": [{"licence_id": o.licence_id, "archival_code": o.archival_code, "supersedes": o.supersedes}
                            for o in self.outcomes if o.status == "archived" and o.supersedes],
        }


def package_key(archival_code: str) -> str:
    return f"packages/{package_slug(archival_code)}.tar"


def run_prefix(batch_id: str, run_id: str) -> str:
    return f"runs/{batch_id}/{run_id}/" if run_id else f"runs/{batch_id}/"


STAGING_PREFIX = "staging/"  # unlocked copies of a run folder's files while it is being published
