"""Fixity of the two copies of the archive (primary and replica) and their repair (副本修复).

Every locked object — each record's package, each run folder's signed files, each audit anchor — is
read from both stores. A copy is **good** when its digest matches what was signed:

* a package: its SM3 equals the index's, and its own manifest is the one the run's signed manifest
  lists (the run manifest is good when its SM3 equals the index's and the archiving unit's signature
  over it verifies) — checked in full before a copy is used to repair the other;
* a run folder's file: the manifest as above; the registration form and the CA chain by the SM3 the
  good manifest lists; the signature and the certificate when the signature verifies over the good
  manifest with that certificate;
* an audit anchor: its body parses and the audit key's signature over it verifies.

A missing, unreadable or differing copy is repaired from a good one: the good bytes are written as a
new current version, with the good copy's metadata and the **same** Object Lock retain-until
(COMPLIANCE). Never the other way round: a good copy is never written over, and nothing is ever
deleted (a damaged version under lock stays, below the repaired one). When the primary is repaired,
the index takes the new version id (retrieval pins versions). Each repair is one audit entry
(``archive.repair``), in the same transaction as the index change. With no good copy at all the
object is reported ``lost``: nothing is written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from archive import index
from archive.models import ArchiveRecord, ArchiveRun
from archive.package import (
    BATCH_CERT,
    BATCH_CHAIN,
    BATCH_MANIFEST,
    BATCH_REGISTRATION,
    BATCH_SIGNATURE,
    MANIFEST_NAME,
    PackageError,
    package_slug,
    parse_manifest,
    untar_package,
)
from archive.replica import ReplicatedStore
from archive.store import ObjectMissing, ObjectStore, StoreError
from gmpki.gm.sm3 import sm3_hex
from kernel.db import transaction

ACTOR = "archive-fixity"
ACTION = "archive.repair"
ANCHOR_PREFIX = "audit-anchors/"


@dataclass
class Copy:
    """One store's current copy of a key: its bytes, or why there are none."""

    store: str
    data: bytes | None = None
    problem: str = ""  # "" | missing | unreadable
    reason: str = ""
    version: str | None = None  # a pinned version (the index's), not the current one


@dataclass
class CopiesReport:
    checked: int = 0
    problems: list[dict] = field(default_factory=list)  # every bad copy found, with "repaired": bool

    @property
    def unrepaired(self) -> list[dict]:
        return [p for p in self.problems if not p.get("repaired")]

    def to_json(self) -> dict:
        return {"objects_checked": self.checked, "bad_copies": len(self.problems),
                "repaired": sum(1 for p in self.problems if p.get("repaired")), "unrepaired": len(self.unrepaired),
                "problems": self.problems}


def _read(name: str, store: ObjectStore, key: str, version: str | None = None) -> Copy:
    try:
        return Copy(name, store.get(key, version), version=version)
    except ObjectMissing:
        return Copy(name, None, "missing", "no current object")
    except StoreError as exc:
        return Copy(name, None, "unreadable", exc.reason)
    except Exception as exc:  # a store that is down: the copy cannot be read
        return Copy(name, None, "unreadable", f"{type(exc).__name__}: {exc}")


