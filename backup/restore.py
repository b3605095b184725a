"""Checking and restoring a backup: every check runs before anything is written, and a restore is
all or nothing.

Decisions:
- ``verify_backup`` works offline and without the KEK (signature, certificate, every object's SM3);
  given the KEK-derived keys it also decrypts every object and checks its keyed id, which proves that the
  content is what was backed up, not only that the ciphertext is intact.
- ``restore_backup`` refuses a target that holds anything (a state folder with files, a database with
  SealFlow tables): restoring over live state would mix two histories. Files are written into a staging
  folder beside the target and renamed into place at the end; PostgreSQL rows go in one transaction.
- The schema is built by our own migrations and must reach the revisions the backup records, else the
  restore stops and names the version to use.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, MetaData, inspect, text

from backup.snapshot import BackupError, BackupKeys, Destination, backup_ids, decode_value, schema_revisions
from gmpki.gm.sm2 import SM2PublicKey
from gmpki.gm.sm3 import sm3
from gmpki.gm.sm4 import DecryptionFailed, decrypt_gcm
from kernel.db import make_engine


@dataclass
class BackupCheck:
    """What ``verify_backup`` found: ``ok`` only when there is no problem at all."""

    backup_id: str
    manifest: dict = field(default_factory=dict, repr=False)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    objects: int = 0
    decrypted: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _resolve_id(dest: Destination, backup_id: str | None) -> str:
    ids = backup_ids(dest)
    if not ids:
        raise BackupError(f"{dest.describe()} holds no backup; take one with `sealflow backup create`")
    if backup_id is None:
        return ids[-1]
    if backup_id not in ids:
        raise BackupError(f"{dest.describe()} has no backup {backup_id}; `sealflow backup list` shows them")
    return backup_id


def verify_backup(dest: Destination, backup_id: str | None = None, trust=None,
                  keys: BackupKeys | None = None) -> BackupCheck:
    """Check one backup (default: the newest). ``trust``: a TrustStore for the backup key's certificate."""
    backup_id = _resolve_id(dest, backup_id)
    check = BackupCheck(backup_id)
    body = dest.get(f"backups/{backup_id}/manifest.json")
    try:
        signature = dest.get(f"backups/{backup_id}/manifest.sig")
        manifest = json.loads(body)
        cert = base64.b64decode(manifest["signer_certificate"])
        signed = SM2PublicKey.from_certificate(cert).verify(signature, body)
    except BackupError:
        check.problems.append("the manifest has no signature (manifest.sig is missing)")
        return check
    except (ValueError, KeyError, TypeError) as exc:
        check.problems.append(f"the manifest is unreadable: {exc}")
        return check
    check.manifest = manifest
    if not signed:
        check.problems.append("the manifest's signature does not verify: it was altered after signing")
    if trust is not None:
        extra = [base64.b64decode(c) for c in manifest.get("intermediates", [])]
        chain = trust.validate(cert, extra_intermediates=extra)
        if not chain.ok:
            check.problems.append(f"the backup key's certificate is not trusted: {chain.reason}")
    else:
        check.notes.append("the backup key's certificate was not checked against a trust root (give --trust)")
    for obj in manifest.get("objects", []):
        check.objects += 1
        try:
            blob = dest.get(f"objects/{obj['id']}")
        except BackupError:
            check.problems.append(f"object {obj['id'][:16]}… ({obj['name']}) is missing")
            continue
        if sm3(blob).hex() != obj["sm3"]:
            check.problems.append(f"object {obj['id'][:16]}… ({obj['name']}) is damaged: its SM3 differs")
            continue
        if keys is not None:
            try:
                plain = decrypt_gcm(keys.encryption, blob, aad=obj["id"].encode())
            except DecryptionFailed:
                check.problems.append(f"object {obj['id'][:16]}… ({obj['name']}) does not decrypt with this KEK")
                continue
            if keys.object_id(plain) != obj["id"]:
                check.problems.append(f"object {obj['id'][:16]}… ({obj['name']}) decrypts to other content")
                continue
            check.decrypted += 1
    if keys is None:
        check.notes.append("contents not decrypted (no KEK given): only the ciphertexts were checked")
    return check


