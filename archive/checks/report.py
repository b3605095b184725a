"""Running the catalogue over a record: one entry per item, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

from archive.checks.catalogue import CATALOGUE, CatalogueItem, items_for
from archive.checks.items import CHECKS, FAIL, NOT_PERFORMED, RecordContext

# A fail in these properties keeps a record out of the archive (DA/T 70: not accepted).
BLOCKING = ("真实性", "完整性", "可用性", "安全性")


@dataclass
class CheckReport:
    stage: str
    results: list[dict[str, str]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, str]]:
        return [r for r in self.results if r["status"] == FAIL and r["property"] in BLOCKING]

    @property
    def passed(self) -> bool:
        return not self.failures

    def reasons(self) -> list[str]:
        return [f"{r['code']} {r['item']}: {r['reason']}" for r in self.failures]

    def to_json(self) -> dict:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return {"stage": self.stage, "standard": "DA/T 70-2018", "passed": self.passed,
                "counts": counts, "items": self.results}


def run_checks(ctx: RecordContext, stage: str = "GD", only: set[str] | None = None,
               catalogue: tuple[CatalogueItem, ...] = CATALOGUE) -> CheckReport:
    """Evaluate every catalogue item of ``stage`` (or the ``only`` check names) on one record."""
    report = CheckReport(stage)
    for item in items_for(stage, catalogue):
        if only is not None and item.check not in only:
            continue
        fn = CHECKS.get(item.check)
        if fn is None:
            status, reason = NOT_PERFORMED, f"no check function {item.check!r}"
        else:
            try:
                status, reason = fn(ctx)
            except Exception as exc:  # a checker bug must be reported, not turned into a pass
                status, reason = FAIL, f"check raised {type(exc).__name__}: {exc}"
        report.results.append({**item.to_dict(), "status": status, "reason": reason})
    return report


def merge(first: CheckReport, second: CheckReport) -> CheckReport:
    """Results of ``second`` replace those with the same code in ``first``; catalogue order kept."""
    by_code = {r["code"]: r for r in second.results}
    return CheckReport(first.stage, [by_code.get(r["code"], r) for r in first.results])
