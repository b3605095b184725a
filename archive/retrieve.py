"""Fetching archived packages: download to a folder (for offline verification) and shareable URLs.

A package alone cannot be verified: what ties it to the archiving unit is the run's signed
manifest. So a download holds both (the package folder with the run's files in ``_batch/``),
and a URL points to a tar of exactly that folder — built from the archived version of the
package, stored unlocked under ``shares/`` and presigned with its version id, so the link serves
those bytes and no later overwrite. Whoever receives it runs
``sealflow archive verify FILE.tar --trust ROOT.pem``.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    untar_package,
)
from archive.store import ObjectStore
from gmpki.gm.sm3 import sm3_hex

SHARE_PREFIX = "shares/"


@dataclass(frozen=True)
class Share:
    url: str
    key: str
    version_id: str
    expires_at: datetime


def package_files(store: ObjectStore, row: ArchiveRecord) -> dict[str, bytes]:
    """The archived version of the record's package with its run's signed files under ``_batch/``,
    checked against the index's SM3 before anything is returned."""
    data = store.get(row.object_key, row.object_version or None)
    if row.package_sm3 and sm3_hex(data) != row.package_sm3:
        raise PackageError(row.object_key, "downloaded package differs from the archived one (SM3 mismatch)")
    _folder, files = untar_package(data, row.object_key)
    prefix = row.batch_manifest_key.rsplit("/", 1)[0] + "/"
    for name in (BATCH_MANIFEST, BATCH_SIGNATURE, BATCH_CERT, BATCH_REGISTRATION, BATCH_CHAIN):
        files[f"{BATCH_DIR}/{name}"] = store.get(prefix + name)
    return files


def share_package(store: ObjectStore, row: ArchiveRecord, expires: int, now: datetime | None = None) -> Share:
    """A presigned, version-pinned URL of the verifiable tar (see the module docstring)."""
    files = package_files(store, row)
    slug = package_slug(row.archival_code)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(files):
            info = tarfile.TarInfo(f"{slug}/{name}")
            info.size, info.mode, info.mtime = len(files[name]), 0o644, int(row.archived_at.timestamp())
            tf.addfile(info, io.BytesIO(files[name]))
    now = now or datetime.now(UTC)
    key = f"{SHARE_PREFIX}{slug}-{now:%Y%m%dT%H%M%S%fZ}.tar"
    version = store.put_unlocked(key, buf.getvalue(), content_type="application/x-tar")
    return Share(store.presign(key, expires, version_id=version or None), key, version,
                 now + timedelta(seconds=expires))


def download_package(store: ObjectStore, row: ArchiveRecord, dest: Path) -> Path:
    """Write the record's package to ``dest/<档号>/`` with the run's signed manifest in ``_batch/``.

    The package's SM3 is checked against the index before anything is written; the folder appears
    whole or not at all (built in a temporary sibling, then renamed).
    """
    files = package_files(store, row)
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
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def unpack_share(tar_path: Path, dest: Path) -> Path:
    """Unpack a shared tar (from :func:`share_package`) into ``dest``; the package folder.

    Only regular files under one top folder are accepted (no links, no absolute or ``..`` paths).
    """
    with tarfile.open(tar_path) as tf:
        members = tf.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        bad = [m.name for m in members if not m.isfile() or m.name.startswith("/") or ".." in m.name.split("/")]
        if bad or len(tops) != 1:
            raise PackageError(str(tar_path), "not a shared archival package (one folder of regular files)")
        tf.extractall(dest, filter="data")
    return dest / tops.pop()
