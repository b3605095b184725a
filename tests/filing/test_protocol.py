"""The protocol's canonical bytes and record validation (no network)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filing import protocol as p


def test_canonical_bytes_are_exact() -> None:
    assert p.canonical({"b": 1, "a": ["印", True, None], "A": {"z": "", "y": -2}}) == (
        '{"A":{"y":-2,"z":""},"a":["印",true,null],"b":1}'.encode()
    )


@pytest.mark.parametrize("value", [1.5, float("nan"), 2**53, {1: "x"}, b"bytes"])
def test_canonical_refuses_what_has_no_single_form(value) -> None:
    with pytest.raises(p.ProtocolError):
        p.canonical({"v": value})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_canonical_is_stable_under_key_order(value) -> None:
    import json

    once = p.canonical(value)
    assert p.canonical(json.loads(once)) == once
    if isinstance(value, dict):
        assert p.canonical(dict(reversed(list(value.items())))) == once


def _record(kind: str, subject: str, payload: dict) -> dict:
    return p.record_body("r" * 32, kind, subject, 1, datetime.now(UTC), payload)


def test_valid_records_pass(seal_payload, archive_payload) -> None:
    p.validate_record(_record("seal.make", "ES1", seal_payload("ES1")))
    p.validate_record(_record("archive.register", "B1", archive_payload("B1")))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"seal_name": None}, "seal_name"),
        ({"seal_kind": "secret"}, "seal_kind"),
        ({"owner_id": "123"}, "owner_id"),
        ({"seal_sm3": "XYZ"}, "seal_sm3"),
        ({"es_id": "OTHER"}, "differs from subject"),
        ({"valid_end": "2020-01-01T00:00:00+08:00"}, "valid_end"),
        ({"event_time": "2025-01-01T00:00:00"}, "UTC offset"),
        ({"signer_certs": []}, "signer_certs"),
    ],
)
def test_invalid_seal_events_are_refused_with_the_reason(change, reason, seal_payload) -> None:
    payload = seal_payload("ES1")
    payload.update(change)
    if change.get("seal_name", "") is None:
        del payload["seal_name"]
    with pytest.raises(p.RecordInvalid, match=reason):
        p.validate_record(_record("seal.revoke", "ES1", payload))


def test_unknown_kind_and_extra_fields_are_refused(seal_payload) -> None:
    with pytest.raises(p.RecordInvalid, match="unknown kind"):
        p.validate_record(_record("seal.teleport", "ES1", seal_payload("ES1")))
    record = _record("seal.make", "ES1", seal_payload("ES1"))
    record["extra"] = 1
    with pytest.raises(p.RecordInvalid, match="unknown field"):
        p.validate_record(record)
