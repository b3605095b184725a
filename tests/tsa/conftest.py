"""Trusted-time fixtures: a demo kit and the TSA program's server on a free port, over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kernel.settings import local_url
from stamping.ofd.demo import DEMO_CREDIT_CODE, DEMO_ES_ID, DEMO_UNIT, DemoKit, make_demo_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> DemoKit:
    """The demo kit, with a signer certificate and seal valid since 20 hours ago (the demo CA's
    certificates start a day back), so that signatures can honestly be dated in the past."""
    from gmpki.keys.signer import SoftwareSigner
    from stamping.pictures import demo_official_seal
    from stamping.ses.make import SealSpec, make_seal

    base = make_demo_kit(Path(tmp_path_factory.mktemp("tsakit")))
    since = datetime.now(UTC) - timedelta(hours=20)
    key, cert = base.ca.issue_unit_signer(DEMO_UNIT, DEMO_CREDIT_CODE, not_before=since)
    picture = demo_official_seal(DEMO_UNIT)
    seal = make_seal(SealSpec(es_id=DEMO_ES_ID, name=f"{DEMO_UNIT}公章", seal_type=1, signer_certs=[cert],
                              valid_start=since, valid_end=since + timedelta(days=365), picture_png=picture.png,
                              width_mm=picture.width_mm, height_mm=picture.height_mm), base.ca.maker_signer())
    return replace(base, signer=SoftwareSigner(key, cert), seal_der=seal)


@pytest.fixture(scope="session")
def tsa_url(kit: DemoKit, tmp_path_factory) -> Iterator[str]:
    """The TSA server (stamping.tsa.server) certified by the kit's CA, serving on 127.0.0.1."""
    from stamping.tsa.server import make_server

    server = make_server("127.0.0.1", 0, Path(tmp_path_factory.mktemp("tsa")) / "tsa", kit.ca.directory)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield local_url(server.server_address[1], "/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def tsa(tsa_url: str):
    from gmpki.pki.tsa_client import TsaClient

    client = TsaClient(tsa_url)
    yield client
    client.close()
