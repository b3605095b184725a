"""A minimal zip writer that can copy members' compressed bytes verbatim.

Stamping must keep every original part byte for byte and be fast; copying the stored deflate
streams (no inflate/deflate round trip) gives both. No zip64: OFD packages are far below 4 GiB
and the reader's limits refuse anything near it.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_UTF8 = 0x800


def _dos_time(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    y = min(max(y, 1980), 2107)
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def _window_bits(size: int) -> int:
    """The smallest deflate window (2**9 … 2**15 bytes) that holds ``size`` bytes: the same matches can be
    found, and zlib need not set up (and the kernel zero) 256 KB of state for a 1 KB XML part."""
    return min(15, max(9, (size - 1).bit_length()))


class ZipBuilder:
    def __init__(self, date_time: tuple[int, int, int, int, int, int] | None = None) -> None:
        self._buf = bytearray()
        self._central = bytearray()
        self._count = 0
        self._names: set[str] = set()
        self._now = date_time or time.localtime()[:6]

    def _entry(self, name: str, method: int, crc: int, csize: int, usize: int, raw: bytes,
               date_time: tuple[int, int, int, int, int, int] | None) -> None:
        if name in self._names:
            raise ValueError(f"duplicate zip entry {name}")
        self._names.add(name)
        encoded = name.encode("utf-8")
        flags = 0 if name.isascii() else _UTF8
        dtime, ddate = _dos_time(date_time or self._now)
        offset = len(self._buf)
        if offset > 0xFFFFFFFF or csize > 0xFFFFFFFF or usize > 0xFFFFFFFF:
            raise ValueError("package too large for a non-zip64 archive")
        self._buf += _LOCAL.pack(b"PK\x03\x04", 20, flags, method, dtime, ddate, crc, csize, usize,
                                 len(encoded), 0)
        self._buf += encoded
        self._buf += raw
        self._central += _CENTRAL.pack(b"PK\x01\x02", 20, 20, flags, method, dtime, ddate, crc, csize,
                                       usize, len(encoded), 0, 0, 0, 0, 0, offset)
        self._central += encoded
        self._count += 1

    def add_raw(self, name: str, info: zipfile.ZipInfo, raw: bytes) -> None:
        """Copy an entry's compressed bytes as they were (CRC and sizes from the source)."""
        self._entry(name, info.compress_type, info.CRC, info.compress_size, info.file_size, raw,
                    info.date_time)

    def add(self, name: str, data: bytes, compress: bool = True) -> None:
        if compress:
            raw = zlib.compress(data, 6, -_window_bits(len(data)))
            method = zipfile.ZIP_DEFLATED
        else:
            raw, method = data, zipfile.ZIP_STORED
        self._entry(name, method, zlib.crc32(data), len(raw), len(data), raw, None)

    def finish(self) -> bytes:
        cd_offset = len(self._buf)
        out = self._buf + self._central
        out += _END.pack(b"PK\x05\x06", 0, 0, self._count, self._count, len(self._central), cd_offset, 0)
        return bytes(out)