class CopyChecker:
    """Checks and repairs the copies of one replicated archive (see the module docstring)."""

    def __init__(self, store: ReplicatedStore, sessions: sessionmaker[Session], *, repair: bool = True,
                 audit: Any = None, audit_key: Any = None) -> None:
        self.store = store
        self.sessions = sessions
        self.repair = repair
        self.audit = audit  # an AuditLog (stamping.audit.log): one entry per repair
        self.audit_key = audit_key  # SM2PublicKey of the audit key: judges anchor copies
        self.report = CopiesReport()
        self._signed: dict[str, dict[str, str] | None] = {}
        self._runs: dict[str, ArchiveRun] = {}

    # -- the pass ---------------------------------------------------------------------------
    def run(self, batch_size: int = 200) -> CopiesReport:
        with self.sessions() as s:
            self._runs = {r.manifest_key: r for r in s.scalars(select(ArchiveRun))}
        for run in self._runs.values():
            self._check_run_folder(run)
        after = 0
        while True:
            with self.sessions() as s:
                rows = index.iter_archived(s, after, batch_size)
            if not rows:
                break
            after = rows[-1].id
            for row in rows:
                self._check_package(row)
        self._check_anchors()
        return self.report

    # -- packages ---------------------------------------------------------------------------
    def _check_package(self, row: ArchiveRecord) -> None:
        self.report.checked += 1
        copies = [_read(name, st, row.object_key) for name, st in self.store.stores()]

        def good(data: bytes) -> bool:
            return sm3_hex(data) == row.package_sm3 and len(data) == row.package_size

        bad = [c for c in copies if c.data is None or not good(c.data)]
        if not bad:
            return
        sources = [c for c in copies if c.data is not None and good(c.data)]
        if row.object_version:  # the archived version the index pins, when the current one is not it
            pinned = _read("primary", self.store.primary, row.object_key, row.object_version)
            if pinned.data is not None and good(pinned.data):
                sources.append(pinned)
        entries = self._signed_entries(row.batch_manifest_key)
        source = next((c for c in sources if entries is not None and self._package_signed(c.data, row, entries)),
                      None)
        for copy in bad:
            self._repair(copy, row.object_key, source, row, why="package")

    def _package_signed(self, data: bytes | None, row: ArchiveRecord, entries: dict[str, str]) -> bool:
        """The package's own manifest is the one the signed run manifest lists, and every file matches it."""
        if data is None:
            return False
        try:
            _folder, files = untar_package(data, row.object_key)
            manifest = files.get(MANIFEST_NAME, b"")
            if entries.get(f"{package_slug(row.archival_code)}/{MANIFEST_NAME}") != sm3_hex(manifest):
                return False
            listed = parse_manifest(manifest, row.object_key)
            return all(n in files and sm3_hex(files[n]) == d for n, d in listed.items())
        except (PackageError, ValueError, KeyError):
            return False

    # -- run folders ------------------------------------------------------------------------
    def _signed_entries(self, manifest_key: str) -> dict[str, str] | None:
        """The entries of the run's signed manifest, from a copy whose SM3 is the index's and whose
        signature verifies; None when no copy is good."""
        if manifest_key not in self._signed:
            self._signed[manifest_key] = self._find_signed(manifest_key)
        return self._signed[manifest_key]

    def _find_signed(self, manifest_key: str) -> dict[str, str] | None:
        run = self._runs.get(manifest_key)
        if run is None:
            return None
        folder = manifest_key.rsplit("/", 1)[0] + "/"
        for _name, st in self.store.stores():
            manifest = _read("", st, manifest_key).data
            if manifest is None or sm3_hex(manifest) != run.manifest_sm3:
                continue
            for _n2, st2 in self.store.stores():  # the signature and certificate may be good in either store
                cert, sig = _read("", st2, folder + BATCH_CERT).data, _read("", st2, folder + BATCH_SIGNATURE).data
                if cert and sig and _verifies(cert, sig, manifest):
                    try:
                        return {**parse_manifest(manifest, manifest_key), "": manifest.decode("utf-8")}
                    except (PackageError, UnicodeDecodeError):
                        return None
        return None

    def _check_run_folder(self, run: ArchiveRun) -> None:
        folder = run.manifest_key.rsplit("/", 1)[0] + "/"
        entries = self._signed_entries(run.manifest_key)
        manifest = entries[""].encode("utf-8") if entries else None
        for name in (BATCH_MANIFEST, BATCH_REGISTRATION, BATCH_CHAIN, BATCH_SIGNATURE, BATCH_CERT):
            key = folder + name
            self.report.checked += 1
            copies = [_read(n, st, key) for n, st in self.store.stores()]
            if manifest is None:
                judge: Callable[[bytes], bool] = lambda _d: False  # noqa: E731 - nothing signed to judge by
            elif name == BATCH_MANIFEST:
                judge = lambda d: d == manifest  # noqa: E731
            elif name in (BATCH_REGISTRATION, BATCH_CHAIN):
                judge = lambda d, n=name: entries.get(n) == sm3_hex(d)  # noqa: E731
            else:
                judge = self._pair_judge(folder, name, manifest)
            if manifest is None:
                # Without a good signed manifest a copy cannot be judged: only copies that differ are reported.
                datas = {c.data for c in copies}
                if len(datas) == 1 and None not in datas:
                    continue
            bad = [c for c in copies if c.data is None or not judge(c.data)]
            source = next((c for c in copies if c.data is not None and judge(c.data)), None)
            for copy in bad:
                self._repair(copy, key, source, None, why="run folder")

    def _pair_judge(self, folder: str, name: str, manifest: bytes) -> Callable[[bytes], bool]:
        """Signature or certificate: good when some copy of the other half makes the pair verify."""
        other = BATCH_CERT if name == BATCH_SIGNATURE else BATCH_SIGNATURE
        others = [c.data for c in (_read("", st, folder + other) for _n, st in self.store.stores()) if c.data]

        def judge(data: bytes) -> bool:
            pairs = [(data, o) if name == BATCH_CERT else (o, data) for o in others]
            return any(_verifies(cert, sig, manifest) for cert, sig in pairs)

        return judge

    # -- audit anchors ----------------------------------------------------------------------
    def _check_anchors(self) -> None:
        keys: set[str] = set()
        for _name, st in self.store.stores():
            with contextlib.suppress(Exception):  # a store that is down shows as unreadable copies below
                keys |= {o.key for o in st.list(ANCHOR_PREFIX)}
        for key in sorted(keys):
            self.report.checked += 1
            copies = [_read(n, st, key) for n, st in self.store.stores()]
            judge = self._anchor_good
            bad = [c for c in copies if c.data is None or not judge(key, c.data)]
            source = next((c for c in copies if c.data is not None and judge(key, c.data)), None)
            for copy in bad:
                self._repair(copy, key, source, None, why="audit anchor")

    def _anchor_good(self, key: str, data: bytes) -> bool:
        if self.audit_key is None:
            return False
        from stamping.audit.log import checkpoint_message

        try:
            import base64

            body = json.loads(data)
            seq, chain = int(body["seq"]), str(body["chain"])
            signature = base64.b64decode(body["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            return False
        return key.endswith(f"/{seq:012d}.json") and bool(self.audit_key.verify(signature,
                                                                                  checkpoint_message(seq, chain)))

    # -- repair -----------------------------------------------------------------------------
    def _repair(self, copy: Copy, key: str, source: Copy | None, row: ArchiveRecord | None, why: str) -> None:
        problem = copy.problem or "mismatch"
        entry = {"archival_code": row.archival_code if row else "", "key": key, "store": copy.store,
                 "problem": problem, "reason": copy.reason or f"the {copy.store} copy differs from what was signed",
                 "kind": why, "repaired": False}
        self.report.problems.append(entry)
        if source is None:
            entry.update(lost=True, reason=entry["reason"] + "; no good copy in either store: nothing written")
            return
        origin = f"the {source.store} copy" + (f" (version {source.version})" if source.version else "")
        if not self.repair:
            entry["reason"] += f"; repairable from {origin} (run with --repair)"
            return
        stores = dict(self.store.stores())
        try:
            info = stores[source.store].head(key, source.version)
            version = stores[copy.store].restore_copy(key, source.data or b"", retain_until=info.retain_until,
                                                      metadata=info.metadata, content_type=_content_type(key))
        except StoreError as exc:
            entry["reason"] += f"; repair from {origin} failed: {exc.reason}"
            return
        with transaction(self.sessions) as s:
            if row is not None and copy.store == "primary":
                s.get(ArchiveRecord, row.id).object_version = version
            if self.audit is not None:
                self.audit.append(s, actor=ACTOR, action=ACTION, reason=f"{problem} copy of {key} in the {copy.store} "
                                  f"store rewritten from {origin}",
                                  payload={"key": key, "store": copy.store, "problem": problem, "source": source.store,
                                           "version": version, "sm3": sm3_hex(source.data or b""),
                                           "retain_until": info.retain_until.isoformat() if info.retain_until else "",
                                           "archival_code": entry["archival_code"]})
        entry.update(repaired=True, version=version, source=source.store,
                     retain_until=info.retain_until.isoformat() if info.retain_until else "")


def _content_type(key: str) -> str:
    return "application/x-tar" if key.endswith(".tar") else ("application/json" if key.endswith(".json")
                                                              else "application/octet-stream")


def _verifies(cert: bytes, signature: bytes, message: bytes) -> bool:
    from gmpki.gm.sm2 import SM2PublicKey

    try:
        return bool(SM2PublicKey.from_certificate(cert).verify(signature, message))
    except Exception:  # a malformed certificate or signature: not a good copy
        return False


def check_copies(store: ReplicatedStore, sessions: sessionmaker[Session], *, repair: bool = True, audit: Any = None,
                 audit_key: Any = None) -> CopiesReport:
    """Compare both copies of every archived object; repair bad copies from good ones (module docstring)."""
    return CopyChecker(store, sessions, repair=repair, audit=audit, audit_key=audit_key).run()
