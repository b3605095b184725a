"""The platform simulator's durable store of filings and the receipts it signed.

Decisions: one SQLite file (WAL, ``synchronous=FULL``) with one writer at a time; a batch is stored
in one transaction (all or none); a record id filed again with the same body gets its original
receipt byte for byte, with another body a 409; :meth:`PlatformStore.stats` counts anything
filed twice, which the delivery tests assert is nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filing import protocol as p

PLATFORM_NAME = "SealFlow national platform simulator"
PLATFORM_CREDIT_CODE = "11100000000000000X"


class PlatformStore:
    """The simulator's durable store: one SQLite file, one writer at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS filings (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                record_id TEXT NOT NULL UNIQUE,
                record_sm3 TEXT NOT NULL,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                subject_seq INTEGER NOT NULL,
                record TEXT NOT NULL,
                sender_cert_sm3 TEXT NOT NULL,
                receipt_id TEXT NOT NULL,
                received_at TEXT NOT NULL,
                receipt BLOB NOT NULL
            )"""
        )
        self.lock = threading.Lock()

    def store(
        self, items: list[tuple[dict[str, Any], bytes, str]], sender_cert_sm3: str, signer: Any
    ) -> list[tuple[int, bytes]]:
        """Store each (record, canonical bytes, record_sm3) unless there; per item (status, receipt or reason).

        One transaction for all items: they are all stored, or none.
        """
        results: list[tuple[int, bytes]] = []
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for record, canon, digest in items:
                    row = self._db.execute(
                        "SELECT record_sm3, receipt FROM filings WHERE record_id = ?", (record["record_id"],)
                    ).fetchone()
                    if row is not None:
                        if row[0] == digest:
                            results.append((200, bytes(row[1])))
                        else:
                            results.append((409, b"record_id already filed with a different body"))
                        continue
                    results.append((201, self._insert(record, canon, digest, sender_cert_sm3, signer)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return results

    def _insert(self, record: dict[str, Any], canon: bytes, digest: str, sender_cert_sm3: str, signer: Any) -> bytes:
        receipt_id = "RC" + uuid.uuid4().hex
        received_at = datetime.now(UTC).isoformat()
        body = {
            "receipt_id": receipt_id,
            "record_id": record["record_id"],
            "received_at": received_at,
            "record_sm3": digest,
            "platform": PLATFORM_NAME,
        }
        receipt = p.canonical(p.make_receipt(body, signer))
        self._db.execute(
            "INSERT INTO filings (record_id, record_sm3, kind, subject, subject_seq, record, sender_cert_sm3,"
            " receipt_id, received_at, receipt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["record_id"],
                digest,
                record["kind"],
                record["subject"],
                record["subject_seq"],
                canon.decode("utf-8"),
                sender_cert_sm3,
                receipt_id,
                received_at,
                receipt,
            ),
        )
        return receipt

    def listing(self, since: int, limit: int) -> dict[str, Any]:
        with self.lock:
            rows = self._db.execute(
                "SELECT seq, record_id, kind, subject, subject_seq, record_sm3, receipt_id, received_at FROM filings"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit),
            ).fetchall()
        keys = ("seq", "record_id", "kind", "subject", "subject_seq", "record_sm3", "receipt_id", "received_at")
        items = [dict(zip(keys, row, strict=True)) for row in rows]
        return {"items": items, "next": items[-1]["seq"] if len(items) == limit else None}

    def stats(self) -> dict[str, Any]:
        """What is stored, and anything filed twice: a record id held more than once, or one record of a
        subject (its kind, subject and sequence number) held under two record ids."""
        with self.lock:
            total, distinct = self._db.execute("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM filings").fetchone()
            (per_id,) = self._db.execute(
                "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM filings GROUP BY record_id)").fetchone()
            (twice,) = self._db.execute(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT COUNT(*) AS n FROM filings"
                " GROUP BY kind, subject, subject_seq HAVING COUNT(*) > 1)").fetchone()
            contents = self._db.execute("SELECT kind, subject, record FROM filings").fetchall()
        # The same event filed under a second record id (e.g. re-queued after a restore): same kind,
        # subject and payload. Each extra copy counts once.
        seen: dict[str, int] = {}
        for kind, subject, record in contents:
            payload = json.dumps(json.loads(record).get("payload"), sort_keys=True, ensure_ascii=False)
            key = f"{kind}\x00{subject}\x00{payload}"
            seen[key] = seen.get(key, 0) + 1
        same_content = sum(n - 1 for n in seen.values())
        return {"records": total, "distinct_record_ids": distinct, "max_records_per_id": per_id,
                "same_content_twice": same_content, "same_subject_seq_twice": twice}

    def close(self) -> None:
        with self.lock:
            self._db.close()
