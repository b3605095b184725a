"""Property: any single-byte change inside any member of a sealed OFD (ours or a vendor's) is caught."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement

from .helpers import members, replace_member

_SEALED: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def sealed_docs(kit, interop_dir) -> dict[str, bytes]:
    if not _SEALED:
        src = make_sample_certificate_ofd(sample_business_licence_fields(9), "business_licence")
        ours = stamp_ofd(src, kit.seal_der, kit.signer, Placement(page=None, anchor_text="（盖章）"))
        _SEALED["ours"] = stamp_ofd(ours, kit.seal_der, kit.signer, Placement(page=0, x_mm=60, y_mm=240))
        _SEALED["v4signed"] = (interop_dir / "v4signed.ofd").read_bytes()
    return _SEALED


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["ours", "v4signed"]), pick=st.integers(0, 10**6), pos=st.floats(0, 1),
       delta=st.integers(1, 255))
def test_any_byte_change_is_detected(sealed_docs, kit, which, pick, pos, delta):
    data = sealed_docs[which]
    contents = members(data)
    names = sorted(n for n in contents if not n.endswith("Signatures.xml") and contents[n])
    name = names[pick % len(names)]
    content = bytearray(contents[name])
    i = min(int(pos * len(content)), len(content) - 1)
    content[i] = (content[i] + delta) % 256
    result = verify_ofd(replace_member(data, name, bytes(content)), which, kit.trust)
    assert not result.intact, (name, i)
    where = [result.error or ""] + [c.reason for s in result.signatures for c in s.checks if not c.ok]
    # the changed part is named, unless it is the signature data itself (then the signature fails)
    if not name.endswith(("Signature.xml", "SignedValue.dat")):
        assert any(name in w for w in where), (name, where)


def test_a_page_box_that_is_not_numbers_fails_the_document_with_its_reason(kit, sealed_docs) -> None:
    """Found by the property above: one changed byte in Document.xml's PhysicalBox ("297" → ":97")
    made 验章 raise ValueError instead of answering INVALID."""
    data = sealed_docs["ours"]
    name = "Doc_0/Document.xml"
    content = members(data)[name]
    assert b"<ofd:PhysicalBox>" in content
    broken = re.sub(rb"(<ofd:PhysicalBox>[^<]*?)(\d)(</ofd:PhysicalBox>)", rb"\1:\3", content, count=1)
    assert broken != content
    result = verify_ofd(replace_member(data, name, broken), "ours", kit.trust)
    assert not result.valid
    assert "Doc_0/Document.xml: PhysicalBox" in (result.error or "")
    assert "not a list of numbers" in result.error
