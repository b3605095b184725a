"""Container sanity (容器检查): what a file really is, before any 验章 or stamping looks inside it.

One reader for both stamping and verification, so that the two can never disagree about which
document a file holds. The attacks it stops (see the reference's attacks.md, "Polyglots and
wrappers"): a file that is at the same time a PDF and a ZIP (a PDF reader shows one document,
SealFlow verifies the other), and a ZIP that different readers read differently (two archives
concatenated, hidden local entries in a prefix or a gap, trailing data, central directory and local
headers that disagree, ZIP64 or comment games).

Decisions:
- The format is decided by content AND name together: ``.pdf`` must be a PDF, ``.ofd`` an OFD zip;
  a name with another extension is refused; a name without one (bytes handed over in memory,
  ``"<ofd>"``) is judged by content alone.
- A PDF is what PDF readers accept: ``%PDF-`` within the first 1,024 bytes. A ZIP is a local header
  at offset 0, or an end-of-central-directory record anywhere whose central directory is where the
  record says (so the 4 signature bytes appearing by chance inside compressed data do not count,
  while any archive a zip tool would open does). Both at once → refused as ambiguous.
- An OFD zip is exactly one archive from byte 0 to its single EOCD at the very end: the entries,
  sorted by offset, tile the file with no prefix, gap or trailing byte; no ZIP64, no archive or entry
  comments, no multi-disk fields, no extra fields that rename entries; every local header agrees with
  its central directory record (name bytes, flags, method, CRC, sizes — or its data descriptor);
  no duplicate names, also none that differ only in case (readers on Windows file systems merge them).
- Everything is done on the bytes in memory with ``struct``: a few microseconds per entry, no
  decompression (the OFD reader inflates lazily, with its own bomb limits).
"""

from __future__ import annotations

import os.path
import struct
from dataclasses import dataclass

PDF_HEADER = b"%PDF-"
PDF_HEADER_WINDOW = 1024
LOCAL_SIG = b"PK\x03\x04"
CENTRAL_SIG = b"PK\x01\x02"
EOCD_SIG = b"PK\x05\x06"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
DESCRIPTOR_SIG = b"PK\x07\x08"

_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
_EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
_DESCRIPTOR_FLAG = 0x08
_ZIP64_EXTRA = 0x0001
# Info-ZIP Unicode Path / Comment extra fields: some readers show these names instead of the header's.
_RENAMING_EXTRAS = frozenset({0x7075, 0x6375})
SUFFIX_FORMATS = {".pdf": "pdf", ".ofd": "ofd"}


