"""Free ports are chosen one way for every throw-away stack and test server (``sealflow.stack.ports``):
a block whose SeaweedFS gRPC companions are free too, or one port the kernel hands out."""

from __future__ import annotations

import socket

from kernel.settings import Settings
from sealflow.stack.ports import (
    SEAWEED_GRPC_OFFSET,
    STACK_PORT_FIELDS,
    free_port,
    free_port_block,
    free_stack_ports,
    port_is_free,
)


def test_a_port_someone_listens_on_is_not_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def test_a_single_free_port_can_be_bound() -> None:
    assert port_is_free(free_port())


def test_a_block_is_free_with_its_grpc_companions_inside_the_range() -> None:
    base = free_port_block(4, low=21000, high=22700)
    assert base >= 21000 and base + 4 <= 22700
    assert all(port_is_free(p) and port_is_free(p + SEAWEED_GRPC_OFFSET) for p in range(base, base + 4))


def test_a_whole_stack_gets_every_port_setting_once_on_consecutive_ports() -> None:
    ports = free_stack_ports()
    assert list(ports) == list(STACK_PORT_FIELDS)
    assert sorted(ports.values()) == list(range(min(ports.values()), min(ports.values()) + len(STACK_PORT_FIELDS)))
    Settings(**ports)  # every name is a Settings field
