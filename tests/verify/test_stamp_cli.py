"""``sealflow stamp`` argument handling (the end-to-end run with the registry is in test_stamp_cli_e2e)."""

from __future__ import annotations

import pytest

from sealflow.cli import main
from sealflow.commands.stamp import parse_placement, plan
from sealflow.exits import UsageError


def test_placement_spec():
    p = parse_placement("anchor=（盖章）,dx=2.5,dy=-3")
    assert p.anchor_text == "（盖章）" and tuple(p.offset_mm) == (2.5, -3.0) and not p.cross_page
    p = parse_placement("page=1,x=150,y=240")
    assert (p.page, p.x_mm, p.y_mm, p.anchor_text) == (1, 150.0, 240.0, None)
    assert parse_placement("y=150", cross_page=True).cross_page
    for bad in ("x=1", "colour=red", "x=a,y=2", "anchor"):
        with pytest.raises(UsageError):
            parse_placement(bad)


def test_plan_files_and_folders(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.ofd").write_bytes(b"x")
    (src / "sub" / "b.PDF").write_bytes(b"x")
    (src / "c.txt").write_bytes(b"x")
    jobs = plan(src, tmp_path / "out")
    assert [(s.name, d.relative_to(tmp_path).as_posix()) for s, d in jobs] == [
        ("a.ofd", "out/a.ofd"), ("b.PDF", "out/sub/b.PDF")]
    out_dir = tmp_path / "o2"
    out_dir.mkdir()
    assert plan(src / "a.ofd", out_dir) == [(src / "a.ofd", out_dir / "a.ofd")]
    with pytest.raises(UsageError):
        plan(tmp_path / "missing", tmp_path / "out")


def test_stamp_usage_errors(tmp_path, monkeypatch):
    doc = tmp_path / "a.ofd"
    doc.write_bytes(b"x")
    monkeypatch.delenv("SF_TEST_PIN", raising=False)
    assert main(["stamp", "--seal", "X", "--pin-env", "SF_TEST_PIN", str(doc), str(tmp_path / "o.ofd")]) == 2
    monkeypatch.setenv("SF_TEST_PIN", "123456")
    assert main(["stamp", "--seal", "X", "--pin-env", "SF_TEST_PIN", "--placement", "bogus=1",
                 str(doc), str(tmp_path / "o.ofd")]) == 2
    assert main(["stamp", "--seal", "X", "--pin-env", "SF_TEST_PIN", str(tmp_path / "none.ofd"),
                 str(tmp_path / "o.ofd")]) == 2
    assert not (tmp_path / "o.ofd").exists()
