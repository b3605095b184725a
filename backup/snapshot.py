"""Taking a backup: a consistent logical snapshot of the database and the state files, stored as
encrypted, content-addressed objects under a signed manifest.

Layout at a destination (a folder or ``s3://bucket/prefix``)::

    objects/<id>                 SM4-GCM(ciphertext) of one segment or file; id = HMAC-SM3(plain)
    backups/<backup_id>/manifest.json
    backups/<backup_id>/manifest.sig   SM2 signature (DER) over manifest.json, by the backup key

Decisions:
- Rows are encoded as JSON with type tags for bytes and datetimes (``{"$b": base64}``,
  ``{"$dt": iso}``), so a segment's digest depends only on the data, never on the driver.
- Segments hold ``SEGMENT_ROWS`` rows in primary-key order: an append-only table changes only in its
  last segment between two backups, which is what makes the incremental backup small.
- Object ids are keyed (HMAC with a key derived from the KEK): equal content dedupes, yet the id does
  not let anyone without the KEK test a guess of the content.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, select, text

from gmpki.gm.sm3 import sm3
from gmpki.gm.sm4 import encrypt_gcm
from gmpki.keys.signer import Signer
from kernel.files import write_atomic

SEGMENT_ROWS = 2000
FORMAT = "sealflow-backup/1"
# State files that cannot be re-created, relative to the state directory. The KEK is never among them.
STATE_PARTS = ("keys", "ca", "pins", "custody", "registry", "filing")
# Logs, caches, the object store's own data, runtime files and work folders are re-created or live elsewhere.
NOT_BACKED_UP = ("kek.hex", "airflow", "seaweedfs", "run", "logs", "sms", "batches", "samples", "inbox",
                 "platform", "sealflow.db")


class BackupError(Exception):
    """A backup cannot be taken, verified or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupKeys:
    """The two keys a backup needs, both derived from the KEK material: encryption and object ids."""

    encryption: bytes = field(repr=False)
    naming: bytes = field(repr=False)

    @classmethod
    def from_kek(cls, kek_material: bytes) -> BackupKeys:
        return cls(sm3(b"sealflow-backup-enc-v1" + kek_material)[:16], sm3(b"sealflow-backup-id-v1" + kek_material))

    def object_id(self, plain: bytes) -> str:
        return hmac.new(self.naming, plain, "sm3").hexdigest()


def _encode_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "$b":
            return base64.b64decode(raw)
        if tag == "$dt":
            return datetime.fromisoformat(raw)
        if tag == "$d":
            return date.fromisoformat(raw)
        if tag == "$n":
            return Decimal(raw)
    return value


def schema_revisions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))


def table_segments(engine: Engine) -> Iterator[tuple[str, list[str], list[list[Any]]]]:
    """(table, columns, rows) per segment, all read in one transaction: a consistent snapshot."""
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        else:
            conn.exec_driver_sql("BEGIN")  # SQLite: one read transaction sees one snapshot (WAL)
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            columns = [c.name for c in table.columns]
            order = list(table.primary_key.columns) or list(table.columns)
            rows: list[list[Any]] = []
            emitted = False
            for row in conn.execute(select(table).order_by(*order)):
                rows.append([_encode_value(v) for v in row])
                if len(rows) == SEGMENT_ROWS:
                    yield table.name, columns, rows
                    rows, emitted = [], True
            if rows or not emitted:  # an empty table still gets one (empty) segment: restore sees it
                yield table.name, columns, rows


