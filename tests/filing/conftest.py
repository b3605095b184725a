"""Fixtures of the filing tests: a real simulator process on a free port, a DemoCA-issued sending
system, an outbox database, and valid record payloads."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FAR_FUTURE = timedelta(days=3650)


class Simulator:
    """A running ``python -m filing.simulator`` and handles to its admin endpoints and its store."""

    def __init__(self, state: Path, *extra: str) -> None:
        state.mkdir(parents=True, exist_ok=True)
        if "--trust" not in extra:  # protocol tests sign with certificates of their own making
            extra = (*extra, "--accept-any-sender")
        self.db = state / "platform.db"
        self.log = state / "simulator.log"  # a file, not a pipe: a full pipe would stall the simulator
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "filing.simulator", "--host", "127.0.0.1", "--port", "0", "--db", str(self.db),
                 *extra],
                cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
            )
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r} {self.log.read_text()}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        self.http = httpx.Client(base_url=self.url, timeout=10)
        from filing.protocol import pem_to_der

        self.cert_der = pem_to_der(self.http.get("/v1/platform-certificate").content)

    def faults(self, **changes: Any) -> dict[str, Any]:
        response = self.http.post("/admin/faults", content=json.dumps(changes))
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.faults(error_rate=0, latency_ms=0, outage=False, outage_until=0, malformed_rate=0,
                    drop_after_commit_rate=0, tamper_rate=0, seed=None)

    def stored(self, record_ids: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """What the platform holds (read straight from its SQLite store), by record id."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute(
                "SELECT seq, record_id, subject, subject_seq, record_sm3, receipt FROM filings"
            ).fetchall()
        out = {}
        for seq, record_id, subject, subject_seq, digest, receipt in rows:
            if record_ids is None or record_id in record_ids:
                out[record_id] = {"seq": seq, "subject": subject, "subject_seq": subject_seq, "record_sm3": digest,
                                  "receipt": bytes(receipt)}
        return out

    def count(self) -> int:
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT COUNT(*) FROM filings").fetchone()[0]

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def demo_ca(tmp_path_factory):
    from gmpki.pki.ca import DemoCA

    return DemoCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def system_signer(demo_ca):
    from gmpki.keys.signer import SoftwareSigner

    key, cert = demo_ca.issue_unit_signer("SealFlow filing system", "91450000000000000X")
    return SoftwareSigner(key, cert)


@pytest.fixture(scope="module")
def simulator(tmp_path_factory) -> Iterator[Simulator]:
    sim = Simulator(tmp_path_factory.mktemp("platform"))
    yield sim
    sim.stop()


@pytest.fixture
def own_simulator(tmp_path) -> Iterator[Simulator]:
    """A fresh platform for one test: its listing holds only that test's records."""
    sim = Simulator(tmp_path / "platform")
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator: Simulator) -> Iterator[Simulator]:
    simulator.reset()
    yield simulator
    simulator.reset()


@pytest.fixture
def client(sim, system_signer):
    from filing.client import PlatformClient

    with PlatformClient(sim.url, system_signer, sim.cert_der, timeout=5) as c:
        yield c


@pytest.fixture
def sessions(db_engine):
    from kernel.db import session_factory

    return session_factory(db_engine)


def _seal_payload(es_id: str, **changes: Any) -> dict[str, Any]:
    """A valid seal-event payload (fields per filing.protocol.SEAL_EVENT_FIELDS)."""
    payload = {
        "es_id": es_id,
        "seal_name": "南宁市行政审批局电子公章",
        "seal_kind": "official",
        "seal_type": 1,
        "owner_name": "南宁市行政审批局",
        "owner_id": "11450100MB1234567X",
        "maker_name": "广西壮族自治区电子印章制作中心",
        "maker_cert": "MIIBdGVzdA==",
        "signer_certs": [{"serial": "0a1b", "sm3": "ab" * 32}],
        "valid_start": "2025-01-01T00:00:00+08:00",
        "valid_end": "2027-01-01T00:00:00+08:00",
        "event_time": datetime.now(UTC).isoformat(),
        "seal_sm3": "cd" * 32,
    }
    payload.update(changes)
    return payload


def _archive_payload(batch_id: str) -> dict[str, Any]:
    return {"batch_id": batch_id, "documents": 120, "bytes": 9_876_543, "manifest_sm3": "ef" * 32,
            "registered_at": datetime.now(UTC).isoformat()}


@pytest.fixture
def seal_payload():
    """``seal_payload(es_id, **changes)`` — a valid seal-event payload."""
    return _seal_payload


@pytest.fixture
def archive_payload():
    return _archive_payload
