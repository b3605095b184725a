"""Our time-stamped seals as other verifiers see them: pyHanko (PDF, with its own timestamp
validation) and ofdrw (OFD: one seal, two seals, 骑缝章); third-party files keep their verdicts and
say their time is only claimed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.pdf.cms import parse_signed_data
from stamping.pdf.sign import stamp_pdf
from stamping.placement import Placement
from stamping.verdict.result import Verdict
from tests.shared_paths import SHARED_DIR

ANCHOR = Placement.parse("anchor:（盖章）")
OFDRW = SHARED_DIR / "tools" / "ofdrw-verify" / "run.sh"


def _pdf() -> bytes:
    from stamping.pdf.samples import make_sample_certificate_pdf

    return make_sample_certificate_pdf(sample_business_licence_fields(3), "business_licence")


def test_pyhanko_validates_our_pdf_and_its_signature_timestamp(kit, tsa):
    from tests.pdf.pyhanko_check import pyhanko_statuses

    one = stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)
    two = stamp_pdf(one, kit.seal_der, kit.signer, Placement(page=0, x_mm=50, y_mm=60), timestamper=tsa)
    for status in pyhanko_statuses(two, kit.ca.root_der, [kit.ca.intermediate_der]):
        assert status.bottom_line, status.pretty_print_details()
        ts = status.timestamp_validity
        assert ts is not None and ts.intact and ts.valid and ts.trusted, status.pretty_print_details()


def test_pyhanko_rejects_a_token_of_another_signature(kit, tsa):
    from tests.pdf.pyhanko_check import pyhanko_statuses

    foreign = tsa.timestamp(b"another signature")

    class Replay:
        def timestamp(self, _value: bytes) -> bytes:
            return foreign

    forged = stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=Replay())
    (status,) = pyhanko_statuses(forged, kit.ca.root_der, [kit.ca.intermediate_der])
    assert not status.bottom_line and not status.timestamp_validity.intact  # pyHanko: "imprint ... expected ..."


def test_the_token_fits_the_reserved_contents_and_is_the_unsigned_attribute(kit, tsa):
    out = stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)
    start = out.rindex(b"/Contents<") + len(b"/Contents<")
    info = parse_signed_data(bytes.fromhex(out[start:out.index(b">", start)].decode()))
    assert info.time_stamp_token is not None and len(info.time_stamp_token) < 4096


def _contents_hole(out: bytes) -> bytes:
    start = out.rindex(b"/Contents<") + len(b"/Contents<")
    return out[start:out.index(b">", start)]


def test_once_a_token_was_seen_the_contents_leave_room_for_that_size_and_a_small_margin(kit, tsa):
    from stamping.pdf.sign import TOKEN_MARGIN

    stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)  # the first token: full reserve
    hole = _contents_hole(stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=tsa))
    padding = len(hole) - len(hole.rstrip(b"0"))
    assert padding <= 2 * (TOKEN_MARGIN + 8)  # 8: an SM2 signature shorter than its longest DER


def test_a_token_larger_than_the_ones_seen_is_stamped_again_with_room_not_failed(kit, tsa, tmp_path):
    from stamping.pdf.verify import verify_pdf

    class Underestimating:
        """The real TSA, whose client claims to have seen only tiny tokens."""

        max_token_bytes = 100

        def timestamp(self, signature_value: bytes) -> bytes:
            return tsa.timestamp(signature_value)

    out = stamp_pdf(_pdf(), kit.seal_der, kit.signer, ANCHOR, timestamper=Underestimating())
    assert parse_signed_data(bytes.fromhex(_contents_hole(out).decode())).time_stamp_token is not None
    assert verify_pdf(out, "retried.pdf", kit.trust).verdict == Verdict.VALID


def _ofdrw(paths: list[Path]) -> list[dict]:
    if not OFDRW.exists():
        pytest.skip(f"ofdrw checker not found at {OFDRW}")
    done = subprocess.run(["sh", str(OFDRW), *map(str, paths)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "java" in (done.stderr + done.stdout).lower():
        pytest.skip(f"Java for ofdrw cannot be installed here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_ofdrw_accepts_our_time_stamped_ofds(kit, tsa, tmp_path):
    src = make_sample_certificate_ofd(sample_business_licence_fields(3), "business_licence")
    one = stamp_ofd(src, kit.seal_der, kit.signer, ANCHOR, timestamper=tsa)
    files = {
        "one.ofd": one,
        "two.ofd": stamp_ofd(one, kit.seal_der, kit.signer, Placement(page=0, x_mm=50, y_mm=60), timestamper=tsa),
        "straddle.ofd": stamp_ofd(src, kit.seal_der, kit.signer, Placement(page=None, y_mm=120, cross_page=True),
                                  timestamper=tsa),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        result = verify_ofd(data, name, kit.trust)
        assert result.verdict == Verdict.VALID, (name, result.to_json())
        assert all({c.name for c in s.checks} >= {"timestamp", "signing_time"} for s in result.signatures)
    answers = _ofdrw([tmp_path / n for n in files])
    assert [a["ofdrw_valid"] for a in answers] == [True, True, True], answers
    assert [a["signatures"] for a in answers] == [1, 2, 1]


@pytest.mark.parametrize("name", ["v4signed.ofd", "signedFile.ofd", "SESV4SignDoc.ofd"])
def test_third_party_files_without_tokens_say_their_time_is_only_claimed(interop_dir, kit, name):
    result = verify_ofd((interop_dir / name).read_bytes(), name, kit.trust)
    assert result.intact and not result.trusted  # as before
    for sig in result.signatures:
        check = next(c for c in sig.checks if c.name == "signing_time")
        assert "claimed" in check.reason and "timestamp" not in {c.name for c in sig.checks}
