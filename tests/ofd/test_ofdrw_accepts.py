"""Every kind of OFD SealFlow writes is accepted by ofdrw's own validator (issue 12 item 7): one seal,
several seals, a 骑缝章 across pages, and our seal added to another vendor's sealed invoice (both seals
must pass). The checker (shared/tools/ofdrw-verify/run.sh) installs Java and Debian's jars with
apt-get on first use; the test is skipped, with the reason, only where that cannot be done."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.placement import Placement
from tests.shared_paths import SHARED_DIR

RUN = SHARED_DIR / "tools" / "ofdrw-verify" / "run.sh"
ANCHOR = Placement(page=None, x_mm=None, y_mm=None, anchor_text="（盖章）", offset_mm=(0.0, 0.0), cross_page=False)


def ofdrw(paths: list) -> dict[str, dict]:
    if not RUN.is_file():
        pytest.skip(f"ofdrw checker not found at {RUN}")
    try:
        done = subprocess.run(["sh", str(RUN), *map(str, paths)], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("ofdrw checker did not answer within 600 s")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines and shutil.which("java") is None:
        pytest.skip(f"Java cannot be installed here, so ofdrw cannot run: {done.stderr.strip()[-300:]}")
    assert lines, f"ofdrw checker failed (exit {done.returncode}): {done.stderr[-2000:]}"
    return {line["path"]: line for line in lines}


@pytest.fixture(scope="module")
def outputs(kit, interop_dir, tmp_path_factory) -> dict[str, tuple[bytes, int]]:
    """name → (sealed bytes, number of seals)."""
    cert = make_sample_certificate_ofd(sample_business_licence_fields(11), "business_licence")
    one = stamp_ofd(cert, kit.seal_der, kit.signer, ANCHOR)
    two = stamp_ofd(one, kit.seal_der, kit.signer, Placement(page=0, x_mm=60, y_mm=60))
    three = stamp_ofd(two, kit.seal_der, kit.signer, Placement(page=0, x_mm=150, y_mm=60))
    five_pages = (interop_dir / "Page5.ofd").read_bytes()
    cross = stamp_ofd(five_pages, kit.seal_der, kit.signer, Placement(page=0, x_mm=0, y_mm=150), cross_page=True)
    cross_then_seal = stamp_ofd(cross, kit.seal_der, kit.signer, Placement(page=4, x_mm=100, y_mm=200))
    invoice = stamp_ofd((interop_dir / "v4signed.ofd").read_bytes(), kit.seal_der, kit.signer,
                        Placement(page=0, x_mm=60, y_mm=60))
    return {"one-seal.ofd": (one, 1), "two-seals.ofd": (two, 2), "three-seals.ofd": (three, 3),
            "cross-page.ofd": (cross, 1), "cross-page-and-seal.ofd": (cross_then_seal, 2),
            "vendor-invoice-plus-ours.ofd": (invoice, 2)}


def test_ofdrw_accepts_every_kind_of_ofd_we_write(kit, outputs, tmp_path):
    paths = {}
    for name, (data, _seals) in outputs.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    answers = ofdrw(list(paths.values()))
    for name, (data, seals) in outputs.items():
        answer = answers[str(paths[name])]
        assert answer["ofdrw_valid"] is True, (name, answer)
        assert answer["signatures"] == seals, (name, answer)
        ours = verify_ofd(data, name, kit.trust)
        mine = ours.signatures if name != "vendor-invoice-plus-ours.ofd" else ours.signatures[1:]
        assert all(s.verdict == "valid" for s in mine), (name, ours.to_json())
        assert all(s.intact for s in ours.signatures), name


def test_ofdrw_rejects_a_tampered_seal(kit, outputs, tmp_path):
    """The checker is not a rubber stamp: one changed byte of a signed page fails there too."""
    from .helpers import flip_byte

    path = tmp_path / "tampered.ofd"
    path.write_bytes(flip_byte(outputs["one-seal.ofd"][0], "Doc_0/Pages/Page_0/Content.xml"))
    (answer,) = ofdrw([path]).values()
    assert answer["ofdrw_valid"] is False and answer["stage"] == "reference-digest", answer
