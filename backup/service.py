"""One way to take a backup from settings, used by the ``sealflow backup`` command and the ``backup`` DAG,
and one way to see the newest backup, used by the console's health page and the alerts.

It wires the pieces the backup package keeps apart: the destination named by a target string, the
keys derived from the KEK, and the backup key's signer (a service key in the key store, its certificate
issued by the registry's CA; the same setup the archiving and filing keys use).

``latest_backup`` reads one listing and one manifest and needs no KEK: the health page runs it on
every view and the alerts every 15 minutes, so it must be cheap and must work where the KEK is not
(the console's process). It reports what the destination says; whether that backup is intact is
``sealflow backup verify``'s job (signature, certificate chain, every object), not a page view's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup.snapshot import (
    BackupError,
    BackupKeys,
    BackupResult,
    Destination,
    FolderDestination,
    S3Destination,
    latest_manifest,
)
from gmpki.pki.certs import Subject
from kernel.db import database
from kernel.keys import ensure_service_signer, installation_ca, kek_material
from kernel.objectstore import s3_client
from kernel.settings import Settings

SETTINGS_KEPT = ("review_levels", "seal_region_code", "seal_validity_days", "archive_fonds", "archive_category",
                 "filing_system_id", "audit_checkpoint_every")


# A look at the newest backup gives up quickly: a page view must not hang on an unreachable store.
QUICK_LOOK = {"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 1, "mode": "standard"}}


def destination(settings: Settings, target: str | None, **client_config: Any) -> Destination:
    """The destination a target names: ``s3://bucket/prefix`` or a folder outside the home.
    ``client_config``: botocore options for an S3 target (timeouts, retries)."""
    target = target or settings.backup_target
    if not target:
        raise BackupError("no backup target: give a folder or s3://bucket/prefix (--to/--from), "
                          "or set SEALFLOW_BACKUP_TARGET")
    if target.startswith("s3://"):
        bucket, _, prefix = target[5:].partition("/")
        return S3Destination(s3_client(settings, **client_config), bucket, prefix, settings.backup_retention_days)
    folder = Path(target).resolve()
    if folder.is_relative_to(settings.state_dir.resolve()):
        raise BackupError(f"{folder} is inside the SealFlow home: a backup must survive losing the home")
    return FolderDestination(folder)


def backup_keys(settings: Settings) -> BackupKeys:
    if not settings.kek and not settings.resolved_kek_file.exists():
        raise BackupError(f"no KEK at {settings.resolved_kek_file}: rebuild it first with `sealflow kek recover`")
    return BackupKeys.from_kek(kek_material(settings))


def take_backup(settings: Settings, target: str | None = None) -> BackupResult:
    """Take one (full or incremental) backup of this home to ``target`` (default: the configured one)."""
    from backup.snapshot import create_backup

    dest = destination(settings, target)
    keys = backup_keys(settings)
    with database(settings.resolved_database_url) as sessions:
        ca = installation_ca(settings)
        signer = ensure_service_signer(
            settings, settings.backup_key_id, settings.backup_key_pin,
            lambda public: ca.issue(Subject("SealFlow 备份", organization="SealFlow"), public))
        kept: dict[str, Any] = {name: getattr(settings, name) for name in SETTINGS_KEPT}
        return create_backup(sessions.kw["bind"], settings.state_dir, dest, keys, signer, kept,
                             intermediates=(ca.intermediate_der,))


def public_target(target: str) -> str:
    """A target as it may be shown: any ``user:password@`` in it removed (S3 keys come from settings,
    but a target written with them must not end up on a page or in a mail)."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", target, flags=re.IGNORECASE)


def latest_backup(settings: Settings, now: datetime | None = None) -> dict[str, Any] | None:
    """The newest backup at the configured target, or None when it holds none: its id, time, kind (full,
    or incremental on ``base``), size (objects and plain bytes it restores; objects and stored bytes it
    added, None for backups older than that record), age in seconds, and the target without credentials.

    Raises ``BackupError`` when no target is configured or it cannot be read; S3 errors pass through."""
    dest = destination(settings, None, **QUICK_LOOK)
    manifest = latest_manifest(dest)
    if manifest is None:
        return None
    try:
        created = datetime.fromisoformat(manifest["created_at"])
        objects = manifest["objects"]
        size = sum(int(o["size"]) for o in objects)
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{public_target(dest.describe())}: the newest manifest is unreadable "
                          f"({type(exc).__name__}: {exc}); check it with `sealflow backup verify`") from None
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    written = manifest.get("written") or {}
    return {"backup_id": manifest.get("backup_id", ""), "created_at": manifest["created_at"],
            "kind": "incremental" if manifest.get("base") else "full", "base": manifest.get("base"),
            "objects": len(objects), "bytes": size,
            "new_objects": written.get("objects"), "new_bytes": written.get("bytes"),
            "age_s": int(((now or datetime.now(UTC)) - created).total_seconds()),
            "target": public_target(dest.describe())}