def state_files(state_dir: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every regular file under the parts that matter; symlinks are not followed."""
    for part in STATE_PARTS:
        base = state_dir / part
        if not base.is_dir() or base.is_symlink():
            continue
        for root, dirs, files in os.walk(base, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = Path(root) / name
                if path.is_file() and not path.is_symlink() and not name.endswith(".part"):
                    yield path.relative_to(state_dir).as_posix(), path


class Destination:
    """Where backups are kept: a folder, or an S3 bucket (Object Lock) behind the same five calls."""

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class FolderDestination(Destination):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BackupError(f"object key {key!r} leaves the backup folder")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self._path(key), data)  # 0600: the temp file is made by mkstemp

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BackupError(f"{self.describe()}: {key} is missing") from None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root.resolve()).as_posix() for p in base.rglob("*") if p.is_file())

    def describe(self) -> str:
        return str(self.root)


class S3Destination(Destination):
    """Objects in a bucket created with Object Lock; each put carries COMPLIANCE retention."""

    def __init__(self, client: Any, bucket: str, prefix: str, retention_days: int) -> None:
        self.client, self.bucket, self.prefix, self.retention_days = client, bucket, prefix.strip("/"), retention_days

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def put(self, key: str, data: bytes) -> None:
        from datetime import timedelta

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if self.retention_days > 0:
            args["ObjectLockMode"] = "COMPLIANCE"
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.retention_days)
        self.client.put_object(**args)

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise BackupError(f"{self.describe()}: {key} is missing") from None

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=self._key(prefix)):
            keys += [o["Key"][len(self.prefix) + 1 if self.prefix else 0:] for o in page.get("Contents", [])]
        return sorted(keys)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class BackupResult:
    backup_id: str
    manifest: dict
    objects_written: int
    bytes_written: int
    base: str | None


def backup_ids(dest: Destination) -> list[str]:
    """The backups at a destination, oldest first (ids begin with their UTC time, so they sort by it)."""
    return sorted({k.split("/")[1] for k in dest.list("backups/") if k.endswith("/manifest.json")})


def latest_manifest(dest: Destination) -> dict | None:
    """The newest backup's manifest (one listing, one read), or None when the destination holds none.

    Only the plain manifest is read: its signature is checked by ``verify_backup``, not here. A manifest
    is written after its signature, so a listed one is complete."""
    ids = backup_ids(dest)
    if not ids:
        return None
    try:
        return json.loads(dest.get(f"backups/{ids[-1]}/manifest.json"))
    except ValueError as exc:
        raise BackupError(f"{dest.describe()}: the manifest of backup {ids[-1]} is unreadable ({exc}); "
                          "check it with `sealflow backup verify`") from None


def create_backup(engine: Engine, state_dir: Path, dest: Destination, keys: BackupKeys, signer: Signer,
                  settings_snapshot: dict[str, Any], now: datetime | None = None,
                  intermediates: tuple[bytes, ...] = ()) -> BackupResult:
    """Take one backup; objects already at the destination (from earlier backups) are not written again.

    ``intermediates``: the CA certificates between the backup key and a root, carried in the manifest so
    that the backup verifies with only the root certificate in hand.
    """
    now = now or datetime.now(UTC)
    backup_id = now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]
    previous = latest_manifest(dest)
    known: dict[str, str] = {o["id"]: o["sm3"] for o in previous.get("objects", [])} if previous else {}
    objects: list[dict] = []
    tables: dict[str, dict[str, Any]] = {}
    written = nbytes = 0

    def store(kind: str, name: str, plain: bytes, extra: dict[str, Any]) -> None:
        nonlocal written, nbytes
        oid = keys.object_id(plain)
        if oid in known:
            blob_digest = known[oid]
        elif dest.exists(f"objects/{oid}"):  # e.g. an interrupted earlier backup already wrote it
            blob_digest = sm3(dest.get(f"objects/{oid}")).hex()
        else:
            blob = encrypt_gcm(keys.encryption, plain, aad=oid.encode())
            dest.put(f"objects/{oid}", blob)
            blob_digest = sm3(blob).hex()
            written += 1
            nbytes += len(blob)
        known[oid] = blob_digest
        objects.append({"id": oid, "kind": kind, "name": name, "sm3": blob_digest, "size": len(plain), **extra})

    for table, columns, rows in table_segments(engine):
        info = tables.setdefault(table, {"columns": columns, "rows": 0, "segments": 0})
        info["rows"] += len(rows)
        info["segments"] += 1
        plain = json.dumps({"table": table, "columns": columns, "rows": rows}, ensure_ascii=False,
                           separators=(",", ":"), sort_keys=True).encode()
        store("segment", f"{table}#{info['segments']}", plain, {"table": table, "rows": len(rows)})
    for rel, path in state_files(state_dir):
        mode = path.stat().st_mode & 0o777
        store("file", rel, path.read_bytes(), {"mode": mode})

    manifest = {
        "format": FORMAT,
        "backup_id": backup_id,
        "created_at": now.isoformat(),
        "base": previous["backup_id"] if previous else None,
        "dialect": engine.dialect.name,
        "schema_revisions": schema_revisions(engine),
        "tables": tables,
        "objects": objects,
        "settings": settings_snapshot,
        "signer_certificate": base64.b64encode(signer.certificate).decode(),
        "intermediates": [base64.b64encode(c).decode() for c in intermediates],
        "not_backed_up": list(NOT_BACKED_UP),
        # What this backup added to the destination (the rest was there from earlier backups): lets the
        # health page say how big an incremental backup was without reading its base.
        "written": {"objects": written, "bytes": nbytes},
    }
    body = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    # The signature goes first and the manifest last: a manifest that is visible is always signed.
    dest.put(f"backups/{backup_id}/manifest.sig", signer.sign(body))
    dest.put(f"backups/{backup_id}/manifest.json", body)
    return BackupResult(backup_id, manifest, written, nbytes, manifest["base"])

