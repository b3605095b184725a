"""The faults the platform simulator commits on purpose, for tests and demos: errors, latency,
outages, malformed or tampered receipts, connections dropped after a commit.

Decision: one plain dataclass whose fields are at once the command-line flags (``--error-rate`` …)
and the body of ``POST /admin/faults``, so the two can never disagree; :meth:`Faults.update`
checks a change before any of it is applied per field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass
class Faults:
    """What the simulator does wrong on purpose. Rates are probabilities per request."""

    error_rate: float = 0.0  # answer 503
    latency_ms: int = 0  # sleep before answering
    outage: bool = False  # answer 503 to everything but /admin
    outage_until: float = 0.0  # epoch seconds; an outage window
    malformed_rate: float = 0.0  # answer 200 with a body that is not a receipt
    drop_after_commit_rate: float = 0.0  # store, then close the connection without a reply
    tamper_rate: float = 0.0  # alter a receipt after signing it
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            if name == "outage_until" and isinstance(value, str):
                value = datetime.fromisoformat(value).timestamp()
            if name in {"error_rate", "malformed_rate", "drop_after_commit_rate", "tamper_rate"}:
                value = float(value)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{name} must be within 0..1")
            elif name == "latency_ms":
                value = max(0, int(value))
            elif name == "outage":
                value = bool(value)
            elif name == "outage_until":
                value = float(value)
            elif name == "seed" and value is not None:
                value = int(value)
            setattr(self, name, value)

    def in_outage(self) -> bool:
        return self.outage or time.time() < self.outage_until
