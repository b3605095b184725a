"""Fixity finds damaged and missing packages; the EEP validates against the XSD and round-trips streaming."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from archive.checks import NoScanner
from archive.eep import read_eep, validate_eep, write_eep
from archive.fixity import run_fixity
from archive.models import ArchiveRecord
from archive.retrieve import download_package
from archive.service import archive_records

pytestmark = pytest.mark.stack
from tests.shared_paths import EEP_XSD as XSD  # noqa: E402


def _archive(env, docs):
    return archive_records([d.to_input() for d in docs], batch_id="F1", settings=env.settings, store=env.store,
                           sessions=env.sessions, signer=env.signer, trust=env.trust, scanner=NoScanner())


def _rows(env) -> list[ArchiveRecord]:
    with env.sessions() as s:
        return list(s.scalars(select(ArchiveRecord).order_by(ArchiveRecord.id)))


def test_fixity_finds_overwritten_missing_and_damaged(env, sealed_docs):
    _archive(env, sealed_docs[:4])
    clean = run_fixity(env.store, env.sessions)
    assert clean["ok"] and clean["records_checked"] == 4

    rows = _rows(env)
    # 1. a newer version stacked over a locked package
    env.store.client.put_object(Bucket=env.store.bucket, Key=rows[0].object_key, Body=b"not a package")
    # 2. the current version hidden by a delete marker
    env.store.client.delete_object(Bucket=env.store.bucket, Key=rows[1].object_key)
    # 3. the index says a package exists that the store never had
    with env.sessions() as s, s.begin():
        s.get(ArchiveRecord, rows[2].id).object_key = "packages/never-stored.tar"
        s.get(ArchiveRecord, rows[2].id).object_version = ""
    # 4. the index digest no longer matches the stored bytes
    with env.sessions() as s, s.begin():
        s.get(ArchiveRecord, rows[3].id).package_sm3 = "0" * 64

    report = run_fixity(env.store, env.sessions, batch_size=2)
    assert not report["ok"] and report["records_checked"] == 4
    problems = {p["archival_code"]: p["problem"] for p in report["problems"]}
    assert problems == {rows[0].archival_code: "overwritten", rows[1].archival_code: "missing",
                        rows[2].archival_code: "missing", rows[3].archival_code: "mismatch"}
    stored = json.loads(env.store.get(report["report_key"]))
    assert stored["problem_counts"] == {"overwritten": 1, "missing": 2, "mismatch": 1}
    assert env.store.head(report["report_key"]).lock_mode == ""  # reports are not locked


def test_eep_validates_and_round_trips(env, sealed_docs, tmp_path):
    assert XSD.is_file(), XSD
    _archive(env, sealed_docs[:1])
    row = _rows(env)[0]
    folder = download_package(env.store, row, tmp_path / "dl")
    out = write_eep(folder, tmp_path / "record.eep.xml", env.signer)
    assert validate_eep(out, XSD) == []
    content = read_eep(out, tmp_path / "back", chunk_size=4096)  # small chunks: Base64 split across feeds
    assert content.signature_ok is True
    assert int(content.fields["室编件号"]) == int(row.archival_code.rsplit("-", 1)[1])
    assert content.fields["文件编号"] == row.licence_number
    names = {d.name for d in content.documents}
    assert f"content/{row.document_name}" in names
    for d in content.documents:
        assert (tmp_path / "back" / d.name).read_bytes() == (folder / d.name).read_bytes()
        assert d.size == d.declared_size

    # one altered byte inside the signed part: the signature no longer verifies
    data = bytearray(out.read_bytes())
    i = data.find("<文件编号>".encode()) + len("<文件编号>".encode())
    data[i] = ord("9") if data[i] != ord("9") else ord("8")
    bad = tmp_path / "bad.eep.xml"
    bad.write_bytes(bytes(data))
    assert read_eep(bad).signature_ok is False


def test_eep_refuses_entities(tmp_path):
    from archive.eep import EepError

    evil = tmp_path / "evil.xml"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')
    with pytest.raises(EepError):
        read_eep(evil)


def test_fixity_finds_bytes_damaged_on_disk(env, sealed_docs, embedded_stack):
    """Bit rot in the store's own volume files: the read fails its checksum and fixity reports it."""
    from sealflow.stack import seaweed_dir

    _archive(env, sealed_docs[:2])
    row = _rows(env)[0]
    from archive.package import untar_package

    _folder, files = untar_package(env.store.get(row.object_key), row.object_key)
    needle = files["metadata.json"][:800]  # unique to this record (its 档号 and 证照标识)
    hits = []
    for dat in seaweed_dir(embedded_stack.settings).rglob(f"{env.store.bucket}_*.dat"):
        data = dat.read_bytes()
        if (i := data.find(needle)) >= 0:
            hits.append((dat, i))
    if not hits:
        pytest.skip("the store keeps this package compressed on disk; cannot aim a flipped byte")
    for dat, i in hits:
        with dat.open("r+b") as fh:
            fh.seek(i + 10)
            byte = fh.read(1)
            fh.seek(i + 10)
            fh.write(bytes([byte[0] ^ 0xFF]))
    from archive.store import ObjectStore

    report = run_fixity(ObjectStore(env.settings, attempts=1), env.sessions)
    assert [p["archival_code"] for p in report["problems"]] == [row.archival_code]
    assert report["problems"][0]["problem"] in {"unreadable", "mismatch"}


