"""The state an archiving run keeps in the parent process: one :class:`Work` per record (its
placement, check report, 档号, built package, outcome) and one :class:`RunState` per run.

Decision: plain mutable dataclasses shared by the run's steps (numbering, storing, publishing), so
each step reads and fills in what it owns and a record that fails anywhere carries its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime

from archive.checks.report import CheckReport
from archive.models import ArchiveRecord
from archive.service.jobs import Built
from archive.service.placement import Placement
from archive.service.records import ArchiveInput, ArchiveResult, RecordOutcome


@dataclass
class Work:
    """One record on its way through a run."""

    inp: ArchiveInput
    placement: Placement = field(default_factory=Placement)
    size: int = 0
    actual_sm3: str = ""
    stamp: tuple[int, int] = (0, 0)  # (size, mtime_ns) when phase one hashed the file
    verification: dict | None = None
    report: CheckReport | None = None
    retention: str = ""
    code: str = ""
    row_id: int = 0
    archived_at: datetime | None = None  # the reserved row's time: the package's and the index's
    package: Built | None = None
    version: str = ""
    outcome: RecordOutcome | None = None

    @property
    def licence_id(self) -> str:
        return self.inp.record.get("licence_id", "")

    @property
    def supersedes(self) -> str:
        resumed = self.placement.resume
        return (resumed.supersedes or "") if resumed is not None else self.placement.supersedes

    def fail(self, status: str, reasons: list[str]) -> None:
        self.outcome = RecordOutcome(self.licence_id, self.inp.file_name, status, self.code, reasons=reasons)


@dataclass
class RunState:
    """One run between :meth:`Archiver.start` and :meth:`Archiver.complete`."""

    result: ArchiveResult
    batch_id: str
    now: datetime
    started: float
    say: Callable[[str], None]
    existing: dict[str, list[ArchiveRecord]] = field(default_factory=dict)
    works: list[Work] = field(default_factory=list)
    futures: dict[Future, Work] = field(default_factory=dict)
    cpu: Executor | None = None  # checks
    build: Executor | None = None


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive time (as SQLite gives it back) is taken to be UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
