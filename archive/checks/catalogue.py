"""The 四性检测 catalogue (DA/T 70-2018) as data: stage, property, group, item, code, check.

Stages: GD 归档 (archiving), YJ 移交与接收 (transfer), CQ 长期保存 (preservation). The numbering
follows what implementations use (unverified against the standard's text); to load the official
numbering, replace :data:`CATALOGUE` (or call :func:`load_catalogue` on a JSON file of the same
shape). ``check`` names the function in :mod:`archive.checks.items` that evaluates the item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PROPERTIES = ("真实性", "完整性", "可用性", "安全性")
STAGES = {"GD": "归档", "YJ": "移交与接收", "CQ": "长期保存"}


@dataclass(frozen=True)
class CatalogueItem:
    stage: str
    property: str
    group: str
    item: str
    code: str
    check: str

    def to_dict(self) -> dict[str, str]:
        # Plain dict built directly: dataclasses.asdict deep-copies and is slow on hot paths.
        return {"stage": self.stage, "property": self.property, "group": self.group, "item": self.item,
                "code": self.code, "check": self.check}


# (property, group, item, check) — the same list serves each stage; codes are <stage>-<p>-<n>.
_ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("真实性", "来源真实性", "固化信息有效性（电子印章、签名、摘要可验证）", "seals_verify"),
    ("真实性", "元数据准确性", "元数据项数据长度", "metadata_length"),
    ("真实性", "元数据准确性", "元数据项数据类型和格式", "metadata_format"),
    ("真实性", "元数据准确性", "元数据项值域（代码表）", "metadata_code_list"),
    ("真实性", "元数据准确性", "元数据项值合理性", "metadata_plausible"),
    ("真实性", "元数据准确性", "元数据项非法字符", "metadata_characters"),
    ("真实性", "元数据准确性", "档号规范性", "archival_code"),
    ("真实性", "元数据准确性", "元数据项重复性", "metadata_unique"),
    ("真实性", "元数据准确性", "标识符校验位（证照标识、统一社会信用代码、公民身份号码）", "identifiers"),
    ("真实性", "内容真实性", "电子属性一致性（文件名、大小、格式、摘要）", "content_attributes"),
    ("真实性", "元数据与内容关联", "元数据与内容关联一致性", "metadata_content_link"),
    ("真实性", "归档信息包真实性", "归档信息包结构规范性", "package_structure"),
    ("完整性", "数据总量", "总件数、总字节数与归档登记表相符", "totals"),
    ("完整性", "元数据完整性", "必填著录项目", "mandatory_metadata"),
    ("完整性", "元数据完整性", "件号连续性", "item_numbers"),
    ("完整性", "内容完整性", "内容数据齐全完整", "content_complete"),
    ("完整性", "归档信息包完整性", "归档信息包元数据完整、文件数量相符", "package_complete"),
    ("可用性", "元数据可用性", "元数据可读", "metadata_readable"),
    ("可用性", "内容可用性", "文件格式为归档格式", "allowed_format"),
    ("可用性", "内容可用性", "内容可正常打开", "content_opens"),
    ("可用性", "软硬件环境", "软硬件环境信息记录", "environment"),
    ("可用性", "归档信息包可用性", "无加密、无专有压缩", "no_encryption"),
    ("安全性", "病毒检测", "病毒检测", "malware"),
    ("安全性", "载体安全性", "无外来文件", "no_foreign_files"),
    ("安全性", "过程安全性", "归档过程中未被篡改（固定性）", "fixity"),
)
_PROPERTY_NO = {p: i + 1 for i, p in enumerate(PROPERTIES)}


def _build() -> tuple[CatalogueItem, ...]:
    out: list[CatalogueItem] = []
    for stage in STAGES:
        counters = dict.fromkeys(PROPERTIES, 0)
        for prop, group, item, check in _ITEMS:
            counters[prop] += 1
            code = f"{stage}-{_PROPERTY_NO[prop]}-{counters[prop]}"
            out.append(CatalogueItem(stage, prop, group, item, code, check))
    return tuple(out)


CATALOGUE: tuple[CatalogueItem, ...] = _build()


def items_for(stage: str, catalogue: tuple[CatalogueItem, ...] = CATALOGUE) -> list[CatalogueItem]:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    return [i for i in catalogue if i.stage == stage]


def load_catalogue(path: Path) -> tuple[CatalogueItem, ...]:
    """A catalogue from a JSON list of objects with the fields of :class:`CatalogueItem`."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return tuple(CatalogueItem(**{k: str(r[k]) for k in CatalogueItem.__dataclass_fields__}) for r in rows)
