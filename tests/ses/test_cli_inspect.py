"""``sealflow seal inspect``: text, JSON, picture export, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealflow.cli import main


def test_inspect_text(interop_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seal", "inspect", str(interop_dir / "UserV4.esl")]) == 0
    out = capsys.readouterr().out
    assert "Seal (SESeal) version 4" in out and "51f044b76510434e9bc67a1185c2fba5" in out


def test_inspect_json_and_picture(interop_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pic = tmp_path / "seal.png"
    assert main(["seal", "inspect", "--json", "--picture", str(pic), str(interop_dir / "SignedValueV5.dat")]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["kind"] == "signature" and desc["seal"]["version"] == 5
    assert pic.read_bytes().startswith(b"\x89PNG")


def test_inspect_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seal", "inspect", str(tmp_path / "missing.esl")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.esl"
    bad.write_bytes(b"not a seal")
    assert main(["seal", "inspect", str(bad)]) == 2
    assert "bad.esl: not a seal or seal signature" in capsys.readouterr().err
