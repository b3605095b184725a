"""A package's tar is written directly (archive.package.tar_folder): the same bytes as Python's tarfile
writes in pax format, and read back as it was put in."""

from __future__ import annotations

import io
import tarfile
from datetime import UTC, datetime

import pytest

from archive.package import tar_folder, untar_package

ARCHIVED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def _tarfile_pax(folder: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(files):
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime, info.mode = len(files[name]), int(ARCHIVED_AT.timestamp()), 0o444
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


@pytest.mark.parametrize(("folder", "files"), [
    ("X001-ZZ-2026-D30-000001", {"content/营业执照-000001.pdf": b"%PDF-1.7 " * 5000, "metadata.json": b"{}",
                                 "checks.json": b"", "manifest-sm3.txt": b"a" * 512}),
    ("plain", {"b.txt": b"x" * 511, "c.txt": b"y" * 512, "d.txt": b"z" * 513}),
    ("F" * 90, {"n" * 40: b"a name over the 100 bytes of the ustar field"}),
    ("档案" * 30, {"名" * 60: b"a pax path record of three-digit length"}),
])
def test_the_tar_is_what_tarfile_writes_and_reads_back_as_put_in(folder: str, files: dict[str, bytes]) -> None:
    data = tar_folder(folder, files, ARCHIVED_AT)
    assert data == _tarfile_pax(folder, files)
    assert untar_package(data, "test") == (folder, files)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert {m.mode for m in tf} == {0o444} and {m.mtime for m in tf} == {int(ARCHIVED_AT.timestamp())}


def test_a_name_that_is_not_utf8_text_is_still_recorded_as_tarfile_would() -> None:
    files = {"bad-\udcff.pdf": b"%PDF"}
    assert tar_folder("d", files, ARCHIVED_AT) == _tarfile_pax("d", files)
