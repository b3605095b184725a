"""The platform simulator trusts only senders that chain to a configured root, as the embedded stack
and compose start it; the platform certificate is pinned from configuration, never fetched on first
use (issue 13 item 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from filing.client import PlatformClient, PlatformRejected
from filing.identity import FilingNotConfigured, pin_platform_certificate, platform_cert_path
from kernel.settings import Settings
from tests.filing.conftest import REPO_ROOT, Simulator


def test_the_simulator_refuses_to_start_without_a_sender_trust_root(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "filing.simulator", "--port", "0", "--db", str(tmp_path / "p.db")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--trust" in done.stderr and "--accept-any-sender" in done.stderr


def test_a_sender_outside_the_trusted_ca_is_refused(tmp_path: Path, demo_ca, seal_payload) -> None:
    from filing.protocol import record_body
    from gmpki.keys.signer import SoftwareSigner
    from gmpki.pki.ca import DemoCA

    other = DemoCA.create(tmp_path / "other-ca", name="Self Made")
    sim = Simulator(tmp_path / "platform", "--trust", str(demo_ca.directory / "ca-root.pem"),
                    "--trust", str(demo_ca.directory / "ca-intermediate.pem"))
    try:
        from datetime import UTC, datetime

        es_id = "450000202600000099"
        record = record_body("rec-trust-0001", "seal.make", es_id, 1, datetime.now(UTC), seal_payload(es_id))
        key, cert = other.issue_unit_signer("Not The Filing System", "91450000000000000X")
        with PlatformClient(sim.url, SoftwareSigner(key, cert), sim.cert_der) as stranger:
            with pytest.raises(PlatformRejected) as refused:
                stranger.send(record)
            assert refused.value.status == 401 and "not trusted" in str(refused.value)
        key, cert = demo_ca.issue_unit_signer("SealFlow filing system", "91450000000000000X")
        with PlatformClient(sim.url, SoftwareSigner(key, cert), sim.cert_der) as trusted:
            assert trusted.send(record).record_id == "rec-trust-0001"
    finally:
        sim.stop()


def test_the_embedded_stack_starts_the_simulator_with_a_trust_root(tmp_path: Path) -> None:
    from sealflow.stack import platform_component

    argv = platform_component(Settings(home=tmp_path / "var", kek="00" * 32)).argv
    assert "--accept-any-sender" not in argv
    trusted = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--trust"]
    assert trusted == [tmp_path / "var" / "ca" / "ca-root.pem", tmp_path / "var" / "ca" / "ca-intermediate.pem"]
    assert all(p.is_file() for p in trusted)


def test_the_platform_certificate_is_never_pinned_from_the_network(tmp_path: Path, simulator) -> None:
    settings = Settings(home=tmp_path / "var", kek="00" * 32, platform_url=simulator.url)
    with pytest.raises(FilingNotConfigured, match="--platform-cert"):
        pin_platform_certificate(settings)
    given = tmp_path / "from-the-operator.pem"
    given.write_bytes(simulator.http.get("/v1/platform-certificate").content)
    assert pin_platform_certificate(settings, given) == simulator.cert_der
    assert platform_cert_path(settings).is_file()
