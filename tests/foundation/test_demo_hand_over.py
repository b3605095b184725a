"""What the demo hands over to the person who ran it. Its local copy of a batch's sealed files ("verify
one yourself") names each file after the certificate it was made from, so a person finds
营业执照-2932389.pdf there and not a digest; two rows with one file name (in different subfolders) keep
their stored names rather than overwrite each other. Its summary says how to get ``sealflow`` on the
PATH, since every command it prints assumes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.workstore import FolderWorkStore
from sealflow.commands.demo import command_line_note
from sealflow.demo_batch import copy_sealed
from stamping.batch.keys import sealed_prefix


def test_sealed_copies_are_named_after_their_certificates(tmp_path: Path) -> None:
    store = FolderWorkStore(tmp_path / "work")
    documents = [{"row": 2, "file": "营业执照-2932389.pdf"}, {"row": 3, "file": "食品经营许可证-2932390.ofd"},
                 {"row": 4, "file": "a/证.pdf"}, {"row": 5, "file": "b/证.pdf"}, {"row": 6, "file": "quarantined.pdf"}]
    for row, ext in ((2, "pdf"), (3, "ofd"), (4, "pdf"), (5, "pdf")):
        store.put(f"{sealed_prefix('demo-1')}{row:064x}-{row}.{ext}", f"sealed row {row}".encode())

    folder = copy_sealed(store, "demo-1", tmp_path / "demo-1-sealed", documents)

    copies = {p.name: p.read_text() for p in folder.iterdir()}
    assert copies["营业执照-2932389.pdf"] == "sealed row 2"
    assert copies["食品经营许可证-2932390.ofd"] == "sealed row 3"
    assert copies["证.pdf"] == "sealed row 4" and copies[f"{5:064x}-5.pdf"] == "sealed row 5"
    assert len(copies) == 4  # one copy per sealed file; nothing for a row that was not sealed


def test_the_summary_says_how_to_put_sealflow_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    monkeypatch.setattr("sys.executable", str(bin_dir / "python"))
    assert command_line_note() == []  # no virtual environment: nothing to say
    (bin_dir / "activate").write_text("# made by python -m venv\n")
    [(label, text)] = command_line_note()
    assert label == "command line" and text.startswith(f". {bin_dir / 'activate'} ")
