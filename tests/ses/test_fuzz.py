"""The parser on hostile input: random bytes, truncations, bit flips, length edits —
it only ever raises SesFormatError."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stamping.ses.codec import SesFormatError, parse_seal, parse_signature
from stamping.ses.inspect import describe
from tests.shared_paths import INTEROP_DIR as INTEROP

from .conftest import SEAL_FILES, SIGNATURE_FILES

# The small tax-bureau signature and the V1 seal, read at import so strategies can use them;
# a missing interop folder leaves a minimal valid-looking seed.
SEEDS = [(INTEROP / n).read_bytes() for n in SEAL_FILES + SIGNATURE_FILES if (INTEROP / n).is_file()] or [
    b"\x30\x06\x30\x00\x30\x00\x30\x00"]


def _parse_all(data: bytes) -> None:
    for fn in (parse_seal, parse_signature, describe):
        with contextlib.suppress(SesFormatError):
            fn(data)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _parse_all(data)


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_in_a_sequence(body: bytes) -> None:
    header = b"\x30" + (bytes([len(body)]) if len(body) < 128 else b"\x82" + len(body).to_bytes(2, "big"))
    _parse_all(header + body)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_truncations(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed) - 1))
    _parse_all(seed[:cut])


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_bit_flips(seed: bytes, data: st.DataObject) -> None:
    # Flips in the first 1 KB hit headers, tags, lengths, dates and names (the rest is picture data).
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, min(len(buf), 1200) - 1))
        buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    _parse_all(bytes(buf))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_byte_replacements_and_insertions(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    pos = data.draw(st.integers(0, min(len(buf), 1200) - 1))
    chunk = data.draw(st.binary(min_size=1, max_size=6))
    if data.draw(st.booleans()):
        buf[pos:pos + len(chunk)] = chunk
    else:
        buf[pos:pos] = chunk
    _parse_all(bytes(buf))
