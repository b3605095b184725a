"""How a batch is cut into chunks (one stamp task and one verify task each)."""

from __future__ import annotations

import pytest

from stamping.batch.process import SPLIT_FROM, chunk_length


@pytest.mark.parametrize(("total", "largest", "length"), [
    (12, 4, 4),            # the fault suite's three chunks of four stay as they are
    (40, 1000, 40),        # a small batch is one task: a second would cost more to start than it saves
    (SPLIT_FROM, 1000, 100),  # from 200 documents, two chunks: both cores stamp
    (1000, 1000, 500),
    (10_000, 1000, 1000),  # ten tasks of the largest size, not twenty of half
    (10_001, 1000, 910),   # eleven equal chunks, never a last one of a single document
    (0, 1000, 1),
])
def test_a_batch_is_cut_into_as_few_equal_chunks_as_the_largest_allows(total: int, largest: int, length: int) -> None:
    assert chunk_length(total, largest) == length


def test_no_chunk_is_larger_than_the_largest_and_from_200_there_are_two() -> None:
    for total in range(1, 3000, 7):
        length = chunk_length(total, 1000)
        chunks = -(-total // length)
        assert length <= 1000
        assert chunks >= (2 if total >= SPLIT_FROM else 1)
