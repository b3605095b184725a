"""Trusted-time fixtures: a demo kit and the TSA program's server on a free port, over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stamping.ofd.demo import DemoKit, make_demo_kit


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> DemoKit:
    return make_demo_kit(Path(tmp_path_factory.mktemp("tsakit")))


@pytest.fixture(scope="session")
def tsa_url(kit: DemoKit, tmp_path_factory) -> Iterator[str]:
    """The TSA server (stamping.tsa.server) certified by the kit's CA, serving on 127.0.0.1."""
    from stamping.tsa.server import make_server

    server = make_server("127.0.0.1", 0, Path(tmp_path_factory.mktemp("tsa")) / "tsa", kit.ca.directory)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def tsa(tsa_url: str):
    from stamping.pki.tsa_client import TsaClient

    client = TsaClient(tsa_url)
    yield client
    client.close()
