"""The console says why a row was quarantined in plain Chinese, and keeps the technical text."""

from __future__ import annotations

import sys

from tests.pipeline.plugins_path import PLUGINS

sys.path.insert(0, str(PLUGINS))

from stamping.reasons import FALLBACK, chinese


def test_the_reasons_the_manifest_check_gives_read_as_chinese_with_how_to_fix() -> None:
    assert chinese("file 'x.pdf' is not in the batch folder").startswith("找不到该文件")
    assert chinese("file 'x.pdf' is neither a PDF nor an OFD package").startswith("文件不是 PDF/OFD")
    said = chinese("holder_code: 统一社会信用代码 check character is X, expected 7")
    assert "是 X" in said and "应为 7" in said
    twice = chinese("licence_number 00120260000900 appears 2 times in the manifest")
    assert twice.startswith("同一证照编号在清单中出现 2 次")
    assert chinese("licence_number is missing") == "清单缺少字段 licence_number：请在清单中填写该列后重新提交。"


def test_an_unknown_reason_is_not_dropped_but_falls_back_to_a_general_sentence() -> None:
    assert chinese("something nobody foresaw") == FALLBACK
