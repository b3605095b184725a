import json
from pathlib import Path

import pytest

from stamping.batch.manifest import ManifestError, check_manifest, read_manifest
from stamping.batch.samples import MANIFEST_FIELDS, sample_rows


def _write(folder: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    for row in rows:
        path = folder / row["file"]
        if not path.exists():
            path.write_bytes(b"%PDF-1.7\n" if row["format"] == "pdf" else b"PK\x03\x04rest")
    manifest = folder / "manifest.csv"
    with manifest.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def test_good_rows_are_accepted(tmp_path: Path) -> None:
    rows = sample_rows(8)
    checked = check_manifest(read_manifest(_write(tmp_path, rows)), tmp_path)
    assert [r.file for r in checked.accepted] == [r["file"] for r in rows]
    assert checked.rejected == []
    person = next(r for r in checked.accepted if r.licence_type == "执业药师注册证")
    assert person.holder_code_kind == "id_number"
    assert {r.retention for r in checked.accepted} == {"Y", "D30", "D10"}


def test_each_bad_row_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    rows = sample_rows(7)
    rows[0]["licence_id"] = rows[0]["licence_id"][:-1] + ("A" if rows[0]["licence_id"][-1] != "A" else "B")
    rows[1]["issue_date"] = "2024-13-40"
    rows[2]["retention"] = "5年"
    rows[3]["file"] = "../escape.pdf"
    rows[4]["licence_number"] = rows[5]["licence_number"]
    manifest = _write(tmp_path, [r for r in rows if r["file"] != "../escape.pdf"] + [rows[3]])
    (tmp_path / rows[6]["file"]).write_bytes(b"GIF89a")
    checked = check_manifest(read_manifest(manifest), tmp_path)
    reasons = {r.file: " | ".join(r.reasons) for r in checked.rejected}
    assert "证照标识 check character" in reasons[rows[0]["file"]]
    assert "issue_date '2024-13-40' is not a date" in reasons[rows[1]["file"]]
    assert "retention '5年'" in reasons[rows[2]["file"]]
    assert "must be a relative path" in reasons["../escape.pdf"]
    assert "appears 2 times" in reasons[rows[4]["file"]] and "appears 2 times" in reasons[rows[5]["file"]]
    assert "neither a PDF nor an OFD" in reasons[rows[6]["file"]]
    assert checked.accepted == []


def test_declared_format_must_match_the_file(tmp_path: Path) -> None:
    rows = sample_rows(2)
    (tmp_path / rows[0]["file"]).write_bytes(b"PK\x03\x04")  # says pdf, is a zip
    checked = check_manifest(read_manifest(_write(tmp_path, rows)), tmp_path)
    assert "declared pdf but is a ofd" in checked.rejected[0].reasons[0]


def test_chinese_column_names_and_json(tmp_path: Path) -> None:
    rows = sample_rows(2)
    _write(tmp_path, rows)
    chinese = [{"文件": r["file"], "证照标识": r["licence_id"], "证照编号": r["licence_number"],
                "证照类型": r["licence_type"], "持证主体": r["holder_name"], "持证主体代码": r["holder_code"],
                "颁发机构": r["issuer_name"], "颁发日期": r["issue_date"], "有效期起始": r["valid_from"],
                "有效期截至": r["valid_until"], "关联事项": r["related_matter"], "保管期限": r["retention"]}
               for r in rows]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(chinese, ensure_ascii=False), encoding="utf-8")
    checked = check_manifest(read_manifest(path), tmp_path)
    assert len(checked.accepted) == 2, checked.rejected


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("manifest.json", b"{not json", "is not valid JSON"),
    ("manifest.csv", b"\xff\xfe\x00bad", "is not UTF-8"),
    ("manifest.json", b"[]", "lists no documents"),
    ("manifest.txt", b"a,b", "must be a .csv or .json"),
])
def test_unreadable_manifests_name_the_file(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ManifestError) as err:
        read_manifest(path)
    assert str(path) in str(err.value) and reason in str(err.value)


def test_a_reissue_is_declared_with_its_kind_and_reason(tmp_path: Path) -> None:
    import csv

    rows = sample_rows(4)
    manifest = _write(tmp_path, rows)
    for row, (kind, reason) in zip(rows, [("换发", "名称变更"), ("补发", ""), ("重发", "x"), ("", "")], strict=True):
        row["reissue"], row["reissue_reason"] = kind, reason
    with manifest.open("w", encoding="utf-8", newline="") as fh:  # the optional columns, by their Chinese names
        writer = csv.DictWriter(fh, fieldnames=[*MANIFEST_FIELDS, "换发补发", "换发补发原因"])
        writer.writeheader()
        writer.writerows({**{k: v for k, v in r.items() if k not in ("reissue", "reissue_reason")},
                          "换发补发": r["reissue"], "换发补发原因": r["reissue_reason"]} for r in rows)
    checked = check_manifest(read_manifest(manifest), tmp_path)
    accepted = {r.file: (r.reissue, r.reissue_reason) for r in checked.accepted}
    assert accepted == {rows[0]["file"]: ("换发", "名称变更"), rows[3]["file"]: ("", "")}
    reasons = {r.file: " | ".join(r.reasons) for r in checked.rejected}
    assert "needs its reason" in reasons[rows[1]["file"]]
    assert "must be 换发 or 补发" in reasons[rows[2]["file"]]
