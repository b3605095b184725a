"""Publishing a run: its registration form (归档登记表) and SM3 manifest, signed by the archiving
unit and locked, then the index rows ``archived`` — in one transaction, only after all of it.

Decision: no unsigned run folder is ever locked (:meth:`Publishing._publish_run`): files are staged
unlocked first, then written locked signature first and manifest last.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime

from archive import index
from archive.models import ArchiveRun
from archive.package import (
    BATCH_CERT,
    BATCH_CHAIN,
    BATCH_MANIFEST,
    BATCH_REGISTRATION,
    BATCH_SIGNATURE,
    batch_manifest,
    pem_bundle,
)
from archive.retention import retain_until
from archive.service.base import ArchiverBase
from archive.service.records import STAGING_PREFIX, ArchiveResult, RecordOutcome, package_key, run_prefix
from archive.service.work import Work
from archive.store import StoreError
from gmpki.gm.sm3 import sm3_hex
from kernel.db import transaction

log = logging.getLogger(__name__)


class Publishing(ArchiverBase):
    """Signs, locks and publishes a run."""

    def _finish_run(self, stored: list[Work], batch_id: str, run_id: str, now: datetime,
                    result: ArchiveResult) -> None:
        prefix = run_prefix(batch_id, run_id)
        until = max(retain_until(w.retention, now) for w in stored)
        registration = json.dumps({
            "form": "归档登记表 (GB/T 18894-2016 表A.1)",
            "batch_id": batch_id, "run_id": run_id, "archived_at": now.isoformat(),
            "archiving_unit": _subject(self.signer.certificate),
            "records": len(stored),
            "document_bytes": sum(w.size for w in stored),
            "package_bytes": sum(w.package.size for w in stored if w.package),
            "by_retention": dict(Counter(w.retention for w in stored)),
            "first_archival_code": min(w.code for w in stored), "last_archival_code": max(w.code for w in stored),
            "not_archived": [{"licence_id": o.licence_id, "file": o.file, "reasons": o.reasons}
                             for o in result.outcomes if o.status in ("rejected", "failed")],
            "superseding": [{"archival_code": w.code, "supersedes": w.supersedes, "licence_id": w.licence_id}
                            for w in stored if w.supersedes],
        }, ensure_ascii=False, sort_keys=True, indent=1).encode()
        chain = pem_bundle(self.chain)
        manifest = batch_manifest({w.code: w.package.manifest_sm3 for w in stored if w.package}, registration, chain)
        signature = self.signer.sign(manifest)
        manifest_key = prefix + BATCH_MANIFEST
        self._publish_run(prefix, {BATCH_REGISTRATION: registration, BATCH_CHAIN: chain,
                                   BATCH_CERT: self.signer.certificate, BATCH_SIGNATURE: signature,
                                   BATCH_MANIFEST: manifest}, until)
        with transaction(self.sessions) as s:
            index.add_run(s, ArchiveRun(run_id=run_id, batch_id=batch_id, created_at=now, records=len(stored),
                                        bytes=sum(w.size for w in stored), manifest_key=manifest_key,
                                        manifest_sm3=sm3_hex(manifest), registration_key=prefix + BATCH_REGISTRATION))
            index.publish(s, [{
                "id": w.row_id, "batch_id": batch_id, "object_version": w.version,
                "archived_at": w.archived_at or now, "retain_until": retain_until(w.retention, w.archived_at or now),
                "package_sm3": w.package.tar_sm3, "package_size": w.package.size,
                "manifest_sm3": w.package.manifest_sm3, "batch_manifest_key": manifest_key,
            } for w in stored if w.package], superseded=[(w.supersedes, w.code) for w in stored if w.supersedes])
        for w in stored:
            result.outcomes.append(RecordOutcome(w.inp.record.get("licence_id", ""), w.inp.file_name, "archived",
                                                 w.code, package_key(w.code), supersedes=w.supersedes))
        result.manifest_key = manifest_key
        result.registration_key = prefix + BATCH_REGISTRATION
        self._clear_staging(batch_id)

    def _publish_run(self, prefix: str, files: dict[str, bytes], until: datetime) -> None:
        """Publish the run folder so that no unsigned run folder is ever locked (issue 11, item 7).

        1. stage every file, unlocked, under ``staging/`` (a crash here leaves only deletable debris);
        2. write the locked files with the signature FIRST and the signed manifest LAST: from the first
           locked object on, the folder holds the run's signature, and a folder is complete exactly
           when its manifest is there and verifies (fixity reports any other as incomplete);
        3. the index rows are published only after all of it (by the caller).
        """
        for name, data in files.items():
            self.store.put_unlocked(STAGING_PREFIX + prefix + name, data, content_type="application/octet-stream")
        order = [BATCH_SIGNATURE, BATCH_CERT, BATCH_CHAIN, BATCH_REGISTRATION, BATCH_MANIFEST]
        for name in order:
            self.store.put(prefix + name, files[name], retain_until=until)

    def _clear_staging(self, batch_id: str) -> None:
        """Remove the batch's staged (unlocked) run files: of this run and of runs that crashed."""
        try:
            for obj in list(self.store.list(STAGING_PREFIX + run_prefix(batch_id, ""))):
                for version in self.store.versions(obj.key):
                    self.store.delete(obj.key, version)
        except StoreError as exc:  # debris only: fixity reports it, the next run retries
            log.warning("staged run files of batch %s not removed: %s", batch_id, exc)


def _subject(cert_der: bytes) -> str:
    try:
        from asn1crypto import x509

        return x509.Certificate.load(cert_der).subject.human_friendly
    except Exception:  # a name for the form only; the signature check does not depend on it
        return ""
