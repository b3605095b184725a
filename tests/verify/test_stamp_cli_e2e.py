"""``sealflow stamp`` end to end with the real registry (demo unit and seal), then ``sealflow verify``."""

from __future__ import annotations

import json
import threading

import pytest

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import get_settings, local_url
from sealflow.cli import main
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.tsa.server import make_server

PIN = "246810"
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')


def make_zip(entries: list[tuple[str, bytes]]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def demo_env(tmp_path, monkeypatch):
    from sealflow.stack import ensure_identity
    from stamping.registry import SealRegistry
    from stamping.registry.demo import KEEPER, bootstrap_demo
    from tests.stack_fixtures import cli_identity_port, stop_stack

    monkeypatch.setenv("SEALFLOW_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("SEALFLOW_KEK", "11" * 32)
    cli_identity_port(monkeypatch)  # `sealflow stamp` checks the keeper against the stack's identity simulator
    get_settings.cache_clear()
    ensure_identity(get_settings(), out=lambda _m: None)  # first: it makes the state directory, private
    # the time-stamp authority every seal needs, certified by the same demo CA, over HTTP
    tsa = make_server("127.0.0.1", 0, tmp_path / "var" / "tsa", tmp_path / "var" / "ca")
    threading.Thread(target=tsa.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    monkeypatch.setenv("SEALFLOW_TSA_URL", local_url(tsa.server_address[1], "/"))
    get_settings.cache_clear()
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    registry = SealRegistry(session_factory(engine), settings)
    info = bootstrap_demo(registry, official_pin=PIN)
    monkeypatch.setenv("SF_E2E_PIN", PIN)
    monkeypatch.setenv("SEALFLOW_USER", KEEPER)  # who stamps is authenticated, not declared
    monkeypatch.setenv("SEALFLOW_USER_CREDENTIAL", info["credentials"][KEEPER])
    yield settings, registry, info["es_ids"]["official"], KEEPER
    tsa.shutdown()
    tsa.server_close()
    engine.dispose()
    stop_stack(settings.home)
    get_settings.cache_clear()


def test_stamp_folder_then_verify(demo_env, tmp_path, capsys, interop_dir):
    settings, _, es_id, keeper = demo_env
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.ofd", "sub/b.ofd"]):
        (inbox / rel).write_bytes(make_sample_certificate_ofd(sample_business_licence_fields(i), "business_licence"))
    (inbox / "c.ofd").write_bytes((interop_dir / "helloworld.ofd").read_bytes())  # no （盖章） line
    from stamping.pdf.samples import make_sample_certificate_pdf

    (inbox / "d.pdf").write_bytes(make_sample_certificate_pdf(sample_business_licence_fields(4), "business_licence"))
    (inbox / "evil.ofd").write_bytes(make_zip([("OFD.xml", XXE)]))  # hostile: refused, nothing written
    out = tmp_path / "out"
    rc = main(["stamp", "--seal", es_id, "--pin-env", "SF_E2E_PIN", "--actor", keeper, str(inbox), str(out)])
    captured = capsys.readouterr()
    assert rc == 1  # c.ofd has no （盖章） line, evil.ofd has a DTD
    assert "stamped 3/5" in captured.out and "c.ofd" in captured.err and "（盖章）" in captured.err
    assert "evil.ofd" in captured.err and "DTD" in captured.err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["a.ofd", "d.pdf",
                                                                                      "sub/b.ofd"]
    # verify with the registry's CA as trust and the registry's status lookup (database present)
    ca_dir = settings.state_dir / "ca"
    rc = main(["verify", "--json", "--trust", str(ca_dir / "ca-root.pem"), "--trust",
               str(ca_dir / "ca-intermediate.pem"), str(out)])
    docs = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(docs) == 3 and all(d["valid"] for d in docs), docs
    assert [d["format"] for d in docs] == ["ofd", "pdf", "ofd"]
    checks = {c["name"]: c for c in docs[0]["signatures"][0]["checks"]}
    assert checks["seal_status"]["ok"] and "active" in checks["seal_status"]["reason"]
    assert checks["timestamp"]["ok"] and checks["use_recorded"]["ok"]  # proven time, audited use
    assert docs[0]["signatures"][0]["es_id"] == es_id


def test_wrong_pin_is_refused(demo_env, tmp_path, monkeypatch, capsys):
    _, _, es_id, keeper = demo_env
    src = tmp_path / "a.ofd"
    src.write_bytes(make_sample_certificate_ofd(sample_business_licence_fields(), "business_licence"))
    monkeypatch.setenv("SF_E2E_PIN", "000000")
    rc = main(["stamp", "--seal", es_id, "--pin-env", "SF_E2E_PIN", "--actor", keeper, str(src),
               str(tmp_path / "o.ofd")])
    assert rc == 1 and not (tmp_path / "o.ofd").exists()
    assert "cannot use seal" in capsys.readouterr().err
