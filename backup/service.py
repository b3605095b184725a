"""One way to take a backup from settings, used by the ``sealflow backup`` command and the ``backup`` DAG.

It wires the pieces the backup package keeps apart: the destination named by a target string, the
keys derived from the KEK, and the backup key's signer (a service key in the key store, its certificate
issued by the registry's CA; the same setup the archiving and filing keys use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backup.snapshot import BackupError, BackupKeys, BackupResult, Destination, FolderDestination, S3Destination
from gmpki.pki.certs import Subject
from kernel.db import database
from kernel.keys import ensure_service_signer, installation_ca, kek_material
from kernel.objectstore import s3_client
from kernel.settings import Settings

SETTINGS_KEPT = ("review_levels", "seal_region_code", "seal_validity_days", "archive_fonds", "archive_category",
                 "filing_system_id", "audit_checkpoint_every")


def destination(settings: Settings, target: str | None) -> Destination:
    """The destination a target names: ``s3://bucket/prefix`` or a folder outside the home."""
    target = target or settings.backup_target
    if not target:
        raise BackupError("no backup target: give a folder or s3://bucket/prefix (--to/--from), "
                          "or set SEALFLOW_BACKUP_TARGET")
    if target.startswith("s3://"):
        bucket, _, prefix = target[5:].partition("/")
        return S3Destination(s3_client(settings), bucket, prefix, settings.backup_retention_days)
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
