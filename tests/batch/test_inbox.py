import json
from pathlib import Path

import pytest

from stamping.batch.inbox import InboxError, ready_batches, run_id_for


def _folder(inbox: Path, name: str, spec: object | None, manifest: bool = True) -> Path:
    folder = inbox / name
    folder.mkdir(parents=True)
    if manifest:
        (folder / "manifest.csv").write_text("file\n", encoding="utf-8")
    if spec is not None:
        (folder / "batch.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


def test_only_complete_folders_are_ready(tmp_path: Path) -> None:
    ready = _folder(tmp_path, "2026-11 营业执照", {"es_id": "4500001", "requester": "office"})
    _folder(tmp_path, "still-copying", None)
    _folder(tmp_path, "no-manifest", {"es_id": "4500001"}, manifest=False)
    found = ready_batches(tmp_path)
    assert [f["trigger_run_id"] for f in found] == [run_id_for(ready)]
    conf = found[0]["conf"]
    assert conf["batch_location"] == str(ready) and conf["es_id"] == "4500001"
    assert conf["requester"] == "office" and conf["placement"] == "anchor:（盖章）"
    assert run_id_for(ready) == run_id_for(ready)  # stable: one run per folder, ever


def test_bad_batch_json_names_the_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "b1", None)
    (folder / "batch.json").write_text("{nope", encoding="utf-8")
    with pytest.raises(InboxError, match=r"batch\.json: not readable JSON"):
        ready_batches(tmp_path)
    (folder / "batch.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InboxError, match="naming the seal"):
        ready_batches(tmp_path)


def test_missing_inbox_is_empty(tmp_path: Path) -> None:
    assert ready_batches(tmp_path / "none") == []
