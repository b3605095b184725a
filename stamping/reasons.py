"""Quarantine and verification reasons in plain Chinese with how to fix them (隔离原因与验章结论的中文说明).

The pipeline records reasons in English, naming fields and checks; whoever shows them to a person (the
batch report, ``sealflow verify --html``, the console) puts the Chinese sentence first and keeps the
technical text in small print, so nothing is lost in translation. Unknown reasons fall back to a
general sentence plus the original — never silently dropped.

Decision: one table in the stamping domain, below every reader of it — the reports here and the
console in ``plugins/`` import it; a copy per reader would drift apart.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_RULES: list[tuple[re.Pattern[str], str]] = [
    # What the archive refused (first: the technical text names "sealed" documents, matched below).
    (re.compile(r"^not archived: licence \S+ is already archived as (\S+)"),
     "未归档：该证照已归档（档号 {0}），本文件是同一证照再次盖章，但批次未声明换发/补发：如确为换发或补发，"
     "请在清单 reissue 列写明类型、reissue_reason 列写明原因后重新提交。"),
    (re.compile(r"^not archived: .*already archived as (\S+) by batch (\S+?);"),
     "未归档：同一盖章文件已由批次 {1} 归档（档号 {0}），不重复归档。"),
    (re.compile(r"^not archived: "), "未归档：档案系统拒收该文件，原因见技术说明。"),
    (re.compile(r"^seal \S+ not used: at stamping time .*identity register does not confirm"),
     "盖章时身份核验未通过：身份登记信息不再确认印章单位或人员（与审批时不同），本文件未盖章；请核对登记信息后重新提交批次。"),
    (re.compile(r"^seal \S+ not used: at stamping time"),
     "盖章时印章登记系统拒绝用章（审批后印章状态或权限有变），本文件未盖章；请按技术说明处理后重新提交批次。"),
    (re.compile(r"was already sealed by SealFlow in batch (\S+?);"),
     "该证照已在批次 {0} 盖章：如为换发或补发，请在清单 reissue 列写明类型、reissue_reason 列写明原因后重新提交。"),
    # What the batch pipeline itself records (before the manifest rules: "sealed" would match below).
    (re.compile(r"^verdict valid_with_warnings"), "验章有警告：批次只接受完全有效的文件，请按警告改正原件后重新盖章。"),
    (re.compile(r"^warning: "), "验章警告：见技术说明；改正原件后重新盖章。"),
    (re.compile(r"^sealed file changed after stamping"), "盖章后的文件在验章前被改动：请重新提交该文件盖章。"),
    (re.compile(r"^not finished: chunk (\d+)"),
     "尚未处理完：第 {0} 组在重试用尽前未完成，请在 Airflow 中清除该组的任务后重试。"),
    (re.compile(r"^no signatures|not sealed"), "文件没有签章：请确认提交的是盖章后的文件。"),
    (re.compile(r"not in the batch folder"), "找不到该文件：请把文件放入批次文件夹，或改正清单中的文件名。"),
    (re.compile(r"neither a PDF nor an OFD"), "文件不是 PDF/OFD：请换成正确的证照文件，或改正 format 列。"),
    (re.compile(r"check character is (\S+), expected (\S+)"),
     "校验位不对（是 {0}，应为 {1}）：请核对编号，可能输错了一位。"),
    (re.compile(r"appears (\d+) times in the manifest"), "同一证照编号在清单中出现 {0} 次：请删去重复的行。"),
    (re.compile(r"(\w+) is missing"), "清单缺少字段 {0}：请在清单中填写该列后重新提交。"),
    (re.compile(r"is not a date"), "日期格式不对：请写成 YYYY-MM-DD（例如 2026-01-31）。"),
    (re.compile(r"valid_until is before valid_from"), "有效期截止早于起始：请核对两个日期。"),
    (re.compile(r"issue_date is in the future"), "发证日期在未来：请核对发证日期。"),
    (re.compile(r"^retention"), "保管期限只能是 永久、30年 或 10年：请改正该列。"),
    (re.compile(r"^format"), "格式只能是 pdf 或 ofd：请改正 format 列。"),
    (re.compile(r"holder_code"), "持证主体代码不正确（统一社会信用代码或身份证号校验失败）：请核对。"),
    (re.compile(r"issuer_code"), "发证机构代码不正确：请核对发证机构的统一社会信用代码。"),
    (re.compile(r"control characters"), "字段含有控制字符：请删去不可见字符后重新导出清单。"),
    (re.compile(r"characters, "), "字段过长：请缩短该字段。"),
    (re.compile(r"not found|no such file|missing file", re.I), "找不到该文件：请把文件放入批次文件夹或改正文件名。"),
    (re.compile(r"not a (PDF|OFD)|not an OFD or PDF|cannot be read|unreadable|damaged|corrupt", re.I),
     "文件已损坏或不是 PDF/OFD：请重新生成该文件。"),
    (re.compile(r"duplicate", re.I), "与本批次另一行重复：请删去重复的一行。"),
    (re.compile(r"encrypt", re.I), "文件已加密：请提供未加密的文件。"),
    (re.compile(r"sealed|signature", re.I), "文件已盖章或已签名：请提供未盖章的原件，或按重新盖章流程办理。"),
]
FALLBACK = "该行未通过检查：请按下方技术说明改正后重新提交。"
_CHECK_PREFIX = re.compile(r"^([a-z_]+): ")


def chinese(reason: str) -> str:
    """The Chinese sentence (with how to fix it) for one recorded reason: a failed 验章 check
    (``name: detail``) by the check's name, anything else by the rules above."""
    warning = reason.startswith("warning: ")
    named = _CHECK_PREFIX.match(reason.removeprefix("warning: "))
    if named and named.group(1) in CHECK_ZH:
        what = CHECK_ZH[named.group(1)]
        return f"验章警告：{what}（批次只接受完全有效的文件）。" if warning else f"验章未通过：{what}。"
    for pattern, text in _RULES:
        match = pattern.search(reason)
        if match:
            return text.format(*match.groups())
    return FALLBACK


