"""Archiving against the real SeaweedFS: locks, reruns, rejections, 四性检测 report, retrieval."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from archive.checks import NoScanner
from archive.checks.catalogue import items_for
from archive.index import SearchQuery, search
from archive.models import ArchiveRecord
from archive.service import archive_records, package_key
from archive.store import ObjectConflict, ObjectLocked
from gmpki.gm.sm3 import sm3_hex
from sealflow.cli import main

pytestmark = pytest.mark.stack


def _archive(env, docs, **kw):
    return archive_records([d.to_input() for d in docs], batch_id=kw.pop("batch_id", "B1"), settings=env.settings,
                           store=env.store, sessions=env.sessions, signer=env.signer, trust=env.trust,
                           scanner=NoScanner(), **kw)


def _count(env, model=ArchiveRecord) -> int:
    with env.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_locked_object_cannot_be_deleted_or_overwritten(env):
    from archive.retention import retain_until

    until = retain_until("D10", datetime.now(UTC))
    put = env.store.put("packages/t.tar", b"original", retain_until=until)
    assert put.created
    info = env.store.head("packages/t.tar")
    assert info.lock_mode == "COMPLIANCE" and info.retain_until is not None
    assert not env.store.put("packages/t.tar", b"original", retain_until=until).created  # idempotent
    with pytest.raises(ObjectConflict):
        env.store.put("packages/t.tar", b"changed", retain_until=until)
    with pytest.raises(ObjectLocked):
        env.store.delete("packages/t.tar", put.version_id)
    # A raw S3 overwrite only stacks a new version: the locked one stays, intact and undeletable.
    env.store.client.put_object(Bucket=env.store.bucket, Key="packages/t.tar", Body=b"evil")
    assert env.store.get("packages/t.tar", put.version_id) == b"original"
    with pytest.raises(ObjectLocked):
        env.store.delete("packages/t.tar", put.version_id)


def test_archive_then_rerun_creates_no_duplicates(env, sealed_docs):
    first = _archive(env, sealed_docs)
    assert first.archived == len(sealed_docs), first.to_json()
    keys = sorted(o.key for o in env.store.list("packages/"))
    assert len(keys) == len(sealed_docs)
    runs_before = sorted(o.key for o in env.store.list("runs/"))
    assert len(runs_before) == 5  # registration, manifest, signature, certificate, intermediates

    again = _archive(env, sealed_docs)
    assert again.count("already_archived") == len(sealed_docs) and again.archived == 0
    assert _count(env) == len(sealed_docs)
    assert sorted(o.key for o in env.store.list("packages/")) == keys
    assert sorted(o.key for o in env.store.list("runs/")) == runs_before

    # every package is locked until its 保管期限 ends, 档号 numbered continuously
    with env.sessions() as s:
        rows = list(s.scalars(select(ArchiveRecord).order_by(ArchiveRecord.archival_code)))
    by_prefix: dict[str, list[int]] = {}
    for r in rows:
        prefix, _, no = r.archival_code.rpartition("-")
        by_prefix.setdefault(prefix, []).append(int(no))
        head = env.store.head(r.object_key)
        assert head.lock_mode == "COMPLIANCE"
        assert head.retain_until.year == r.retain_until.year
        assert sm3_hex(env.store.get(r.object_key)) == r.package_sm3
    assert all(nums == list(range(1, len(nums) + 1)) for nums in by_prefix.values())


def test_failed_records_are_not_archived_and_say_why(env, sealed_docs, tmp_path):
    good, tampered, unsealed = sealed_docs[0], sealed_docs[1], sealed_docs[2]
    changed = tmp_path / tampered.path.name
    data = bytearray(tampered.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    bad_input = tampered.to_input()
    bad_input.path = str(changed)
    no_seal = unsealed.to_input()
    no_seal.verification = {"path": unsealed.row["file"], "valid": False, "signatures": [], "error": None}
    result = archive_records([good.to_input(), bad_input, no_seal], batch_id="B2", settings=env.settings,
                             store=env.store, sessions=env.sessions, signer=env.signer, trust=env.trust)
    outcome = {o.licence_id: o for o in result.outcomes}
    assert outcome[good.row["licence_id"]].status == "archived"
    bad = outcome[tampered.row["licence_id"]]
    assert bad.status == "rejected"
    assert any("SM3" in r for r in bad.reasons), bad.reasons
    assert outcome[unsealed.row["licence_id"]].status == "rejected"
    assert any("no seal" in r for r in outcome[unsealed.row["licence_id"]].reasons)
    assert _count(env) == 1
    registration = json.loads(env.store.get(result.registration_key))
    assert registration["records"] == 1
    assert {r["licence_id"] for r in registration["not_archived"]} == {tampered.row["licence_id"],
                                                                       unsealed.row["licence_id"]}


def test_package_contents_and_check_report(env, sealed_docs):
    result = _archive(env, sealed_docs[:2])
    key = next(o.object_key for o in result.outcomes)
    with tarfile.open(fileobj=io.BytesIO(env.store.get(key))) as tf:
        names = {m.name.split("/", 1)[1]: tf.extractfile(m).read() for m in tf}
    assert {"metadata.json", "metadata.xml", "verification.json", "checks.json", "manifest-sm3.txt"} <= set(names)
    assert sum(1 for n in names if n.startswith("content/")) == 1
    meta = json.loads(names["metadata.json"])
    assert meta["licence"]["licence_id"] in {d.row["licence_id"] for d in sealed_docs}
    assert meta["retain_until"] and meta["archival_code"]
    report = json.loads(names["checks.json"])
    assert [i["code"] for i in report["items"]] == [i.code for i in items_for("GD")]
    statuses = {i["check"]: i for i in report["items"]}
    assert statuses["malware"]["status"] == "not_performed"
    assert statuses["seals_verify"]["status"] == "pass"
    assert statuses["content_opens"]["status"] == "pass"
    assert statuses["fixity"]["status"] == "pass"
    assert all(i["status"] in {"pass", "not_performed", "not_applicable"} for i in report["items"])
    assert all(i["reason"] for i in report["items"])


def test_search_get_url_and_offline_verify(env, sealed_docs, monkeypatch, capsys):
    _archive(env, sealed_docs[:3])
    doc = sealed_docs[1]
    with env.sessions() as s:
        found = search(s, SearchQuery(holder_code=doc.row["holder_code"]))
    assert [r.licence_id for r in found] == [doc.row["licence_id"]]

    monkeypatch.setattr("sealflow.commands.archive.get_settings", lambda: env.settings)
    monkeypatch.setenv("SEALFLOW_HOME", str(env.settings.home))  # the CLI refuses to run without a home
    assert main(["archive", "search", "--number", doc.row["licence_number"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["licence_id"] for r in rows] == [doc.row["licence_id"]]
    code = rows[0]["archival_code"]
    assert main(["archive", "search", "--holder", doc.row["holder_name"][-6:], "--since", "2000-01-01",
                 "--json"]) == 0
    assert code in {r["archival_code"] for r in json.loads(capsys.readouterr().out)}
    assert main(["archive", "search", "--until", "2000-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []

    assert main(["archive", "url", code, "--expires", "120"]) == 0
    url = capsys.readouterr().out.strip()
    with urllib.request.urlopen(url, timeout=10) as resp:
        shared = resp.read()
    with tarfile.open(fileobj=io.BytesIO(shared)) as tf:  # the package's files, with its run's signed files
        names = {m.name.split("/", 1)[1] for m in tf}
    assert {"manifest-sm3.txt", "metadata.json", "_batch/manifest-sm3.txt.sig", "_batch/signer.cer"} <= names
    (env.tmp / "shared.tar").write_bytes(shared)
    assert main(["archive", "verify", str(env.tmp / "shared.tar"), "--trust", str(env.root_pem)]) == 0
    said = capsys.readouterr().out
    assert f"({env.tmp / 'shared.tar'})" in said.splitlines()[0] and "sealflow-verify-" not in said  # no temp path

    out = env.tmp / "fetched"
    assert main(["archive", "get", doc.row["licence_id"], "-o", str(out)]) == 0
    folder = Path(capsys.readouterr().out.strip())
    assert (folder / "_batch" / "manifest-sm3.txt.sig").is_file()
    assert main(["archive", "verify", str(folder), "--trust", str(env.root_pem)]) == 0
    capsys.readouterr()
    # The folder given to -o holds the package: verifying it names the package folder to verify instead.
    assert main(["archive", "verify", str(out), "--trust", str(env.root_pem)]) == 2
    assert f"sealflow archive verify {folder} --trust" in capsys.readouterr().err
    assert main(["archive", "eep", str(out), "-o", str(env.tmp / "x.xml")]) == 2
    assert f"sealflow archive eep {folder} -o" in capsys.readouterr().err

    # any altered byte fails, and the report names the file
    for name in (f"content/{doc.row['file']}", "metadata.json", "checks.json", "_batch/registration.json",
                 "_batch/manifest-sm3.txt"):
        target = folder / name
        original = target.read_bytes()
        changed = bytearray(original)
        changed[len(changed) // 3] ^= 0x20
        target.write_bytes(bytes(changed))
        assert main(["archive", "verify", str(folder), "--trust", str(env.root_pem), "--json"]) == 1, name
        report = json.loads(capsys.readouterr().out)
        assert report["problems"], name
        assert any(p["file"] in (name, "manifest-sm3.txt") for p in report["problems"]), (name, report["problems"])
        target.write_bytes(original)
    # a foreign file is named too
    (folder / "extra.txt").write_text("x")
    assert main(["archive", "verify", str(folder), "--trust", str(env.root_pem), "--json"]) == 1
    assert any(p["file"] == "extra.txt" for p in json.loads(capsys.readouterr().out)["problems"])
    # usage errors: exit 2
    assert main(["archive", "verify", str(env.tmp / "nope"), "--trust", str(env.root_pem)]) == 2


def test_offline_verify_untrusted_root_fails(env, sealed_docs, tmp_path, capsys):
    from archive.retrieve import download_package
    from gmpki.pki.ca import DemoCA

    _archive(env, sealed_docs[:1])
    with env.sessions() as s:
        row = s.scalars(select(ArchiveRecord)).one()
    folder = download_package(env.store, row, tmp_path / "dl")
    other = DemoCA.create(tmp_path / "other-ca", name="Other")
    other_root = tmp_path / "other.der"
    other_root.write_bytes(other.root_der)
    assert main(["archive", "verify", str(folder), "--trust", str(other_root), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert any(p["file"] == "_batch/signer.cer" for p in problems)
    assert any(p["file"].startswith("content/") for p in problems)


def test_pending_rows_are_invisible_and_resume(env, sealed_docs):
    """A crash after upload but before publishing: nothing visible; the rerun adopts the stored package."""
    from archive.service import Archiver

    docs = sealed_docs[:2]

    class Crash(Exception):
        pass

    archiver = Archiver(env.settings, env.store, env.sessions, env.signer, env.trust)

    def crash(*_a, **_k):
        raise Crash

    archiver._finish_run = crash  # the run dies after the packages are stored
    with pytest.raises(Crash):
        archiver.run([d.to_input() for d in docs], "B3")
    with env.sessions() as s:
        assert search(s, SearchQuery(batch_id="B3")) == []
        assert search(s, SearchQuery()) == []
    stored = sorted(o.key for o in env.store.list("packages/"))
    assert len(stored) == 2

    result = _archive(env, docs, batch_id="B3")
    assert result.archived == 2, result.to_json()
    assert sorted(o.key for o in env.store.list("packages/")) == stored
    with env.sessions() as s:
        assert len(search(s, SearchQuery(batch_id="B3"))) == 2
    assert all(len(env.store.versions(k)) == 1 for k in stored)
    assert package_key("X") == "packages/X.tar"


def test_worker_processes_build_the_same_packages(env, sealed_docs):
    """Large runs check and package in worker processes; the result is the same as in threads."""
    from archive.service import Archiver

    with Archiver(env.settings, env.store, env.sessions, env.signer, env.trust, NoScanner(), processes=2) as a:
        a.process_threshold = 0
        result = a.run([d.to_input() for d in sealed_docs[:3]], "P1")
        assert a._build_procs is not None and a._check_procs is not None
    assert result.archived == 3, result.to_json()
    with env.sessions() as s:
        rows = search(s, SearchQuery(batch_id="P1"))
    assert len(rows) == 3
    for r in rows:
        with tarfile.open(fileobj=io.BytesIO(env.store.get(r.object_key))) as tf:
            report = json.loads(next(tf.extractfile(m).read() for m in tf if m.name.endswith("/checks.json")))
        assert report["passed"] and report["counts"].get("fail", 0) == 0
