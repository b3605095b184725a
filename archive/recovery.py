"""After a restore: packages the archive holds that the restored index never published.

A backup is a point in time; the archive stores are not restored from it (they are locked, and
replicated). So after a restore they may hold packages archived *after* the backup — documents sealed
and archived in the lost window. They are found by listing both stores against the index and reading
each package's own metadata (档号, 证照标识, batch, time of archiving).

Each one is then held in the index in state ``found``: its 档号 and 证照标识 stay taken, so that the
next archiving run numbers on after it instead of colliding with a locked package under the same key,
and nobody archives that licence again unknowingly. A ``found`` row is not ``archived``: it is not
searchable or served, fixity does not vouch for it, and no filing is queued for it — the restored
database never saw its sealing, approval or audit entries. The operator decides what to do with
those documents (``sealflow backup check`` lists them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from archive.models import ArchiveRecord
from archive.package import PackageError, untar_package
from archive.replica import ReplicatedStore
from archive.store import ObjectStore, StoreError
from gmpki.gm.sm3 import sm3_hex
from kernel.db import transaction

FOUND = "found"
PACKAGE_PREFIX = "packages/"


def _stores(store: ObjectStore | ReplicatedStore) -> list[tuple[str, ObjectStore]]:
    return store.stores() if isinstance(store, ReplicatedStore) else [("primary", store)]


def _describe(key: str, store_name: str, data: bytes) -> dict[str, Any]:
    _folder, files = untar_package(data, key)
    meta = json.loads(files["metadata.json"])
    licence = meta.get("licence", {})
    document = next((f for f in meta.get("files", []) if f.get("role") == "sealed certificate"), {})
    return {"key": key, "store": store_name, "archival_code": meta["archival_code"],
            "licence_id": licence.get("licence_id", ""), "licence_number": licence.get("licence_number", ""),
            "licence_type": licence.get("licence_type", ""), "holder_name": licence.get("holder_name", ""),
            "holder_code": licence.get("holder_code", ""), "batch_id": meta.get("batch_id", ""),
            "archived_at": meta["archived_at"], "retention": meta.get("retention", ""),
            "retain_until": meta.get("retain_until", meta["archived_at"]), "package_sm3": sm3_hex(data),
            "package_size": len(data), "document_name": str(document.get("name", "")).removeprefix("content/"),
            "document_sm3": document.get("sm3", ""),
            "supersedes": str((meta.get("reissue") or {}).get("supersedes", ""))}


def unindexed_packages(store: ObjectStore | ReplicatedStore, sessions: sessionmaker[Session]) -> list[dict]:
    """Every package in either store that the index has no row for, described from its own metadata."""
    with sessions() as s:
        indexed = set(s.scalars(select(ArchiveRecord.object_key)))
    found: dict[str, dict] = {}
    for name, st in _stores(store):
        for obj in st.list(PACKAGE_PREFIX):
            if obj.key in indexed or obj.key in found:
                continue
            try:
                found[obj.key] = _describe(obj.key, name, st.get(obj.key))
            except (StoreError, PackageError, ValueError, KeyError) as exc:
                found[obj.key] = {"key": obj.key, "store": name, "unreadable": str(exc)}
    return sorted(found.values(), key=lambda f: f["key"])


def hold_found(sessions: sessionmaker[Session], found: list[dict]) -> int:
    """Index each readable found package in state ``found`` (see the module docstring); returns how many."""
    rows = []
    for f in found:
        if "unreadable" in f:
            continue
        rows.append({
            "archival_code": f["archival_code"], "licence_id": f["licence_id"], "licence_number": f["licence_number"],
            "licence_type": f["licence_type"], "holder_name": f["holder_name"], "holder_code": f["holder_code"],
            "batch_id": f["batch_id"], "archived_at": _time(f["archived_at"]), "retention": f["retention"],
            "retain_until": _time(f["retain_until"]), "object_key": f["key"], "object_version": "",
            "package_sm3": f["package_sm3"], "package_size": f["package_size"], "document_name": f["document_name"],
            "document_sm3": f["document_sm3"], "manifest_sm3": "", "batch_manifest_key": "", "state": FOUND})
    if rows:
        with transaction(sessions) as s:
            s.execute(insert(ArchiveRecord), rows)
    return len(rows)


def held(sessions: sessionmaker[Session]) -> list[dict]:
    """The rows held as ``found`` (packages archived after the restored backup)."""
    with sessions() as s:
        return [{"archival_code": r.archival_code, "licence_id": r.licence_id, "batch_id": r.batch_id,
                 "archived_at": r.archived_at.isoformat(), "key": r.object_key}
                for r in s.scalars(select(ArchiveRecord).where(ArchiveRecord.state == FOUND)
                                   .order_by(ArchiveRecord.archival_code))]


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)
