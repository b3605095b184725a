"""Archival packages (归档信息包, GB/T 42727 folder style) and the batch's signed SM3 manifest.

One record's package is a folder::

    content/<file>          the sealed certificate (OFD or PDF), as stamped
    metadata.json           电子证照 fields (GB/T 36903), 档号, 保管期限, archiving time, files; for a
                            换发/补发 its kind, reason and the 档号 of the record it supersedes
    metadata.xml            the same metadata in XML
    verification.json       the 验章 result
    checks.json             the 四性检测 report (DA/T 70)
    manifest-sm3.txt        SM3 of every file above (``<hex>  <path>`` lines, sorted)

It is stored as one uncompressed POSIX tar object (an open format, nothing proprietary) so that
a package is written, locked and fetched as a unit. The batch (one archiving run) adds a
registration form (归档登记表: counts and bytes), a manifest of every record's manifest SM3, and
the archiving unit's SM2 signature over that manifest with its certificate.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from lxml import etree

from archive.retention import RETENTION_NAMES
from gmpki.gm.sm3 import sm3_hex

PACKAGE_FORMAT = "SealFlow 归档信息包 1 (GB/T 42727-2023 folder style)"
MANIFEST_NAME = "manifest-sm3.txt"
CHECKS_NAME = "checks.json"
BATCH_DIR = "_batch"
BATCH_MANIFEST = "manifest-sm3.txt"
BATCH_SIGNATURE = "manifest-sm3.txt.sig"
BATCH_CERT = "signer.cer"
BATCH_REGISTRATION = "registration.json"
BATCH_CHAIN = "intermediates.pem"  # CA certificates between the trusted root and the signers
MAX_PACKAGE_BYTES = 512 * 1024 * 1024
MAX_PACKAGE_MEMBERS = 64

# 电子证照 metadata (GB/T 36903): English identifier → Chinese element name.
LICENCE_FIELDS: dict[str, str] = {
    "licence_id": "证照标识", "licence_number": "证照编号", "licence_type": "证照类型名称",
    "licence_type_code": "证照类型代码", "holder_name": "持证主体", "holder_code": "持证主体代码",
    "holder_code_kind": "持证主体代码类型", "issuer_name": "证照颁发机构", "issuer_code": "证照颁发机构代码",
    "issue_date": "证照颁发日期", "valid_from": "有效期起始日期", "valid_until": "有效期截止日期",
    "related_matter": "关联事项名称", "status": "状态",
}


class PackageError(ValueError):
    """A package that cannot be read: names the package and the reason."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def pem_bundle(certs: list[bytes]) -> bytes:
    from asn1crypto import pem

    return b"".join(pem.armor("CERTIFICATE", der) for der in certs)


def package_slug(archival_code: str) -> str:
    """A folder / object-key-safe form of a 档号 (the middle dot becomes a dash)."""
    return archival_code.replace("·", "-")


def manifest_text(files: dict[str, str]) -> bytes:
    """``<sm3 hex>  <path>`` per file, sorted by path, UTF-8, LF."""
    return "".join(f"{files[name]}  {name}\n" for name in sorted(files)).encode()


