"""Fetching archived packages: download to a folder (for offline verification) and presigned URLs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from archive.models import ArchiveRecord
from archive.package import (
    BATCH_CERT,
    BATCH_CHAIN,
    BATCH_DIR,
    BATCH_MANIFEST,
    BATCH_REGISTRATION,
    BATCH_SIGNATURE,
    PackageError,
    package_slug,
    sm3_hex,
    untar_package,
)
from archive.store import ObjectStore


def download_package(store: ObjectStore, row: ArchiveRecord, dest: Path) -> Path:
    """Write the record's package to ``dest/<档号>/`` with the run's signed manifest in ``_batch/``.

    The package's SM3 is checked against the index before anything is written; the folder appears
    whole or not at all (built in a temporary sibling, then renamed).
    """
    data = store.get(row.object_key, row.object_version or None)
    if row.package_sm3 and sm3_hex(data) != row.package_sm3:
        raise PackageError(row.object_key, "downloaded package differs from the archived one (SM3 mismatch)")
    _folder, files = untar_package(data, row.object_key)
    prefix = row.batch_manifest_key.rsplit("/", 1)[0] + "/"
    batch = {name: store.get(prefix + name) for name in (BATCH_MANIFEST, BATCH_SIGNATURE, BATCH_CERT,
                                                          BATCH_REGISTRATION, BATCH_CHAIN)}
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / package_slug(row.archival_code)
    if target.exists():
        raise PackageError(str(target), "already exists; choose another folder")
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=dest))
    try:
        for name, content in files.items():
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
        (tmp / BATCH_DIR).mkdir()
        for name, content in batch.items():
            (tmp / BATCH_DIR / name).write_bytes(content)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def package_url(store: ObjectStore, row: ArchiveRecord, expires: int) -> str:
    return store.presign(row.object_key, expires)
