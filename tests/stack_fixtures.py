"""The embedded stack as a session fixture, shared by every test area that needs S3 or Airflow.

Expose it from ``tests/conftest.py`` with ``from tests.stack_fixtures import embedded_stack  # noqa``.
The stack runs in a temporary state directory on free ports away from the defaults (and away from
other stacks' gRPC ports = port + 10000), so it never clashes with a developer's own stack or with
another test run on the same machine; the ports come from ``sealflow.stack.ports``, as the drill's do.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernel.objectstore import s3_client
from kernel.settings import Settings
from sealflow.stack import airflow_env, down, run_dag_test, spawn_reaper, up
from sealflow.stack.ports import free_port_block, free_stack_ports

log = logging.getLogger(__name__)

def cli_identity_port(monkeypatch: pytest.MonkeyPatch) -> int:
    """A free port for the identity simulator that a CLI test's ``sealflow seal demo-setup`` starts
    (never the default one, which a developer's own stack uses); stop it with :func:`stop_stack`."""
    port = free_port_block(1)
    monkeypatch.setenv("SEALFLOW_IDENTITY_PORT", str(port))
    return port


def stop_stack(home: Path) -> None:
    """Stop whatever the state directory ``home`` started (by its PID files), e.g. the identity simulator."""
    down(Settings(home=home), out=log.info)


def stack_settings(home: Path) -> Settings:
    return Settings(home=home, kek="00" * 32, **free_stack_ports())


@dataclass
class EmbeddedStack:
    """A running embedded stack: its settings, S3 clients and Airflow runs in its Airflow home."""

    settings: Settings

    def s3(self, **config: Any) -> Any:
        """A new boto3 S3 client on the stack's SeaweedFS."""
        return s3_client(self.settings, **config)

    def airflow_env(self) -> dict[str, str]:
        return airflow_env(self.settings)

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 600
                ) -> subprocess.CompletedProcess:
        """``dag.test()`` of one DAG in a subprocess with this stack's Airflow env."""
        return run_dag_test(self.settings, dag_id, conf, timeout)

    def up(self) -> dict[str, Any]:
        return up(self.settings, out=log.info)

    def down(self) -> list[str]:
        return down(self.settings, out=log.info)


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """SeaweedFS and its archive replica + an Airflow home, the TSA, the identity simulator (+ the
    platform simulator when installed), started from nothing."""
    stack = EmbeddedStack(stack_settings(tmp_path_factory.mktemp("stack") / "var"))
    spawn_reaper(stack.settings)  # stops the stack even if this test run is killed before teardown
    try:
        stack.up()
    except Exception:
        stack.down()
        raise
    yield stack
    stack.down()
