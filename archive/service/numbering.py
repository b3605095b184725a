"""档号: each record that passed phase one gets the next archival code of its prefix, in the order
records pass (continuous, no gaps), reserved as a ``pending`` index row in small batches.

Decision: a record resumed from a crashed run keeps the 档号 and the time its row was reserved
with, so the rebuilt (or adopted) package and the published row agree.
"""

from __future__ import annotations

from datetime import datetime

from archive import index
from archive.retention import code_prefix, make_archival_code, retain_until
from archive.service.base import ArchiverBase
from archive.service.placement import declared_reissue
from archive.service.records import package_key
from archive.service.work import Work, as_utc
from kernel.db import transaction


class Numbering(ArchiverBase):
    """Gives records their 档号 and reserves their index rows."""

    def _assign_codes(self, works: list[Work], now: datetime) -> None:
        """Reuse reserved 档号 of pending rows; number new ones continuously per prefix; reserve rows."""
        s_ = self.settings
        fresh: list[Work] = []
        for w in works:
            row = w.placement.resume
            if row is not None:
                # A crashed run reserved this 档号 at its time: the package (rebuilt or adopted) and the
                # published row keep that time, so the index and the package metadata agree.
                w.code, w.row_id, w.archived_at = row.archival_code, row.id, as_utc(row.archived_at)
            else:
                w.archived_at = now
                fresh.append(w)
        if not fresh:
            return
        rows = []
        with transaction(self.sessions) as s:
            next_no: dict[str, int] = {}
            for w in fresh:
                prefix = code_prefix(s_.archive_fonds, s_.archive_category, now.year, w.retention)
                if prefix not in next_no:
                    next_no[prefix] = index.last_item_number(s, prefix) + 1
                w.code = make_archival_code(s_.archive_fonds, s_.archive_category, now.year, w.retention,
                                            next_no[prefix], s_.archive_item_digits)
                next_no[prefix] += 1
                rec = w.inp.record
                kind, reason = declared_reissue(rec) or ("", "")
                rows.append({
                    "archival_code": w.code, "licence_id": rec.get("licence_id", ""),
                    "licence_number": rec.get("licence_number", ""), "licence_type": rec.get("licence_type", ""),
                    "holder_name": rec.get("holder_name", ""), "holder_code": rec.get("holder_code", ""),
                    "batch_id": "", "archived_at": now, "retention": w.retention,
                    "retain_until": retain_until(w.retention, now), "object_key": package_key(w.code),
                    "object_version": "", "package_sm3": "", "package_size": 0, "document_name": w.inp.file_name,
                    "document_sm3": w.actual_sm3, "manifest_sm3": "", "batch_manifest_key": "",
                    "supersedes": w.supersedes or None, "reissue": kind, "reissue_reason": reason,
                })
            index.reserve(s, rows)
        with self.sessions() as s:
            ids = index.ids_by_code(s, (w.code for w in fresh))
        for w in fresh:
            w.row_id = ids[w.code]
