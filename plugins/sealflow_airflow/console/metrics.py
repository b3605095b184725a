"""SealFlow's metrics in the Prometheus text format (0.0.4), computed from the database on each scrape.

Decisions:
- Gauges over the database rather than in-process counters: the api-server that serves them is not the
  process that stamps, and the database already holds every fact (documents by state, outbox states,
  archive sizes, seals), so a scrape after a restart is still right.
- Label values are escaped as the format requires (backslash, quote, newline); names are fixed here.
- Fixity figures are those of the last pass the archive recorded (``archive_fixity_run``): a problem
  stays visible until a clean pass, which is what an alert rule on them needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from sealflow_airflow.console import queries


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: dict[str, Any]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _number(value: float) -> str:
    """Integers as integers; floats in full (``:g`` would round a Unix timestamp to six digits)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, Any], float]]) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


STATE_METRIC = {"verified": "sealflow_documents_verified", "stamped": "sealflow_documents_sealed",
                "quarantined": "sealflow_documents_quarantined", "failed": "sealflow_documents_failed"}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def render_metrics(session: Session, keys: list[dict[str, Any]]) -> str:
    w = _Writer()
    counts = queries.document_counts(session)
    per: dict[str, list[tuple[dict[str, Any], float]]] = {name: [] for name in STATE_METRIC.values()}
    sealed: dict[tuple[str, str], int] = {}
    for batch_id, es_id, state, n in counts:
        if state in ("stamped", "verified"):  # a verified document was sealed first
            sealed[(batch_id, es_id)] = sealed.get((batch_id, es_id), 0) + n
        if state in STATE_METRIC and state != "stamped":
            per[STATE_METRIC[state]].append(({"batch": batch_id, "seal": es_id}, n))
    per["sealflow_documents_sealed"] = [({"batch": b, "seal": s}, n) for (b, s), n in sealed.items()]
    for state, name in STATE_METRIC.items():
        w.family(name, "gauge", f"Documents of each batch and seal that are {state}.", per[name])
    w.family("sealflow_verification_failures", "gauge", "Failed 验章 checks of failed documents, by check.",
             [({"reason": r}, n) for r, n in sorted(queries.verification_failures(session).items())])
    box = queries.outbox(session)
    w.family("sealflow_filing_outbox", "gauge", "Filing outbox records by state.",
             [({"state": s}, n) for s, n in sorted(box["counts"].items())])
    w.family("sealflow_filing_backlog", "gauge", "Filing records waiting to be sent.", [({}, box["backlog"])])
    w.family("sealflow_filing_dead_letters", "gauge", "Filing records given up (dead letters).",
             [({}, box["counts"].get("dead", 0))])
    totals = queries.archive_totals(session)
    w.family("sealflow_archive_records", "gauge", "Archived records (packages).", [({}, totals["records"])])
    w.family("sealflow_archive_bytes", "gauge", "Bytes of archived packages.", [({}, totals["bytes"])])
    fixity = queries.last_fixity(session)
    w.family("sealflow_fixity_problems", "gauge", "Problems the last fixity pass found, by kind (none: no pass yet).",
             [({"problem": k}, n) for k, n in sorted((fixity.problem_counts if fixity else {}).items())])
    w.family("sealflow_fixity_records_checked", "gauge", "Archive records the last fixity pass read back.",
             [({}, fixity.records_checked)] if fixity else [])
    w.family("sealflow_fixity_last_run_timestamp_seconds", "gauge", "When the last fixity pass ran (Unix time).",
             [({}, _aware(fixity.checked_at).timestamp())] if fixity else [])
    w.family("sealflow_batches", "gauge", "Batches by status (done, refused, incomplete, not_approved, ...).",
             [({"status": s}, n) for s, n in sorted(queries.batches_by_status(session).items())])
    w.family("sealflow_seals", "gauge", "Seals by status.",
             [({"status": s}, n) for s, n in sorted(queries.seals_by_status(session).items())])
    w.family("sealflow_seal_days_to_expiry", "gauge", "Days until each active seal expires.",
             [({"seal": es_id, "name": name}, days)
              for es_id, (name, days) in sorted(queries.days_to_expiry(session).items())])
    w.family("sealflow_key_wrong_pins", "gauge", "Consecutive wrong PINs per key.",
             [({"key": k["key_id"]}, k["wrong_pins"]) for k in keys])
    w.family("sealflow_key_locked", "gauge", "1 when the key is locked after wrong PINs.",
             [({"key": k["key_id"]}, int(k["locked"])) for k in keys])
    return w.text()
