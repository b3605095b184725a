"""The stack's ports: refuse, before anything starts, ports that Linux may hand out to outgoing
connections.

Decisions: SeaweedFS also binds each of its ports + 10000 (gRPC), so both are checked; a port in
Linux's ephemeral range (``ip_local_port_range``) may be taken by any outgoing connection at any
time, so ``up`` refuses it with the ports to change rather than fail now and then.
"""

from __future__ import annotations

from pathlib import Path

from kernel.settings import Settings
from sealflow.stack.paths import StackError, embedded_replica

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SEAWEED_GRPC_OFFSET = 10000
SEAWEED_PORT_FIELDS = ("s3_port", "master_port", "filer_port", "volume_port", "seaweed_admin_port")
REPLICA_PORT_FIELDS = ("replica_s3_port", "replica_master_port", "replica_filer_port", "replica_volume_port",
                       "replica_admin_port")


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """Linux's range of ports for outgoing connections; the usual default where /proc has none."""
    try:
        low, high = (int(v) for v in path.read_text().split()[:2])
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_problems(settings: Settings, ephemeral: tuple[int, int] | None = None) -> list[str]:
    """Ports of the components we would start that the ephemeral range can take (empty: all good)."""
    low, high = ephemeral or ephemeral_range()
    wanted: list[tuple[str, int]] = [("airflow_port", settings.airflow_port)]
    if not settings.platform_url:
        wanted.append(("platform_port", settings.platform_port))
    if not settings.tsa_url:
        wanted.append(("tsa_port", settings.tsa_port))
    if not settings.identity_url and settings.embedded:
        wanted.append(("identity_port", settings.identity_port))
    if not settings.s3_endpoint:
        for name in SEAWEED_PORT_FIELDS:
            port = getattr(settings, name)
            wanted += [(name, port), (f"{name} + {SEAWEED_GRPC_OFFSET} (SeaweedFS gRPC)", port + SEAWEED_GRPC_OFFSET)]
    if embedded_replica(settings):
        for name in REPLICA_PORT_FIELDS:
            port = getattr(settings, name)
            wanted += [(name, port), (f"{name} + {SEAWEED_GRPC_OFFSET} (SeaweedFS gRPC)", port + SEAWEED_GRPC_OFFSET)]
    return [f"{name} = {port}" for name, port in wanted if low <= port <= high]


def check_ports(settings: Settings) -> None:
    problems = port_problems(settings)
    if problems:
        low, high = ephemeral_range()
        raise StackError(
            f"ports inside Linux's ephemeral range {low}-{high} (any outgoing connection may take them): "
            f"{', '.join(problems)}; choose SEALFLOW_*_PORT values below {low - SEAWEED_GRPC_OFFSET} "
            f"(SeaweedFS binds each port + {SEAWEED_GRPC_OFFSET} too)")
