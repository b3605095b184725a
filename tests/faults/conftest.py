"""Fixtures of the fault suite: the filing area's real simulator and sending system, reused."""

from tests.filing.conftest import (  # noqa: F401 - fixtures shared with the filing tests
    archive_payload,
    client,
    demo_ca,
    seal_payload,
    sessions,
    sim,
    simulator,
    system_signer,
)