def _plain(dest: Destination, keys: BackupKeys, obj: dict) -> bytes:
    return decrypt_gcm(keys.encryption, dest.get(f"objects/{obj['id']}"), aad=obj["id"].encode())


def _refuse_non_empty(state_dir: Path, engine: Engine | None) -> None:
    if state_dir.exists() and any(state_dir.iterdir()):
        raise BackupError(f"{state_dir} is not empty; restore only into an empty SealFlow home "
                          f"(move the old one away first)")
    if engine is not None:
        names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
        if names:
            raise BackupError(f"the database {engine.url.render_as_string(hide_password=True)} already holds "
                              f"SealFlow tables ({', '.join(sorted(names)[:3])}…); restore into an empty database")


def _load_rows(engine: Engine, dest: Destination, keys: BackupKeys, manifest: dict) -> dict[str, int]:
    metadata = MetaData()
    metadata.reflect(engine)
    by_table: dict[str, list[dict]] = {}
    for obj in manifest["objects"]:
        if obj["kind"] == "segment":
            by_table.setdefault(obj["table"], []).append(obj)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):  # rows a migration may have seeded
            if table.name != "alembic_version":
                conn.execute(table.delete())
        for table in metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            if table.name not in manifest["tables"]:
                raise BackupError(f"the backup has no table {table.name}; it was made by another SealFlow version")
            for obj in by_table.get(table.name, []):
                segment = json.loads(_plain(dest, keys, obj))
                rows = [{c: decode_value(v) for c, v in zip(segment["columns"], row, strict=True)}
                        for row in segment["rows"]]
                if rows:
                    conn.execute(table.insert(), rows)
                counts[table.name] = counts.get(table.name, 0) + len(rows)
            if counts.get(table.name, 0) != manifest["tables"][table.name]["rows"]:
                raise BackupError(f"table {table.name}: {counts.get(table.name, 0)} rows restored, "
                                  f"{manifest['tables'][table.name]['rows']} in the backup")
        if engine.dialect.name == "postgresql":
            for table in metadata.sorted_tables:
                for col in table.primary_key.columns:
                    if col.autoincrement is True or (col.autoincrement == "auto" and col.type.python_type is int):
                        # names come from our own reflected schema, never from input
                        conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', '{col.name}'), "  # noqa: S608
                            f"COALESCE((SELECT MAX({col.name}) FROM {table.name}), 0) + 1, false) "
                            f"WHERE pg_get_serial_sequence('{table.name}', '{col.name}') IS NOT NULL"))
    return counts


def restore_backup(dest: Destination, keys: BackupKeys, state_dir: Path, database_url: str | None,
                   migrate: Callable[[Engine], None], backup_id: str | None = None, trust=None) -> BackupCheck:
    """Restore one backup into an empty home (and an empty database when ``database_url`` is given)."""
    check = verify_backup(dest, backup_id, trust, keys)
    if not check.ok:
        raise BackupError("the backup does not verify; nothing was written:\n  " + "\n  ".join(check.problems))
    manifest = check.manifest
    state_dir = Path(state_dir)
    external = make_engine(database_url) if database_url else None
    try:
        _refuse_non_empty(state_dir, external)
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=state_dir.parent, prefix=f".{state_dir.name}.restoring-"))
        try:
            engine = external or make_engine(f"sqlite:///{staging / 'sealflow.db'}")
            try:
                migrate(engine)
                have = schema_revisions(engine)
                if have != manifest["schema_revisions"]:
                    raise BackupError(f"this SealFlow builds schema {have}, the backup has "
                                      f"{manifest['schema_revisions']}: restore with the version that made it")
                _load_rows(engine, dest, keys, manifest)
            finally:
                if external is None:
                    engine.dispose()
            for obj in manifest["objects"]:
                if obj["kind"] != "file":
                    continue
                target = (staging / obj["name"]).resolve()
                if not target.is_relative_to(staging.resolve()):
                    raise BackupError(f"the backup names a file outside the home: {obj['name']}")
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, obj.get("mode", 0o600) & 0o700)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(_plain(dest, keys, obj))
            staging.chmod(0o700)
            if state_dir.exists():
                state_dir.rmdir()  # empty, checked above
            os.replace(staging, state_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    finally:
        if external is not None:
            external.dispose()
    return check
