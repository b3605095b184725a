"""Archive replication (异地副本): every archived object is written to two independent S3 stores.

Why: Object Lock keeps an archived package from being deleted or changed in its store, but not from
losing the store itself (a disk, a site, an operator with the keys to the machine). So every locked
object — packages, the signed run folders, the audit anchors — is written to the primary store *and*
to a replica (a second SeaweedFS in the embedded stack; any S3 with Object Lock in production), with
the same COMPLIANCE mode and the same retain-until date.

Decisions:
- **Both or fail.** A locked put returns only when both stores hold the object (each checks Content-MD5
  and SHA-256 on arrival). A replica that cannot be reached makes the put raise :class:`StoreError`, so
  the record's archiving fails and the next run retries it — never a silent single copy. A retry is
  safe: an identical object already in a store is a no-op (``If-None-Match``).
- **Reads from the primary.** Retrieval, the index's version ids and the unlocked objects (staging,
  reports, shared tars) live in the primary only; fixity (:mod:`archive.fixity`) compares both copies
  and repairs a bad one from the good one.
- :class:`ReplicatedStore` offers the calls of :class:`archive.store.ObjectStore` that archiving uses, so
  :mod:`archive.service` does not need to know how many stores there are.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.store import ObjectStore, PutResult, StoreError
from kernel.settings import Settings


class ReplicatedStore:
    """The archive bucket on the primary store plus its replica; locked writes go to both."""

    def __init__(self, primary: ObjectStore, replica: ObjectStore) -> None:
        self.primary = primary
        self.replica = replica

    def __repr__(self) -> str:
        return f"ReplicatedStore(primary={self.primary!r}, replica={self.replica!r})"

    # what archiving and its readers use of the primary
    @property
    def bucket(self) -> str:
        return self.primary.bucket

    @property
    def client(self) -> Any:
        return self.primary.client

    def stores(self) -> list[tuple[str, ObjectStore]]:
        return [("primary", self.primary), ("replica", self.replica)]

    def ensure_bucket(self, object_lock: bool = True) -> None:
        self.primary.ensure_bucket(object_lock)
        try:
            self.replica.ensure_bucket(object_lock)
        except StoreError as exc:
            raise StoreError(exc.key, f"archive replica: {exc.reason}; archiving waits until the replica answers "
                                      "(`sealflow stack status`)") from exc
        except Exception as exc:  # botocore connection errors: the replica is down
            raise StoreError(self.replica.bucket, f"archive replica unreachable ({type(exc).__name__}); archiving "
                                                  "waits until it answers (`sealflow stack status`)") from exc

    def put(self, key: str, data: bytes | str | os.PathLike, *, retain_until: datetime | None = None,
            metadata: dict[str, str] | None = None, content_type: str = "application/octet-stream",
            verify: bool = True, sha256: str | None = None, md5: str | None = None) -> PutResult:
        """The primary's put (its result, its conflicts), then the same object, same retention, to the replica."""
        body = data if isinstance(data, bytes) else Path(data).read_bytes()  # read once, for both puts
        result = self.primary.put(key, body, retain_until=retain_until, metadata=metadata, content_type=content_type,
                                  verify=verify, sha256=sha256, md5=md5)
        self._replicate(key, body, retain_until, metadata, content_type, sha256, md5)
        return result

    def _replicate(self, key: str, body: bytes, retain_until: datetime | None, metadata: dict[str, str] | None,
                   content_type: str, sha256: str | None = None, md5: str | None = None) -> None:
        try:
            self.replica.put(key, body, retain_until=retain_until, metadata=metadata, content_type=content_type,
                             verify=True, sha256=sha256, md5=md5)
        except StoreError as exc:
            raise StoreError(key, f"archive replica: {exc.reason}; not archived until both stores hold it "
                                  "(the next run retries)") from exc
        except Exception as exc:  # botocore connection errors: the replica is down
            raise StoreError(key, f"archive replica unreachable ({type(exc).__name__}); not archived until both "
                                  "stores hold it (the next run retries)") from exc

    def replicate_existing(self, key: str, version_id: str, body: bytes) -> None:
        """A package adopted from a crashed run exists in the primary: make sure the replica holds it too,
        with the primary version's retention."""
        info = self.primary.head(key, version_id)
        self._replicate(key, body, info.retain_until, info.metadata, "application/x-tar")

    def verify_listed(self, expected: dict[str, tuple[int, str]]) -> dict[str, str]:
        problems = dict(self.primary.verify_listed(expected))
        for key, why in self.replica.verify_listed(expected).items():
            problems.setdefault(key, f"archive replica: {why}")
        return problems

    # unlocked objects and reads: the primary only
    def put_unlocked(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        return self.primary.put_unlocked(key, data, content_type)

    def head(self, key: str, version_id: str | None = None):
        return self.primary.head(key, version_id)

    def exists(self, key: str) -> bool:
        return self.primary.exists(key)

    def get(self, key: str, version_id: str | None = None) -> bytes:
        return self.primary.get(key, version_id)

    def presign(self, key: str, expires: int = 3600, version_id: str | None = None) -> str:
        return self.primary.presign(key, expires, version_id)

    def delete(self, key: str, version_id: str | None = None) -> None:
        self.primary.delete(key, version_id)

    def versions(self, key: str) -> list[str]:
        return self.primary.versions(key)

    def list(self, prefix: str = ""):
        return self.primary.list(prefix)


def replica_store(settings: Settings, *, pool: int = 32, attempts: int = 3) -> ObjectStore:
    """The replica's archive bucket (``replica_*`` settings)."""
    from kernel.objectstore import replica_client

    client = replica_client(settings, max_pool_connections=pool, retries={"max_attempts": attempts, "mode": "standard"})
    return ObjectStore(settings, settings.resolved_replica_bucket, client=client)


def archive_store(settings: Settings, *, attempts: int = 3) -> ObjectStore | ReplicatedStore:
    """The store archiving writes to: primary + replica (the default), or the primary alone when
    ``replica_enabled`` is off."""
    primary = ObjectStore(settings, attempts=attempts)
    if not settings.replica_enabled:
        return primary
    return ReplicatedStore(primary, replica_store(settings, attempts=attempts))

