"""验章 of a chunk reads each seal's status history once (``SealRegistry.status_snapshot``), and
outside the block every look-up reads the registry afresh, so a revocation is seen at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from stamping.verdict.result import SealStatus
from tests.registry.conftest import PERSON, PERSON_ID, World


def count_status_queries(world: World) -> list[str]:
    seen: list[str] = []

    @event.listens_for(world.engine, "before_cursor_execute")
    def record(conn, cursor, statement, *args) -> None:
        if "registry_status_history" in statement:
            seen.append(statement)

    return seen


def test_inside_a_snapshot_each_seal_history_is_read_once(world: World) -> None:
    reg, es_id = world.registry, world.made()
    other = world.made("personal", PERSON, holder_id_number=PERSON_ID)
    later = world.clock.now + timedelta(hours=1)
    queries = count_status_queries(world)
    with reg.status_snapshot():
        for _ in range(5):
            assert reg.status_at(es_id, later) is SealStatus.ACTIVE
            assert reg.status_at(other, later) is SealStatus.ACTIVE
    assert len(queries) == 2


def test_outside_a_snapshot_every_lookup_reads_the_registry(world: World) -> None:
    reg, es_id = world.registry, world.made()
    queries = count_status_queries(world)
    for _ in range(3):
        reg.status_at(es_id, world.clock.now)
    assert len(queries) == 3


def test_a_revocation_after_the_snapshot_block_is_seen_by_the_next_lookup(world: World) -> None:
    reg, es_id = world.registry, world.made()
    with reg.status_snapshot():
        assert reg.status_at(es_id, world.clock.now) is SealStatus.ACTIVE
    world.clock.advance(minutes=1)
    reg.revoke("admin", es_id, "key compromised")
    after = world.clock.advance(minutes=1)
    with reg.status_snapshot():
        assert reg.status_at(es_id, after) is SealStatus.REVOKED
    assert reg.status_at(es_id, after) is SealStatus.REVOKED
