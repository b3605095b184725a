"""``sealflow stack up`` runs the time-stamp authority like the platform simulator; its tokens verify
against the stack's CA and `down` stops it."""

from __future__ import annotations

import pytest

from gmpki.pki.ca import DemoCA
from gmpki.pki.timestamp import verify_token
from gmpki.pki.tsa_client import TsaClient
from sealflow.stack import read_pid, status

pytestmark = pytest.mark.stack


def test_the_stack_runs_the_tsa_and_its_tokens_are_trusted(embedded_stack):
    settings = embedded_stack.settings
    tsa = status(settings)["components"]["tsa"]
    assert tsa["state"] == "running" and tsa["healthy"] and tsa["port"] == settings.tsa_port, tsa
    assert read_pid(settings, "tsa") is not None
    client = TsaClient(settings.resolved_tsa_url)
    try:
        token = client.timestamp(b"a signature value")
    finally:
        client.close()
    check = verify_token(token, b"a signature value", DemoCA.load(settings.state_dir / "ca").trust_store())
    assert check.proven, check.reason