def parse_manifest(data: bytes, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise PackageError(where, f"manifest line {n} is malformed")
        safe_relpath(name, where)
        out[name] = digest
    return out


def safe_relpath(name: str, where: str) -> str:
    p = PurePosixPath(name)
    if not name or p.is_absolute() or ".." in p.parts or "\\" in name or "\x00" in name:
        raise PackageError(where, f"unsafe path {name!r}")
    return name


@dataclass
class RecordPackage:
    archival_code: str
    files: dict[str, bytes]  # every file of the package, manifest included
    manifest_sm3: str
    tar: bytes
    tar_sm3: str

    @property
    def slug(self) -> str:
        return package_slug(self.archival_code)


def environment() -> dict[str, str]:
    return {"software": "SealFlow", "python": platform.python_version(), "system": platform.system()}


def metadata_dict(*, record: dict[str, str], archival_code: str, retention: str, retain_until: datetime,
                  archived_at: datetime, batch_id: str, document_name: str, document_format: str,
                  document_sm3: str, document_size: int, listed: dict[str, tuple[int, str]],
                  verification_summary: dict, reissue: dict[str, str] | None = None) -> dict:
    """The record's metadata; ``listed`` = name → (size, sm3) of the data files besides the document.

    ``reissue`` ({"kind", "reason", "supersedes"}) only for a 换发/补发: the link to the earlier record is
    written into the new, locked package; the earlier package is never rewritten."""
    files = [{"name": f"content/{document_name}", "size": document_size, "sm3": document_sm3,
              "format": document_format, "role": "sealed certificate"}]
    files += [{"name": n, "size": s, "sm3": d, "format": n.rsplit(".", 1)[-1], "role": "metadata"}
              for n, (s, d) in sorted(listed.items())]
    meta = {
        "package_format": PACKAGE_FORMAT,
        "archival_code": archival_code,
        "retention": retention,
        "retention_name": RETENTION_NAMES.get(retention, retention),
        "retain_until": retain_until.isoformat(),
        "archived_at": archived_at.isoformat(),
        "batch_id": batch_id,
        "licence": {k: record.get(k, "") for k in LICENCE_FIELDS if k in record},
        "verification": verification_summary,
        "environment": environment(),
        "files": files,
    }
    if reissue:
        meta["reissue"] = dict(reissue)
    return meta


def metadata_xml(meta: dict) -> bytes:
    """The metadata in XML with the Chinese element names users know."""
    root = etree.Element("归档信息包元数据")
    for tag, key in (("档号", "archival_code"), ("保管期限", "retention_name"), ("保管期限代码", "retention"),
                     ("保管期限截止", "retain_until"), ("归档时间", "archived_at"), ("批次", "batch_id")):
        etree.SubElement(root, tag).text = str(meta[key])
    if meta.get("reissue"):
        reissue = etree.SubElement(root, "换发补发")
        for tag, key in (("类型", "kind"), ("原因", "reason"), ("被替代档号", "supersedes")):
            etree.SubElement(reissue, tag).text = str(meta["reissue"].get(key, ""))
    licence = etree.SubElement(root, "电子证照")
    for key, value in meta["licence"].items():
        etree.SubElement(licence, LICENCE_FIELDS[key]).text = str(value)
    ver = etree.SubElement(root, "验章结果")
    for key, value in meta["verification"].items():
        etree.SubElement(ver, key).text = str(value)
    files = etree.SubElement(root, "文件")
    for f in meta["files"]:
        etree.SubElement(files, "计算机文件", 名称=f["name"], 大小=str(f["size"]), SM3=f["sm3"], 格式=f["format"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def verification_summary(verification: dict | None) -> dict:
    v = verification or {}
    sigs = v.get("signatures") or []
    return {"valid": bool(v.get("valid")), "intact": bool(v.get("intact")), "trusted": bool(v.get("trusted")),
            "seals": len(sigs), "signers": ", ".join(s.get("signer", "") for s in sigs)[:500]}


def data_files(*, record: dict[str, str], archival_code: str, retention: str, retain_until: datetime,
               archived_at: datetime, batch_id: str, document_name: str, document_format: str,
               document: bytes, document_sm3: str, verification: dict | None,
               reissue: dict[str, str] | None = None) -> dict[str, bytes]:
    """The package's files before the 四性检测 report and the manifest are added."""
    # Compact JSON: indenting switches json to its pure-Python encoder, several times slower.
    ver_bytes = json.dumps(verification or {}, ensure_ascii=False, sort_keys=True).encode()
    common = dict(record=record, archival_code=archival_code, retention=retention, retain_until=retain_until,
                  archived_at=archived_at, batch_id=batch_id, document_name=document_name,
                  document_format=document_format, document_sm3=document_sm3, document_size=len(document),
                  verification_summary=verification_summary(verification), reissue=reissue)
    # metadata.xml lists the files too; build it from a first metadata view without itself.
    listed = {"verification.json": (len(ver_bytes), sm3_hex(ver_bytes))}
    xml = metadata_xml(metadata_dict(listed=listed, **common))
    listed["metadata.xml"] = (len(xml), sm3_hex(xml))
    meta = metadata_dict(listed=listed, **common)
    return {
        f"content/{document_name}": document,
        "verification.json": ver_bytes,
        "metadata.xml": xml,
        "metadata.json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(),
    }


def finish_package(archival_code: str, files: dict[str, bytes], checks: dict, archived_at: datetime,
                   known_sm3: dict[str, str] | None = None) -> RecordPackage:
    """Add the 四性检测 report and the SM3 manifest, and tar the folder (deterministically)."""
    files = dict(files)
    files[CHECKS_NAME] = json.dumps(checks, ensure_ascii=False, sort_keys=True).encode()
    known = known_sm3 or {}
    digests = {name: known.get(name) or sm3_hex(data) for name, data in files.items()}
    manifest = manifest_text(digests)
    files[MANIFEST_NAME] = manifest
    tar = tar_folder(package_slug(archival_code), files, archived_at)
    return RecordPackage(archival_code, files, sm3_hex(manifest), tar, sm3_hex(tar))


def tar_folder(folder: str, files: dict[str, bytes], mtime: datetime) -> bytes:
    """The folder as an uncompressed POSIX (pax) tar: members sorted by name, read-only, one mtime.

    The same bytes as ``tarfile`` writes in ``PAX_FORMAT`` for these members (a test holds it), built
    directly: ``tarfile`` spent ~0.2-0.45 ms per package on Python-level header objects, copies and
    checksums (a quarter of building a package, issue 19). A name that is not valid UTF-8 text is left
    to ``tarfile``, which knows how to record it.
    """
    stamp = int(mtime.timestamp())
    names = sorted(files)
    paths = [f"{folder}/{name}" for name in names]
    if not all(_utf8_text(p) for p in paths):
        return _tar_with_tarfile(paths, [files[n] for n in names], stamp)
    out = bytearray()
    for path, name in zip(paths, names, strict=True):
        data = files[name]
        if not path.isascii() or len(path) > _TAR_NAME_FIELD:
            records = _pax_record("path", path)
            out += _tar_header(b"././@PaxHeader", len(records), 0, 0, b"x")
            out += _padded(records)
        out += _tar_header(path.encode("ascii", "replace"), len(data), stamp, 0o444, b"0")
        out += _padded(data)
    out += bytes(2 * _TAR_BLOCK)
    out += bytes(-len(out) % _TAR_RECORD)
    return bytes(out)


_TAR_BLOCK = 512
_TAR_RECORD = 20 * _TAR_BLOCK  # tar's default blocking factor: the archive ends on a whole record
_TAR_NAME_FIELD = 100


def _tar_header(name: bytes, size: int, mtime: int, mode: int, typeflag: bytes) -> bytes:
    """One ustar header block (uid/gid 0, no user or group names), as ``tarfile`` writes it."""
    if not (0 <= size < 8 ** 11 and 0 <= mtime < 8 ** 11):
        raise PackageError(name.decode("ascii", "replace"), "size or time out of the tar header's range")
    head = b"".join((
        name[:_TAR_NAME_FIELD].ljust(_TAR_NAME_FIELD, b"\0"), b"%07o\0" % mode, b"0000000\0", b"0000000\0",
        b"%011o\0" % size, b"%011o\0" % mtime, b" " * 8, typeflag, bytes(100), b"ustar\x0000",
    )).ljust(_TAR_BLOCK, b"\0")
    return head[:148] + b"%06o\0" % sum(head) + head[155:]


def _pax_record(keyword: str, value: str) -> bytes:
    """``<length> <keyword>=<value>\\n``, the length counting its own digits."""
    body = f" {keyword}={value}\n".encode()
    length = len(body)
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _padded(data: bytes) -> bytes:
    return data + bytes(-len(data) % _TAR_BLOCK)


def _utf8_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (undecodable file-name bytes)
        return False
    return True


def _tar_with_tarfile(paths: list[str], contents: list[bytes], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in zip(paths, contents, strict=True):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o444
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def untar_package(data: bytes, where: str) -> tuple[str, dict[str, bytes]]:
    """(folder name, files) of a package tar; refuses links, traversal, oversize and too many members."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise PackageError(where, "package too large")
    files: dict[str, bytes] = {}
    folder = ""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for n, info in enumerate(tf):
                if n >= MAX_PACKAGE_MEMBERS:
                    raise PackageError(where, "too many members")
                if not info.isfile():
                    raise PackageError(where, f"member {info.name!r} is not a regular file")
                top, _, rest = info.name.partition("/")
                folder = folder or top
                if top != folder or not rest:
                    raise PackageError(where, f"member {info.name!r} outside the package folder")
                safe_relpath(rest, where)
                extracted = tf.extractfile(info)
                files[rest] = extracted.read() if extracted else b""
    except tarfile.TarError as exc:
        raise PackageError(where, f"not a readable package: {exc}") from exc
    return folder, files


def batch_manifest(records: dict[str, str], registration: bytes, chain: bytes) -> bytes:
    """The run's manifest: each record package's manifest SM3, the registration form's and the chain's."""
    entries = {f"{package_slug(code)}/{MANIFEST_NAME}": digest for code, digest in records.items()}
    entries[BATCH_REGISTRATION] = sm3_hex(registration)
    entries[BATCH_CHAIN] = sm3_hex(chain)
    return manifest_text(entries)