class ContainerError(ValueError):
    """The file is not one unambiguous PDF or OFD container: names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(slots=True)
class ZipEntry:
    """One entry as the central directory and its local header (which agree) describe it."""

    raw_name: bytes
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    compress_size: int
    file_size: int
    header_offset: int
    data_offset: int  # first byte of the stored (compressed) data
    end: int  # one past the entry's last byte (data descriptor included)

    @property
    def date_time(self) -> tuple[int, int, int, int, int, int]:
        d, t = self.dos_date, self.dos_time
        return ((d >> 9) + 1980, (d >> 5) & 0xF, d & 0x1F, t >> 11, (t >> 5) & 0x3F, (t & 0x1F) * 2)


# -- what the bytes are ---------------------------------------------------------------------------
def looks_like_pdf(data: bytes) -> bool:
    return PDF_HEADER in data[:PDF_HEADER_WINDOW]


def _plausible_eocd(data: bytes, pos: int) -> bool:
    """An EOCD signature at ``pos`` that a zip tool would follow: its central directory starts with a
    central header, either at the offset it names or right before the record (an archive with a prefix)."""
    if pos + _EOCD.size > len(data):
        return False
    _sig, _disk, _cd_disk, _n_disk, n_total, cd_size, cd_offset, _comment = _EOCD.unpack_from(data, pos)
    if n_total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        return True  # ZIP64 markers: the real values are elsewhere; treat as an archive
    if n_total == 0:
        return False  # an empty archive shows nothing
    starts = {cd_offset, pos - cd_size}
    return any(0 <= s < pos and data[s:s + 4] == CENTRAL_SIG for s in starts)


def eocd_positions(data: bytes) -> list[int]:
    """Offsets of every plausible end-of-central-directory record in the file (a ZIP64 archive has one
    too, with 0xFFFF.. markers, which count as plausible)."""
    found = []
    pos = data.find(EOCD_SIG)
    while pos != -1:
        if _plausible_eocd(data, pos):
            found.append(pos)
        pos = data.find(EOCD_SIG, pos + 1)
    return found


def looks_like_zip(data: bytes) -> bool:
    return data.startswith(LOCAL_SIG) or bool(eocd_positions(data))


def detect_format(data: bytes, path: str) -> str:
    """``"pdf"`` or ``"ofd"`` from the content; ContainerError for neither or both."""
    is_pdf, is_zip = looks_like_pdf(data), looks_like_zip(data)
    if is_pdf and is_zip:
        raise ContainerError(path, "ambiguous file: it is both a PDF (%PDF- header in the first 1,024 bytes) "
                                   "and a ZIP archive; refused (a reader could show a different document "
                                   "from the one verified)")
    if is_pdf:
        return "pdf"
    if is_zip:
        return "ofd"
    raise ContainerError(path, "not an OFD or PDF file")


def format_from_name(path: str) -> str | None:
    """The format the name promises: ``pdf``/``ofd``; None for names without an extension."""
    if not path or path.startswith("<"):
        return None
    suffix = os.path.splitext(path)[1].lower()
    if not suffix:
        return None
    if suffix not in SUFFIX_FORMATS:
        raise ContainerError(path, f"extension {suffix!r} is neither .ofd nor .pdf; rename the file to what it is")
    return SUFFIX_FORMATS[suffix]


def identify(data: bytes, path: str, expected: str | None = None) -> str:
    """The one format of a document (``pdf``/``ofd``) after the content/name checks; for ``ofd`` the
    zip layout is checked too. ``expected`` is the format the caller is about to open it as."""
    actual = detect_format(data, path)
    named = format_from_name(path)
    if named is not None and named != actual:
        raise ContainerError(path, f"named .{named} but the content is {'a PDF' if actual == 'pdf' else 'an OFD/ZIP'}"
                                   "; rename it to what it is or ask the sender for the right file")
    if expected is not None and expected != actual:
        raise ContainerError(path, f"not {'a PDF' if expected == 'pdf' else 'an OFD'} file "
                                   f"(the content is {'a PDF' if actual == 'pdf' else 'a ZIP archive'})")
    return actual


# -- one archive, read one way --------------------------------------------------------------------
def _extras(blob: bytes) -> list[int]:
    """The header ids of an extra-field block; a block that does not parse is refused by the caller."""
    ids, i = [], 0
    while i + 4 <= len(blob):
        hid, size = struct.unpack_from("<HH", blob, i)
        ids.append(hid)
        i += 4 + size
    if i != len(blob):
        raise ValueError("malformed extra field")
    return ids


def _check_extra(blob: bytes, where: str, path: str) -> None:
    try:
        ids = _extras(blob)
    except ValueError:
        raise ContainerError(path, f"{where}: malformed extra field") from None
    if _ZIP64_EXTRA in ids:
        raise ContainerError(path, f"{where}: ZIP64 extra field (OFD packages never need ZIP64)")
    if _RENAMING_EXTRAS & set(ids):
        raise ContainerError(path, f"{where}: Unicode path/comment extra field (readers may show another name)")


def _end_record(data: bytes, path: str) -> tuple[int, int, int]:
    """(entries, central directory size, offset) of the single EOCD, which must end the file."""
    pos = len(data) - _EOCD.size
    if pos < 0 or data[pos:pos + 4] != EOCD_SIG:
        raise ContainerError(path, "the ZIP does not end with its end-of-central-directory record "
                                   "(trailing data or an archive comment)")
    others = [p for p in eocd_positions(data) if p != pos]
    if _zip64_locator_before(data, pos):
        raise ContainerError(path, "ZIP64 archive (OFD packages never need ZIP64)")
    if others:
        raise ContainerError(path, f"more than one end-of-central-directory record (at {[*others, pos]}): "
                                   "concatenated or nested archives are refused")
    _sig, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, comment = _EOCD.unpack_from(data, pos)
    if comment:
        raise ContainerError(path, "archive comment present (trailing data)")
    if disk or cd_disk or n_disk != n_total:
        raise ContainerError(path, "multi-disk ZIP fields are refused")
    if n_total == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        raise ContainerError(path, "ZIP64 archive (OFD packages never need ZIP64)")
    if cd_offset + cd_size != pos:
        raise ContainerError(path, "the central directory does not end where the end record starts "
                                   "(gap, prefix or a second archive)")
    return n_total, cd_size, cd_offset


def _zip64_locator_before(data: bytes, eocd: int) -> bool:
    return data[eocd - 20:eocd - 16] == ZIP64_LOCATOR_SIG if eocd >= 20 else False


def _local_entry(data: bytes, c: tuple, raw_name: bytes, path: str) -> ZipEntry:
    """Read the local header the central record points at and check that both agree."""
    (_sig, _made, _need, flags, method, dtime, ddate, crc, csize, usize, _n, _m, _k, _disk, _iattr,
     _eattr, offset) = c
    shown = raw_name.decode("utf-8", "replace")
    if offset + _LOCAL.size > len(data) or data[offset:offset + 4] != LOCAL_SIG:
        raise ContainerError(path, f"entry {shown!r}: no local header at offset {offset}")
    (_lsig, _lneed, lflags, lmethod, _ltime, _ldate, lcrc, lcsize, lusize, ln, lm) = _LOCAL.unpack_from(data, offset)
    name_end = offset + _LOCAL.size + ln
    if data[offset + _LOCAL.size:name_end] != raw_name:
        raise ContainerError(path, f"entry {shown!r}: local header names another file "
                                   f"({data[offset + _LOCAL.size:name_end].decode('utf-8', 'replace')!r})")
    _check_extra(data[name_end:name_end + lm], f"entry {shown!r} (local header)", path)
    if lflags != flags or lmethod != method:
        raise ContainerError(path, f"entry {shown!r}: local header flags/compression differ from the directory")
    begin = name_end + lm
    end = begin + csize
    if end > len(data):
        raise ContainerError(path, f"entry {shown!r} extends past the end of the file")
    if flags & _DESCRIPTOR_FLAG:
        if method == 0 and (lcsize, lusize) != (csize, usize):
            # A stored entry without sizes: a streaming reader must scan for the descriptor signature,
            # which the data itself can contain — and then sees the rest as further entries.
            raise ContainerError(path, f"entry {shown!r}: stored entry without sizes in its local header")
        if (lcrc, lcsize, lusize) not in ((0, 0, 0), (crc, csize, usize)):
            raise ContainerError(path, f"entry {shown!r}: local header CRC/sizes differ from the directory")
        end = _descriptor_end(data, end, (crc, csize, usize), shown, path)
    elif (lcrc, lcsize, lusize) != (crc, csize, usize):
        raise ContainerError(path, f"entry {shown!r}: local header CRC/sizes differ from the directory")
    return ZipEntry(raw_name, flags, method, dtime, ddate, crc, csize, usize, offset, begin, end)


def _descriptor_end(data: bytes, at: int, expected: tuple[int, int, int], shown: str, path: str) -> int:
    """A data descriptor (with or without its optional signature) must repeat the directory's values."""
    start = at + 4 if data[at:at + 4] == DESCRIPTOR_SIG else at
    if start + 12 > len(data) or struct.unpack_from("<III", data, start) != expected:
        raise ContainerError(path, f"entry {shown!r}: data descriptor differs from the directory")
    return start + 12


