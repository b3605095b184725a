"""A careless or hostile records office's batch folder: every bad row is quarantined with its
reason, the good rows go on, nothing hangs, and only regular files inside the folder are read."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernel.db import make_engine, migrate, session_factory
from kernel.workstore import FolderWorkStore
from stamping.batch import keys, process
from stamping.batch.manifest import check_manifest, read_manifest
from stamping.batch.models import BatchDocument
from stamping.batch.samples import MANIFEST_FIELDS, sample_rows
from stamping.placement import Placement

pytestmark = pytest.mark.timeout(60)  # a FIFO read would block forever: fail, don't hang


def _folder(tmp_path: Path, count: int = 4) -> tuple[Path, list[dict[str, str]]]:
    folder = tmp_path / "batch"
    folder.mkdir()
    rows = sample_rows(count, formats=("pdf",))
    for row in rows:
        (folder / row["file"]).write_bytes(b"%PDF-1.7\n" + row["licence_number"].encode())
    return folder, rows


def _csv(folder: Path, rows: list[dict[str, str]]) -> Path:
    path = folder / "manifest.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _check(folder: Path, manifest: Path) -> tuple[list[str], dict[int, str]]:
    checked = check_manifest(read_manifest(manifest), folder)
    return [r.file for r in checked.accepted], {r.row: " | ".join(r.reasons) for r in checked.rejected}


def test_a_nul_byte_in_a_file_name_quarantines_that_row_only(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    rows[1]["file"] = "a\x00b.pdf"
    accepted, rejected = _check(folder, _csv(folder, rows))
    assert accepted == [rows[0]["file"], rows[2]["file"], rows[3]["file"]]
    assert "must be a relative path" in rejected[3] and "\\x00" in rejected[3]


def test_a_csv_field_over_128_kib_quarantines_that_row_and_reading_goes_on(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    rows[1]["holder_name"] = "长" * (140 * 1024)
    rows[2]["holder_name"] = "名" * 5000
    accepted, rejected = _check(folder, _csv(folder, rows))
    assert accepted == [rows[0]["file"], rows[3]["file"]]
    assert "field larger than field limit" in rejected[3]
    assert "over the 4096 limit" in rejected[4]


def test_a_deeply_nested_json_row_is_quarantined_and_the_other_rows_are_read(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    deep = "[" * 100_000 + "]" * 100_000
    parts = [json.dumps(r, ensure_ascii=False) for r in rows]
    parts[1] = parts[1][:-1] + f', "extra": {deep}}}'
    (folder / "manifest.json").write_text('{"documents": [' + ", ".join(parts) + "]}", encoding="utf-8")
    accepted, rejected = _check(folder, folder / "manifest.json")
    assert accepted == [rows[0]["file"], rows[2]["file"], rows[3]["file"]]
    assert "nested 100001 levels deep" in rejected[3]


def test_a_json_value_that_is_a_list_is_a_bad_row(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 2)
    data = [dict(rows[0]), {**rows[1], "holder_name": [["x"]]}]
    (folder / "manifest.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    accepted, rejected = _check(folder, folder / "manifest.json")
    assert accepted == [rows[0]["file"]]
    assert "'holder_name' must be text, not a JSON list" in rejected[3]


def test_a_fifo_in_place_of_a_file_is_quarantined_without_blocking(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    (folder / rows[2]["file"]).unlink()
    os.mkfifo(folder / rows[2]["file"])
    accepted, rejected = _check(folder, _csv(folder, rows))
    assert rows[2]["file"] not in accepted and len(accepted) == 3
    assert "is a FIFO (named pipe), not a regular file" in rejected[4]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_in_place_of_a_file_is_quarantined(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    (folder / rows[0]["file"]).unlink()
    os.mknod(folder / rows[0]["file"], 0o600 | 0o020000, os.makedev(1, 3))  # a character device like /dev/null
    _accepted, rejected = _check(folder, _csv(folder, rows))
    assert "is a device, not a regular file" in rejected[2]


def test_symlinks_out_of_and_inside_the_folder_are_not_followed(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(b"%PDF-1.7 not the office's to stamp")
    (folder / rows[0]["file"]).unlink()
    (folder / rows[0]["file"]).symlink_to(outside)
    (folder / rows[1]["file"]).unlink()
    (folder / rows[1]["file"]).symlink_to(folder / rows[3]["file"])  # inside: one file, two records
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "c.pdf").write_bytes(b"%PDF-1.7 elsewhere")
    (folder / "linked").symlink_to(tmp_path / "elsewhere")
    rows[2]["file"] = "linked/c.pdf"
    accepted, rejected = _check(folder, _csv(folder, rows))
    assert accepted == [rows[3]["file"]]
    assert "is a symbolic link" in rejected[2] and "is a symbolic link" in rejected[3]
    assert "is a symbolic link" in rejected[4]


def test_a_manifest_that_is_a_symlink_is_not_read(tmp_path: Path) -> None:
    from stamping.batch.manifest import ManifestError

    folder, rows = _folder(tmp_path)
    real = _csv(tmp_path, rows)
    (folder / "manifest.csv").symlink_to(real)
    with pytest.raises(ManifestError, match="symbolic link"):
        read_manifest(folder / "manifest.csv")


def test_dot_slash_a_pdf_beside_a_pdf_is_one_file_named_twice(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path)
    rows[1]["file"] = "./" + rows[0]["file"]
    rows[2]["file"] = "sub/../" + rows[0]["file"]
    accepted, rejected = _check(folder, _csv(folder, rows))
    assert accepted == [rows[3]["file"]]
    assert all("appears 3 times" in rejected[n] for n in (2, 3, 4))


@pytest.fixture
def tools(tmp_path: Path) -> process.BatchTools:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    sealed: list[str] = []

    def stamper(src: bytes, seal: bytes, signer: object, placement: object, path: str, options: dict) -> bytes:
        sealed.append(path)
        return src + b"\n%sealed by the test stamper"

    def verifier(data: bytes, path: str) -> SimpleNamespace:
        return SimpleNamespace(intact=True, signatures=[object()])

    tools = process.BatchTools(session_factory=session_factory(engine), store=FolderWorkStore(tmp_path / "work"),
                               stampers={"pdf": stamper}, verifiers={"pdf": verifier},
                               signer_provider=lambda es_id: (object(), b"seal"))
    tools.sealed = sealed  # type: ignore[attr-defined]
    return tools


def _ingest(tools: process.BatchTools, folder: Path, batch_id: str) -> dict:
    return process.ingest(tools, batch_id=batch_id, source=folder, es_id="es", requester="office",
                          placement=Placement.parse("anchor:（盖章）"))


def test_ingest_goes_on_past_every_hostile_row_and_stores_only_printable_names(
        tools: process.BatchTools, tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 6)
    rows[0]["file"] = "nul\x00.pdf"
    rows[1]["holder_name"] = "x" * (140 * 1024)
    (folder / rows[2]["file"]).unlink()
    os.mkfifo(folder / rows[2]["file"])
    (folder / rows[3]["file"]).unlink()
    (folder / rows[3]["file"]).symlink_to("/etc/hostname")
    rows[4]["file"] = "./" + rows[5]["file"]
    _csv(folder, rows)
    counts = _ingest(tools, folder, "hostile-1")
    assert counts == {"batch_id": "hostile-1", "documents": 6, "quarantined": 6}
    with tools.session_factory() as session:
        docs = process.documents(session, "hostile-1")
    assert all("\x00" not in d.file and d.reasons for d in docs)
    assert not list(tools.store.keys(keys.input_key("hostile-1", "")))  # nothing received: all quarantined


def test_resume_adopts_only_a_sealed_file_this_batch_made_from_this_input(
        tools: process.BatchTools, tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 3)
    _csv(folder, rows)
    _ingest(tools, folder, "adopt-1")
    with tools.session_factory() as session:
        first, second, third = (session.query(BatchDocument).filter_by(batch_id="adopt-1", file=r["file"]).one()
                                for r in rows)
    from gmpki.gm.sm3 import sm3

    # A valid-looking sealed file planted before the run (another document, no provenance): not adopted.
    tools.store.put(keys.sealed_key(first), b"%PDF-1.7 another certificate, sealed elsewhere")
    # A sealed file with a provenance note of another batch: not adopted either.
    tools.store.put(keys.sealed_key(second), b"%PDF-1.7 from batch zzz")
    tools.store.put(keys.note_key(second), json.dumps(
        {"batch_id": "zzz", "input_sm3": second.input_sm3, "row": second.row,
         "output_sm3": sm3(b"%PDF-1.7 from batch zzz").hex()}).encode())
    # A note naming this batch and input but another row (the same bytes sent twice): not adopted either.
    tools.store.put(keys.sealed_key(third), b"%PDF-1.7 the other row's")
    tools.store.put(keys.note_key(third), json.dumps(
        {"batch_id": "adopt-1", "input_sm3": third.input_sm3, "row": third.row + 1,
         "output_sm3": sm3(b"%PDF-1.7 the other row's").hex()}).encode())
    process.stamp_chunk(tools, "adopt-1", 0, actor="office")
    assert sorted(tools.sealed) == sorted(r["file"] for r in rows)  # all three sealed here, none adopted
    assert tools.store.get(keys.sealed_key(first)).endswith(b"%sealed by the test stamper")


def test_resume_adopts_a_file_the_interrupted_run_sealed(tools: process.BatchTools, tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 2)
    _csv(folder, rows)
    _ingest(tools, folder, "adopt-2")
    process.stamp_chunk(tools, "adopt-2", 0, actor="office")
    with tools.session_factory() as session:  # as if the commit after sealing had been lost
        session.query(BatchDocument).filter_by(batch_id="adopt-2").update({"state": "accepted"})
        session.commit()
    tools.sealed.clear()  # type: ignore[attr-defined]
    process.stamp_chunk(tools, "adopt-2", 0, actor="office")
    assert tools.sealed == []  # type: ignore[attr-defined]


def test_a_column_named_like_the_readers_own_marker_is_refused_not_trusted(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 2)
    data = [dict(rows[0]), {**rows[1], "\x00unreadable": "evil\x00reason"}]
    (folder / "manifest.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    accepted, rejected = _check(folder, folder / "manifest.json")
    assert accepted == [rows[0]["file"]]
    assert rejected[3] == "a column name holds control characters"


def test_a_csv_row_with_more_fields_than_the_header_is_a_bad_row(tmp_path: Path) -> None:
    folder, rows = _folder(tmp_path, 2)
    manifest = _csv(folder, rows)
    lines = manifest.read_text(encoding="utf-8").splitlines()
    lines[2] += ",surplus"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    accepted, rejected = _check(folder, manifest)
    assert accepted == [rows[0]["file"]]
    assert rejected[3] == "the row has more fields than the header"