VERDICT_ZH = {"valid": "有效", "valid_with_warnings": "有效但有警告", "not_valid": "无效"}

# 验章 checks by their technical name, as a person reads them (the name stays in small print).
CHECK_ZH = {
    "data_hash": "盖章后文件被改动（摘要不符）",
    "byte_range": "签名覆盖范围不完整或被改动",
    "signed_value": "签章值无效",
    "signer_signature": "签章人签名无效",
    "signer_chain": "签章人证书不受信任或证书链不完整",
    "seal": "印章数据无效",
    "seal_esl": "印章数据无效或被替换",
    "references": "被签名的文件内容被改动",
    "signature_xml": "签名描述文件被改动",
    "signing_time": "签章时间不可信或不在证书有效期内",
    "timestamp": "时间戳无效",
    "later_changes": "盖章后有新的修改",
    "coverage": "签名未覆盖全部内容",
    "use_recorded": "用印登记中查不到这次用章",
    "algorithms": "使用了不被接受的算法",
    "cms": "签名数据格式无效",
    "pdf_structure": "PDF 结构有问题",
    "maker_signature": "制章者对印章的签名无效",
    "maker_chain": "制章者证书不受信任或证书链不完整",
    "seal_status": "签章时印章已停用、吊销或挂失",
    "seal_validity_at_signing": "签章时不在印章有效期内",
    "signer_cert_validity": "签章时不在签章人证书有效期内",
    "signer_in_cert_list": "签章人证书不在印章授权的证书列表中",
    "drawn_parts": "部分显示内容不在签名保护范围内",
    "cross_page": "骑缝章不完整",
    "stamp_annot": "签章外观（印章图片）有问题",
    "sub_filter": "签名类型不被接受",
    "rendering": "签章外观与印章不一致",
    "content_type": "签名数据类型不对",
    "property_info": "印章属性信息有问题",
}

VERDICT_EN = {"valid": "valid", "valid_with_warnings": "valid with warnings", "not_valid": "not valid"}


def check_zh(name: str) -> str:
    """A check's name as a person reads it; an unknown check keeps its technical name."""
    return CHECK_ZH.get(name, name)


BEIJING = ZoneInfo("Asia/Shanghai")


def human_time(value: datetime | str | None, seconds: bool = False) -> str:
    """``2026年11月28日 16:40（北京时间）`` — a time as the office reads it; '' when unknown. A time
    without a zone is UTC (how SealFlow stores them)."""
    if not value:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(BEIJING)
    return f"{when:%Y年%m月%d日 %H:%M:%S}（北京时间）" if seconds else f"{when:%Y年%m月%d日 %H:%M}（北京时间）"