def read_zip_layout(data: bytes, path: str) -> list[ZipEntry]:
    """The entries of an OFD zip in central-directory order, after every layout rule above;
    ContainerError names the first rule broken."""
    if not data.startswith(LOCAL_SIG):
        raise ContainerError(path, "the ZIP does not start with a local file header at offset 0 (prefix data)")
    if looks_like_pdf(data):
        raise ContainerError(path, "ambiguous file: it is both a ZIP archive and a PDF (%PDF- header in the "
                                   "first 1,024 bytes); refused")
    n_total, cd_size, cd_offset = _end_record(data, path)
    entries: list[ZipEntry] = []
    names: dict[str, bytes] = {}
    i, cd_end = cd_offset, cd_offset + cd_size
    while i < cd_end:
        if i + _CENTRAL.size > cd_end or data[i:i + 4] != CENTRAL_SIG:
            raise ContainerError(path, f"malformed central directory at offset {i}")
        c = _CENTRAL.unpack_from(data, i)
        n, m, k = c[10], c[11], c[12]
        raw_name = data[i + _CENTRAL.size:i + _CENTRAL.size + n]
        shown = raw_name.decode("utf-8", "replace")
        if k:
            raise ContainerError(path, f"entry {shown!r}: entry comment present (data hidden in the directory)")
        _check_extra(data[i + _CENTRAL.size + n:i + _CENTRAL.size + n + m], f"entry {shown!r}", path)
        if c[13]:
            raise ContainerError(path, f"entry {shown!r}: multi-disk ZIP fields are refused")
        i += _CENTRAL.size + n + m + k
        key = shown.rstrip("/").casefold()
        if key in names:
            raise ContainerError(path, f"duplicate entry name {shown!r}"
                                       + ("" if names[key] == raw_name else " (differs only in case)"))
        names[key] = raw_name
        entries.append(_local_entry(data, c, raw_name, path))
    if i != cd_end or len(entries) != n_total:
        raise ContainerError(path, f"the central directory lists {len(entries)} entries, the end record {n_total}")
    _check_tiling(entries, cd_offset, path)
    return entries


def _check_tiling(entries: list[ZipEntry], cd_offset: int, path: str) -> None:
    """Sorted by offset, the entries must cover [0, cd_offset) exactly: no prefix, gap or overlap."""
    at = 0
    for e in sorted(entries, key=lambda e: e.header_offset):
        shown = e.raw_name.decode("utf-8", "replace")
        if e.header_offset != at:
            kind = "overlaps the previous entry" if e.header_offset < at else f"follows {e.header_offset - at} " \
                "bytes that belong to no entry (hidden data)"
            raise ContainerError(path, f"entry {shown!r} at offset {e.header_offset} {kind}")
        at = e.end
    if at != cd_offset:
        raise ContainerError(path, f"{cd_offset - at} bytes between the last entry and the central directory "
                                   "belong to no entry (hidden data)")
