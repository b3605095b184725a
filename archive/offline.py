"""Offline verification of a downloaded archival package: only the folder and a trusted root.

A downloaded package is the record's folder (see :mod:`archive.package`) with the archiving run's
signed manifest in ``_batch/``. Checked: every file against the record manifest (SM3), no foreign
files, the record manifest against the signed run manifest, the registration form, the archiving
unit's SM2 signature and its certificate chain to the root, and every seal of the document (验章).
Every problem names the file it concerns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import x509

from archive.package import (
    BATCH_CERT,
    BATCH_CHAIN,
    BATCH_DIR,
    BATCH_MANIFEST,
    BATCH_REGISTRATION,
    BATCH_SIGNATURE,
    MANIFEST_NAME,
    PackageError,
    package_slug,
    parse_manifest,
)
from gmpki.gm.sm2 import SM2PublicKey
from gmpki.gm.sm3 import sm3_hex

MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass
class Problem:
    file: str
    reason: str


@dataclass
class PackageVerification:
    folder: str
    archival_code: str = ""
    problems: list[Problem] = field(default_factory=list)
    documents: list[dict] = field(default_factory=list)
    signer: str = ""
    supersedes: str = ""  # a 换发/补发: the 档号 its metadata (covered by the manifest) says it supersedes

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, file: str, reason: str) -> None:
        self.problems.append(Problem(file, reason))

    def to_json(self) -> dict:
        return {"folder": self.folder, "archival_code": self.archival_code, "ok": self.ok, "signer": self.signer,
                "supersedes": self.supersedes,
                "problems": [{"file": p.file, "reason": p.reason} for p in self.problems],
                "documents": self.documents}


def _read(path: Path) -> bytes:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PackageError(str(path), "file too large")
    return path.read_bytes()


def _files(folder: Path) -> set[str]:
    out = set()
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            out.add(rel)  # reported as foreign: packages hold regular files only
        elif p.is_file() and not rel.startswith(BATCH_DIR + "/"):
            out.add(rel)
    return out


def verify_package(folder: Path, trust, *, check_seals: bool = True) -> PackageVerification:
    """Verify one downloaded package folder. ``trust`` is a TrustStore (the archive's trusted roots)."""
    res = PackageVerification(str(folder))
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PackageError(str(folder), f"not an archival package (no {MANIFEST_NAME})")
    manifest_bytes = _read(manifest_path)
    try:
        listed = parse_manifest(manifest_bytes, MANIFEST_NAME)
    except (PackageError, UnicodeDecodeError) as exc:
        res.fail(MANIFEST_NAME, f"unreadable: {exc}")
        return res
    # 1. every file as listed, nothing else
    for name, digest in sorted(listed.items()):
        p = folder / name
        if not p.is_file() or p.is_symlink():
            res.fail(name, "missing from the package")
        elif sm3_hex(_read(p)) != digest:
            res.fail(name, "altered: its SM3 differs from the package manifest")
    for name in sorted(_files(folder) - set(listed) - {MANIFEST_NAME}):
        res.fail(name, "foreign file: not in the package manifest")
    # 2. metadata → 档号
    try:
        meta = json.loads(_read(folder / "metadata.json"))
        res.archival_code = str(meta.get("archival_code", ""))
        res.supersedes = str((meta.get("reissue") or {}).get("supersedes", ""))
        archived_at = datetime.fromisoformat(meta["archived_at"])
    except (OSError, ValueError, KeyError) as exc:
        res.fail("metadata.json", f"unreadable: {exc}")
        archived_at = datetime.now(UTC)
    # 3. the run's signed manifest (its CA certificates join the given roots: chains still must end there)
    trust = _with_chain(trust, folder / BATCH_DIR / BATCH_CHAIN, res)
    _check_batch(folder / BATCH_DIR, manifest_bytes, res, trust, archived_at)
    # 4. every seal of every document
    if check_seals:
        from stamping.verify.dispatch import verify_file

        for name in sorted(n for n in listed if n.startswith("content/")):
            if not (folder / name).is_file():
                continue
            doc = verify_file(folder / name, trust)
            res.documents.append({"file": name, "valid": doc.valid, "seals": len(doc.signatures)})
            if not doc.valid:
                failed = [f"{c.name}: {c.reason}" for s in doc.signatures for c in s.checks if not c.ok]
                res.fail(name, "seal verification failed: " + ("; ".join(failed) or doc.error or "no seal"))
    return res


def _with_chain(trust, chain_path: Path, res: PackageVerification):
    if trust is None or not chain_path.is_file():
        return trust
    from gmpki.pki.trust import TrustStore, read_certificates

    data = _read(chain_path)
    if not data.strip():  # no CA certificate between root and signers: nothing to add (signed as such)
        return trust
    try:
        certs = read_certificates(data)
        return TrustStore(trust.roots, certs)
    except Exception as exc:
        res.fail(f"{BATCH_DIR}/{BATCH_CHAIN}", f"unreadable: {exc}")
        return trust


def _check_batch(bdir: Path, manifest_bytes: bytes, res: PackageVerification, trust, archived_at: datetime) -> None:
    paths = {n: bdir / n for n in (BATCH_MANIFEST, BATCH_SIGNATURE, BATCH_CERT, BATCH_REGISTRATION)}
    for n, p in paths.items():
        if not p.is_file():
            res.fail(f"{BATCH_DIR}/{n}", "missing: the package cannot be tied to its signed run manifest")
            return
    batch_bytes = _read(paths[BATCH_MANIFEST])
    try:
        entries = parse_manifest(batch_bytes, BATCH_MANIFEST)
    except (PackageError, UnicodeDecodeError) as exc:
        res.fail(f"{BATCH_DIR}/{BATCH_MANIFEST}", f"unreadable: {exc}")
        return
    own = f"{package_slug(res.archival_code)}/{MANIFEST_NAME}"
    if entries.get(own) != sm3_hex(manifest_bytes):
        res.fail(MANIFEST_NAME, "not the package manifest the signed run manifest lists")
    for name in (BATCH_REGISTRATION, BATCH_CHAIN):
        p = bdir / name
        if name in entries and (not p.is_file() or entries[name] != sm3_hex(_read(p))):
            res.fail(f"{BATCH_DIR}/{name}", "missing or altered: its SM3 differs from the run manifest")
    cert = _read(paths[BATCH_CERT])
    signature = _read(paths[BATCH_SIGNATURE])
    try:
        key = SM2PublicKey.from_certificate(cert)
    except Exception as exc:
        res.fail(f"{BATCH_DIR}/{BATCH_CERT}", f"not a usable SM2 certificate: {exc}")
        return
    if not key.verify(signature, batch_bytes):
        res.fail(f"{BATCH_DIR}/{BATCH_SIGNATURE}", "the archiving unit's SM2 signature does not verify")
    try:
        res.signer = x509.Certificate.load(cert).subject.human_friendly
    except Exception:
        res.signer = ""
    if trust is None:
        res.fail(f"{BATCH_DIR}/{BATCH_CERT}", "no trusted root given: the archiving unit cannot be trusted")
        return
    chain = trust.validate(cert, archived_at)
    if not chain.ok:
        res.fail(f"{BATCH_DIR}/{BATCH_CERT}", f"certificate not trusted: {chain.reason}")
