"""A safe reader of OFD packages (OFD 文件包, a zip container, GB/T 33190 §7.1).

OFD files arrive from outside, so the reader refuses anything that could hurt the host:
path traversal, absolute names, backslashes or drive letters, duplicate names, too many
entries, zip bombs (declared sizes AND the bytes actually inflated are counted), encrypted
entries, and XML with a DTD (XXE, billion laughs). Every refusal is an :class:`OfdError`
naming the file and the reason.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass

from lxml import etree

from stamping.container import ContainerError, ZipEntry, identify, read_zip_layout
from stamping.ofd import xmlns

MAX_PACKAGE_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_TOTAL_UNCOMPRESSED = 512 * 1024 * 1024
MAX_ENTRY_UNCOMPRESSED = 256 * 1024 * 1024
# A ratio above this is only plausible for tiny, repetitive members; bombs are big.
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
MAX_XML_BYTES = 64 * 1024 * 1024

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 64 * 1024


class OfdError(ValueError):
    """An OFD package that cannot be read safely or is not a valid OFD: names file and reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_blank_text=False,
)


def parse_xml(data: bytes, path: str, member: str = "") -> etree._Element:
    """Parse untrusted XML: no DTD at all (XXE, entity expansion), no network, no huge trees."""
    where = f"{member}: " if member else ""
    if len(data) > MAX_XML_BYTES:
        raise OfdError(path, f"{where}XML larger than {MAX_XML_BYTES} bytes")
    # A DTD is never needed in OFD; refusing it outright stops XXE and billion laughs.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or b"<\x00!\x00D" in data:
        raise OfdError(path, f"{where}XML with a DTD or entity declarations is refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise OfdError(path, f"{where}malformed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise OfdError(path, f"{where}XML with a DTD is refused")
    return root


def check_member_name(name: str, path: str) -> str:
    """Refuse dangerous entry names; return the name (directories keep their trailing slash)."""
    if not name or "\x00" in name:
        raise OfdError(path, f"empty or NUL in entry name {name!r}")
    if "\\" in name:
        raise OfdError(path, f"backslash in entry name {name!r}")
    if name.startswith("/"):
        raise OfdError(path, f"absolute entry name {name!r}")
    if _DRIVE.match(name):
        raise OfdError(path, f"drive letter in entry name {name!r}")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise OfdError(path, f"path traversal or empty segment in entry name {name!r}")
    return name


def _zip_info(entry: ZipEntry) -> zipfile.ZipInfo:
    """A ZipInfo (what the writer copies from) built from the checked layout, without zipfile's parser."""
    flags = entry.flags
    raw = entry.raw_name
    name = raw.decode("utf-8") if flags & 0x800 else raw.decode("cp437")
    info = zipfile.ZipInfo(name, entry.date_time)
    info.filename = info.orig_filename = name  # ZipInfo() cuts at a NUL; keep it for the name check
    info.flag_bits, info.compress_type, info.CRC = flags, entry.method, entry.crc
    info.compress_size, info.file_size, info.header_offset = entry.compress_size, entry.file_size, entry.header_offset
    return info


def _fix_name(info: zipfile.ZipInfo) -> str:
    """Names without the UTF-8 flag: zipfile decodes them as cp437; producers use UTF-8 or GBK."""
    name = info.filename
    if info.flag_bits & 0x800 or name.isascii():
        return name
    raw = name.encode("cp437")
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return name


@dataclass(frozen=True)
class Member:
    """One file of the package, with what is needed to copy its compressed bytes verbatim."""

    name: str
    info: zipfile.ZipInfo
    data_offset: int = 0  # where its stored bytes start in the package

    @property
    def size(self) -> int:
        return self.info.file_size


class OfdPackage:
    """The members of an OFD zip, checked on open, read lazily with bomb limits.

    Member names are kept as in the zip (``Doc_0/Document.xml``); :meth:`resolve` turns an OFD
    location (absolute ``/Doc_0/...`` or relative to a base folder) into a member name.
    """

    def __init__(self, data: bytes, path: str = "<ofd>") -> None:
        self.path = path
        self.data = data
        if len(data) > MAX_PACKAGE_BYTES:
            raise OfdError(path, f"package larger than {MAX_PACKAGE_BYTES} bytes")
        # Container sanity first (stamping.container): one archive, read one way, by every reader.
        try:
            identify(data, path, expected="ofd")
            entries = read_zip_layout(data, path)
        except ContainerError as exc:
            raise OfdError(path, exc.reason) from None
        if len(entries) > MAX_ENTRIES:
            raise OfdError(path, f"too many entries ({len(entries)} > {MAX_ENTRIES})")
        self.members: dict[str, Member] = {}
        self.directories: list[str] = []
        self.order: list[str] = []  # every entry name, directories too, in zip order
        self._lower: dict[str, str] = {}
        total = 0
        for entry in entries:
            try:
                info = _zip_info(entry)
            except UnicodeDecodeError:
                raise OfdError(path, f"entry name {entry.raw_name!r} is flagged UTF-8 but is not") from None
            name = check_member_name(_fix_name(info), path)
            self.order.append(name)
            if info.flag_bits & 0x41:  # bit 0 encrypted, bit 6 strong encryption
                raise OfdError(path, f"encrypted entry {name!r}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise OfdError(path, f"unsupported compression {info.compress_type} in {name!r}")
            if info.is_dir() or name.endswith("/"):
                self.directories.append(name)
                continue
            if info.file_size > MAX_ENTRY_UNCOMPRESSED:
                raise OfdError(path, f"entry {name!r} too large ({info.file_size} bytes)")
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise OfdError(path, f"entry {name!r} compression ratio too high (zip bomb?)")
            total += info.file_size
            if total > MAX_TOTAL_UNCOMPRESSED:
                raise OfdError(path, f"total uncompressed size over {MAX_TOTAL_UNCOMPRESSED} bytes")
            self.members[name] = Member(name, info, entry.data_offset)
            self._lower.setdefault(name.lower(), name)
        if "OFD.xml" not in self.members:
            raise OfdError(path, "missing OFD.xml (not an OFD package)")
        self._cache: dict[str, bytes] = {}
        self._inflated = 0

    # -- reading -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self.members)

    def __contains__(self, name: str) -> bool:
        return name in self.members

    def read(self, name: str) -> bytes:
        """The member's bytes; the inflated count is checked while decompressing (bombs lie)."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        member = self.members.get(name)
        if member is None:
            raise OfdError(self.path, f"missing part {name}")
        declared = member.info.file_size
        info = member.info
        if info.compress_type == zipfile.ZIP_STORED or info.compress_size < 64 * 1024:
            out = self._read_small(member)
        else:
            out = self._read_streamed(member)
        if len(out) != declared:
            raise OfdError(self.path, f"entry {name!r} size differs from its declared size")
        self._inflated += len(out)
        if self._inflated > MAX_TOTAL_UNCOMPRESSED:
            raise OfdError(self.path, "total inflated size over the limit")
        self._cache[name] = out
        return out

    def raw_entry(self, name: str) -> tuple[zipfile.ZipInfo, bytes]:
        """The member's compressed bytes exactly as stored, to copy without recompressing (the local
        header was checked against the directory when the package was opened)."""
        member = self.members[name]
        raw = self.data[member.data_offset : member.data_offset + member.info.compress_size]
        return member.info, raw

    def _read_small(self, member: Member) -> bytes:
        info, raw = self.raw_entry(member.name)
        limit = info.file_size
        if info.compress_type == zipfile.ZIP_STORED:
            out = raw
        else:
            d = zlib.decompressobj(-15)
            try:
                out = d.decompress(raw, limit + 1)
            except zlib.error as exc:
                raise OfdError(self.path, f"corrupt entry {member.name!r}: {exc}") from None
            if len(out) > limit:
                raise OfdError(self.path, f"entry {member.name!r} inflates beyond its declared size")
            _require_stream_end(d, self.path, member.name)
        if zlib.crc32(out) != info.CRC:
            raise OfdError(self.path, f"CRC mismatch in entry {member.name!r}")
        return out

    def _read_streamed(self, member: Member) -> bytes:
        """Inflate chunk by chunk, stopping as soon as the output outgrows the declared size."""
        info, raw = self.raw_entry(member.name)
        limit = info.file_size
        d = zlib.decompressobj(-15)
        buf = bytearray()
        try:
            for i in range(0, len(raw), _CHUNK):
                buf += d.decompress(raw[i : i + _CHUNK], limit + 1 - len(buf))
                if len(buf) > limit:
                    raise OfdError(self.path, f"entry {member.name!r} inflates beyond its declared size")
                if d.unconsumed_tail:
                    raise OfdError(self.path, f"entry {member.name!r} inflates beyond its declared size")
            buf += d.flush()
            _require_stream_end(d, self.path, member.name)
        except zlib.error as exc:
            raise OfdError(self.path, f"corrupt entry {member.name!r}: {exc}") from None
        if len(buf) > limit:
            raise OfdError(self.path, f"entry {member.name!r} inflates beyond its declared size")
        out = bytes(buf)
        if zlib.crc32(out) != info.CRC:
            raise OfdError(self.path, f"CRC mismatch in entry {member.name!r}")
        return out

    def xml(self, name: str) -> etree._Element:
        return parse_xml(self.read(name), self.path, name)

    def xml_root(self, name: str, tag: str) -> etree._Element:
        """``name`` parsed, refused unless its root is the OFD element ``tag`` (in an accepted namespace)."""
        root = self.xml(name)
        if not xmlns.is_ofd(root, tag):
            raise OfdError(self.path, f"{name}: root is <{xmlns.local(root)}>, not <{tag}>")
        return root

    # -- locations ---------------------------------------------------------------------------
    def resolve(self, loc: str, base: str = "") -> str:
        """An OFD location (ST_Loc) → member name. Absolute ``/x`` is from the package root;
        otherwise relative to ``base`` (a folder). Falls back to a case-insensitive match,
        since some producers' references differ in case from their entries."""
        loc = (loc or "").strip()
        if not loc:
            raise OfdError(self.path, "empty location")
        if "\\" in loc or _DRIVE.match(loc):
            raise OfdError(self.path, f"bad location {loc!r}")
        joined = loc.lstrip("/") if loc.startswith("/") else (f"{base.strip('/')}/{loc}" if base else loc)
        parts: list[str] = []
        for part in joined.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise OfdError(self.path, f"location escapes the package: {loc!r}")
                parts.pop()
                continue
            parts.append(part)
        name = "/".join(parts)
        if name in self.members:
            return name
        return self._lower.get(name.lower(), name)

    def exists(self, loc: str, base: str = "") -> bool:
        return self.resolve(loc, base) in self.members


def _require_stream_end(d, path: str, name: str) -> None:
    """The deflate stream must end exactly at the entry's last stored byte: bytes after its end are
    hidden data that a streaming reader would take for the next entry."""
    if not d.eof or d.unused_data or d.unconsumed_tail:
        raise OfdError(path, f"entry {name!r}: data does not end where its deflate stream ends")


def folder_of(name: str) -> str:
    """The folder of a member name ('' for top level)."""
    return name.rstrip("/").rpartition("/")[0]
