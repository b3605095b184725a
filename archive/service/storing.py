"""Uploading the built packages: from a thread pool as workers finish them (Object Lock COMPLIANCE
until the 保管期限 ends; the store checks Content-MD5 and SHA-256), then confirmed by listing.

Decision: a package already stored under a record's 档号 (a crashed run stored it but never
published it) is adopted when it is intact and is that record's — never overwritten, never
silently trusted (:meth:`Storing._adopt`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from concurrent.futures import Future, as_completed
from datetime import datetime

from archive.package import PackageError, parse_manifest, untar_package
from archive.retention import retain_until
from archive.service.base import ArchiverBase
from archive.service.jobs import Built
from archive.service.records import package_key
from archive.service.work import Work, as_utc
from archive.store import ObjectConflict, StoreError
from gmpki.gm.sm3 import sm3_hex


class Storing(ArchiverBase):
    """Uploads, confirms and adopts packages."""

    def _store_built(self, builds: dict[Future, Work], now: datetime) -> None:
        """Each package is uploaded by the I/O threads as soon as a worker has built it."""
        uploads = []
        for fut in as_completed(builds):
            w = builds[fut]
            try:
                built = fut.result()
            except (OSError, ValueError) as exc:
                w.fail("failed", [str(exc)])
                continue
            if isinstance(built, list):
                w.fail("rejected", built)
                continue
            uploads.append(self._io.submit(self._store_one, w, built, w.archived_at or now))
        for u in uploads:
            u.result()

    def _store_one(self, w: Work, built: Built, now: datetime) -> None:
        key = package_key(w.code)
        try:
            try:
                put = self.store.put(key, built.tar, retain_until=retain_until(w.retention, now),
                                     content_type="application/x-tar",
                                     metadata={"sm3": built.tar_sm3, "manifest-sm3": built.manifest_sm3},
                                     verify=False, sha256=built.sha256_b64,
                                     md5=base64.b64encode(bytes.fromhex(built.md5_hex)).decode())
                w.version = put.version_id
                w.package = built
            except ObjectConflict:
                # A crashed earlier run stored this record's package but never published it: adopt it
                # if it is intact and is this record's; otherwise report the clash.
                w.package, w.version, w.archived_at = self._adopt(key, w.licence_id)
                replicate = getattr(self.store, "replicate_existing", None)
                if replicate is not None:  # a ReplicatedStore: the adopted package must be in both stores
                    replicate(key, w.version, w.package.tar)
        except (StoreError, PackageError, ValueError) as exc:
            w.fail("failed", [str(exc)])
            return
        w.package.tar = b""  # uploaded: keep the digests, free the bytes

    def _verify_uploads(self, works: list[Work]) -> None:
        """Confirm every uploaded package is stored as sent (one LIST per 1,000) before publishing."""
        ok = [w for w in works if w.package is not None and w.outcome is None]
        problems = self.store.verify_listed({package_key(w.code): (w.package.size, w.package.md5_hex)
                                             for w in ok if w.package})
        for w in ok:
            why = problems.get(package_key(w.code))
            if why:
                w.fail("failed", [f"{package_key(w.code)}: {why}"])

    def _adopt(self, key: str, licence_id: str) -> tuple[Built, str, datetime]:
        info = self.store.head(key)
        data = self.store.get(key, info.version_id)
        _folder, files = untar_package(data, key)
        manifest = parse_manifest(files.get("manifest-sm3.txt", b""), key)
        for name, digest in manifest.items():
            if name not in files or sm3_hex(files[name]) != digest:
                raise StoreError(key, f"existing package is damaged ({name}); not adopted")
        meta = json.loads(files["metadata.json"])
        if meta.get("licence", {}).get("licence_id") != licence_id:
            raise ObjectConflict(key, "the 档号 is taken by another record's package")
        built = Built(data, len(data), sm3_hex(data), sm3_hex(files["manifest-sm3.txt"]),
                       hashlib.md5(data, usedforsecurity=False).hexdigest(),
                       base64.b64encode(hashlib.sha256(data).digest()).decode())
        return built, info.version_id, as_utc(datetime.fromisoformat(meta["archived_at"]))