def test_eep_command_signs_with_the_archive_key(env, sealed_docs, tmp_path, monkeypatch, capsys):
    """The CLI opens (or first sets up) the archiving unit's key by the DAG's path; a PIN that does
    not open it is refused without counting a try, so the key never locks."""
    from kernel.keys import key_store
    from sealflow.cli import main

    settings = env.settings.with_overrides(home=tmp_path / "home", archive_key_pin="archive-pin-1")
    _archive(env, sealed_docs[:1])
    folder = download_package(env.store, _rows(env)[0], tmp_path / "dl")
    monkeypatch.setattr("sealflow.commands.archive.get_settings", lambda: settings)
    monkeypatch.setenv("SEALFLOW_HOME", str(settings.home))  # the CLI refuses to run without a home
    out = tmp_path / "record.eep.xml"
    assert main(["archive", "eep", str(folder), "-o", str(out)]) == 0
    assert validate_eep(out, XSD) == []
    content = read_eep(out)
    keys = key_store(settings)
    assert content.signature_ok is True and content.certificate == keys.certificate(settings.archive_key_id)

    wrong = settings.with_overrides(archive_key_pin="not-the-pin")
    monkeypatch.setattr("sealflow.commands.archive.get_settings", lambda: wrong)
    for _ in range(6):  # more than the five wrong PINs that lock a person's key
        assert main(["archive", "eep", str(folder), "-o", str(tmp_path / "other.xml")]) == 2
        err = capsys.readouterr().err
        assert "archiving unit key" in err and "no wrong-PIN try was counted" in err and "not-the-pin" not in err
    assert not keys.is_locked(settings.archive_key_id)
    monkeypatch.setattr("sealflow.commands.archive.get_settings", lambda: settings)
    assert main(["archive", "eep", str(folder), "-o", str(tmp_path / "again.xml")]) == 0


def test_a_service_key_path_is_no_pin_oracle_for_other_keys(env, tmp_path):
    from gmpki.keys.store import KeyStoreError
    from kernel.keys import key_store, service_signer

    settings = env.settings.with_overrides(home=tmp_path / "home")
    keys = key_store(settings)
    keys.create("keeper-seal", "123456")
    with pytest.raises(KeyStoreError, match="not one of this installation's service keys"):
        service_signer(keys, settings, "keeper-seal", "000000")
