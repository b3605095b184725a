"""The stack's ports: refuse, before anything starts, ports that Linux may hand out to outgoing
connections.

Decisions: SeaweedFS also binds each of its ports + 10000 (gRPC), so both are checked; a port in
Linux's ephemeral range (``ip_local_port_range``) may be taken by any outgoing connection at any
time, so ``up`` refuses it with the ports to change rather than fail now and then.

Choosing free ports lives here too, once, for the drill's throw-away stack and for the tests (which
import it): a *block* of consecutive ports, each with its gRPC companion free, picked at random in a
range whose companions stay below the ephemeral range (so two runs on one machine rarely collide), or a
single port the kernel picks (for one server that is not SeaweedFS).
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from kernel.settings import Settings
from sealflow.stack.paths import StackError, embedded_replica

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SEAWEED_GRPC_OFFSET = 10000
SEAWEED_PORT_FIELDS = ("s3_port", "master_port", "filer_port", "volume_port", "seaweed_admin_port")
REPLICA_PORT_FIELDS = ("replica_s3_port", "replica_master_port", "replica_filer_port", "replica_volume_port",
                       "replica_admin_port")
# Every port a whole throw-away stack (the drill's, the tests') binds, in the order a block gives them out.
STACK_PORT_FIELDS = (*SEAWEED_PORT_FIELDS, "platform_port", "airflow_port", "tsa_port", "identity_port",
                     *REPLICA_PORT_FIELDS)


def port_is_free(port: int) -> bool:
    """Whether nothing on this machine listens on (or holds) ``port`` of 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port of 127.0.0.1 that the kernel says is free now (for one server without gRPC companions)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_block(count: int, low: int = 21000, high: int = 22700) -> int:
    """A base port with ``count`` free ports from it, and their SeaweedFS gRPC companions (+10000) free.

    The default range keeps the companions (31000–32700) below Linux's usual ephemeral range (32768+);
    random bases, so parallel runs (a developer's stack, a test run, a drill) rarely try the same block.
    """
    rng = random.Random()
    for _ in range(300):
        base = rng.randrange(low, high - count)
        if all(port_is_free(p) and port_is_free(p + SEAWEED_GRPC_OFFSET) for p in range(base, base + count)):
            return base
    raise RuntimeError(f"no free block of {count} ports (and their gRPC ports + {SEAWEED_GRPC_OFFSET}) "
                       f"in {low}-{high}")


def free_stack_ports() -> dict[str, int]:
    """``Settings`` port fields for a whole throw-away stack (replica included), on one free block."""
    base = free_port_block(len(STACK_PORT_FIELDS))
    return {name: base + i for i, name in enumerate(STACK_PORT_FIELDS)}


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
