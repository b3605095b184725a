"""The registry makes the demo CA only on the embedded stack: elsewhere a missing CA refuses the step
and says to run `sealflow ca init`; a CA set up that way is the one used."""

from __future__ import annotations

from pathlib import Path

import pytest

from gmpki.pki.ca import DemoCA
from kernel.db import session_factory
from kernel.keys import CANotInstalled, installation_ca
from kernel.settings import Settings
from stamping.registry import CANotConfigured, SealRegistry

STORE = "http://store.internal:9000"  # an install that names its object store: not the embedded stack


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(home=tmp_path / "var", kek="44" * 32, audit_key_pin="audit-pin-1", **kw)


def test_outside_the_embedded_stack_a_registry_without_a_ca_refuses_and_says_to_run_ca_init(db_engine, tmp_path):
    settings = _settings(tmp_path, s3_endpoint=STORE)
    assert not settings.embedded
    registry = SealRegistry(session_factory(db_engine), settings)
    with pytest.raises(CANotConfigured, match="run `sealflow ca init`"):
        registry.audit_public_key()  # the audit key is certified by the CA on first use
    with pytest.raises(CANotConfigured, match="not the embedded stack"):
        _ = registry.ca
    assert not (settings.state_dir / "ca").exists()  # no demo CA made behind the operator's back


def test_outside_the_embedded_stack_the_installation_ca_is_not_made_on_first_use(tmp_path):
    settings = _settings(tmp_path, s3_endpoint=STORE)
    with pytest.raises(CANotInstalled, match="run `sealflow ca init`"):
        installation_ca(settings)
    assert not (settings.state_dir / "ca").exists()


def test_outside_the_embedded_stack_the_ca_set_up_beforehand_is_the_one_used(db_engine, tmp_path):
    settings = _settings(tmp_path, s3_endpoint=STORE)
    made = DemoCA.create(settings.state_dir / "ca")  # what `sealflow ca init` does
    registry = SealRegistry(session_factory(db_engine), settings)
    assert registry.ca.root_der == made.root_der
    assert registry.audit_public_key() is not None


def test_on_the_embedded_stack_the_registry_makes_its_demo_ca_on_first_use(db_engine, tmp_path):
    settings = _settings(tmp_path)
    assert settings.embedded
    registry = SealRegistry(session_factory(db_engine), settings)
    assert registry.audit_public_key() is not None
    assert (settings.state_dir / "ca" / "seal-maker.pem").is_file()
    assert registry.ca.root_der == DemoCA.load(settings.state_dir / "ca").root_der
