"""The batch report: ``report.html`` for the records office, ``report.json`` for machines.

The page opens with what a person asks first — did it work, who approved, which seal, is it archived
and filed — then one line per file with its verdict (有效 / 有效但有警告 / 无效 / 隔离) and the reason
in plain Chinese (``stamping.reasons``), the technical text in small print; problem rows come first.

Decisions:
- Lean by construction (a 10,000-document batch must not weigh hundreds of megabytes): the stylesheet
  once in the head, the seal picture once per seal as a CSS class (a thumbnail, not the print-size
  image), and one table row per document with no per-document blocks. ``tests/batch/test_report_size.py``
  holds it to at most 5 KB per document.
- The JSON keeps every field it had (machines read it) and gains the same facts as the page.
- What happens after stamping (archiving, filing) is known to the layers above: the archive imports
  this package, never the other way. ``write_report`` takes it as ``AfterStamping``; the archiving glue
  calls it again once the batch is archived and once it is filed, so the report says so.
- Written to the work store (``batches/<batch_id>/report.*``, where every step of the batch can read
  it, whichever machine ran it). The office's copy: with ``reports_dir`` (``SEALFLOW_REPORTS_DIR``,
  outside the private state directory) both files are published there, 0640 (``REPORT_MODE``) in a
  0750 folder for the office's group.
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from filing.outbox import OutboxRecord
from kernel.files import write_atomic
from kernel.workstore import WorkStore
from stamping.batch.approval import current as current_approval
from stamping.batch.keys import batch_file_key
from stamping.batch.models import Batch, BatchDocument
from stamping.reasons import VERDICT_EN, VERDICT_ZH, chinese, human_time

REPORT_MODE = 0o640  # the office's group reads it; the state directory's secrets stay 0600
PUBLISHED_DIR_MODE = 0o750
# Document states that still wait for work: a batch with any of them is not finished.
PENDING_STATES = ("accepted", "stamped")
PROBLEM_ORDER = {"quarantined": 0, "refused": 1, "failed": 1, "accepted": 2, "stamped": 2, "verified": 3}
THUMBNAIL_PX = 160

STATUS_ZH = {"done": "完成", "refused": "已拒绝（未盖章）", "incomplete": "未完成（有文件待处理）",
             "not_approved": "未获批准（未盖章）", "failed": "失败"}
APPROVAL_ZH = {"approved": "同意", "refused": "拒绝", "pending": "待审批", "expired": "已过期"}
FILING_ZH = {"pending": "待备案", "failed": "备案重试中", "dead": "备案失败（死信，请在控制台运行状况页重试）",
             "sent": "已备案"}
# A document's state as the one word in its line (the verdict of a verified document is 有效).
STATE_WORD = {"verified": ("valid", "有效"), "quarantined": ("quar", "隔离"), "accepted": ("wait", "待盖章"),
              "stamped": ("wait", "待验章"), "refused": ("quar", "未盖章")}

_CSS = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
        "vertical-align:top}th{background:#f4f4f4}small{color:#777;display:block;font-size:.78em;"
        "word-break:break-all}.valid{color:#176317}.not_valid,.quar{color:#b00020;font-weight:bold}"
        ".valid_with_warnings,.wait{color:#8a5a00;font-weight:bold}tr.p{background:#fff3f3}"
        ".v{font-size:1.2em;padding:.4em .8em;border-radius:.3em;display:inline-block}"
        ".v.valid{background:#e8f5e9}.v.bad{background:#fdecea;color:#b00020}"
        ".seal{display:inline-block;width:80px;height:80px;background-size:contain;"
        "background-repeat:no-repeat;vertical-align:middle}")


@dataclass(frozen=True)
class AfterStamping:
    """What became of the batch after stamping, told by the layers above (archive, filing glue).

    ``archival_codes``: 档号 by the SM3 of the sealed file; ``archived``: whether archiving has run
    for the batch (``None``: not yet); ``archive_refused``: documents the archive refused (四性检测, or
    a licence archived before and sealed again without a declared 换发/补发); ``archive_reasons``: why,
    by file; ``work_purged_at``: when the batch's received and sealed files left the work bucket (the
    archive holds the records; manifest and report stay), None while they are there.
    """

    archival_codes: dict[str, str] = field(default_factory=dict)
    archived: bool | None = None
    archive_refused: int = 0
    archive_reasons: dict[str, list[str]] = field(default_factory=dict)
    work_purged_at: datetime | None = None


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _seal_facts(session: Session, es_id: str) -> tuple[str, bytes | None]:
    """(seal name, PNG thumbnail of its picture) from the registry; ('', None) for an unknown seal."""
    from stamping.registry.models import Seal
    from stamping.ses.codec import parse_seal
    from stamping.verdict.seal_checks import picture_png

    seal = session.scalar(select(Seal).where(Seal.es_id == es_id))
    if seal is None:
        return "", None
    try:
        png = picture_png(parse_seal(seal.seal_der))
        return seal.name, _thumbnail(png) if png else None
    except (ValueError, OSError):  # seal data or picture that cannot be read: no picture, the name stands
        return seal.name, None


def _thumbnail(png: bytes) -> bytes:
    """The picture scaled down for the page (it is printed at 80 px; the print-size PNG is tens of KB)."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _filing_state(session: Session, batch_id: str) -> dict:
    """The batch's archive registration (备案) in the filing outbox: its state and receipts."""
    rows = list(session.scalars(select(OutboxRecord).where(OutboxRecord.subject == batch_id,
                                                            OutboxRecord.kind == "archive.register")))
    if not rows:
        return {"state": "", "records": 0, "receipts": 0}
    states = {r.state for r in rows}
    worst = next((s for s in ("dead", "failed", "pending") if s in states), "sent")
    return {"state": worst, "records": len(rows), "receipts": sum(r.state == "sent" for r in rows)}


def _document(d, after: AfterStamping, verdicts: dict[int, str]) -> dict:
    waiting = d.state in PENDING_STATES
    reasons = [_waiting_reason(d.state, d.chunk)] if waiting else list(d.reasons or [])
    if d.state == "verified":  # sealed and valid, yet the archive may have refused it: say why
        reasons += [f"not archived: {r}" for r in after.archive_reasons.get(d.file, [])]
    verdict = "valid" if d.state == "verified" else verdicts.get(d.id, "")
    return {"row": d.row, "file": d.file, "state": d.state, "reasons": reasons,
            "licence_number": (d.record or {}).get("licence_number", ""),
            "holder": (d.record or {}).get("holder_name", ""), "output_sm3": d.output_sm3,
            "verdict": verdict, "archival_code": after.archival_codes.get(d.output_sm3, "") if d.output_sm3 else ""}


def _waiting_reason(state: str, chunk: int) -> str:
    step = "stamp_chunk" if state == "accepted" else "verify_chunk"
    return (f"not finished: chunk {chunk} ran out of retries before this document was "
            f"{'sealed' if state == 'accepted' else 'verified'}; clear {step}[{chunk}] (with downstream) to retry it")


def build_report(session: Session, batch_id: str, *, status: str, finished_at: datetime | None,
                 counts: dict, after: AfterStamping | None = None) -> tuple[dict, dict[str, bytes]]:
    """The report's facts (the JSON) and the seal pictures by es_id, read from the database."""
    after = after or AfterStamping()
    batch = session.get(Batch, batch_id)
    # Only the report's columns: each document's verification summary is kilobytes, not needed here.
    rows = session.execute(
        select(BatchDocument.id, BatchDocument.row, BatchDocument.file, BatchDocument.state, BatchDocument.reasons,
               BatchDocument.record, BatchDocument.output_sm3, BatchDocument.chunk)
        .where(BatchDocument.batch_id == batch_id).order_by(BatchDocument.row)).all()
    failed_ids = [d.id for d in rows if d.state == "failed"]
    verdicts = {i: (v or {}).get("verdict", "not_valid") for i, v in session.execute(
        select(BatchDocument.id, BatchDocument.verification).where(BatchDocument.id.in_(failed_ids)))} \
        if failed_ids else {}
    docs = sorted((_document(d, after, verdicts) for d in rows), key=lambda d: (PROBLEM_ORDER.get(d["state"], 2),
                                                                                  d["row"]))
    approval = current_approval(session, batch_id)
    seal_name, picture = _seal_facts(session, batch.es_id)
    archived = sum(1 for d in docs if d["archival_code"])
    report = {
        "batch_id": batch_id, "es_id": batch.es_id, "seal_name": seal_name, "requester": batch.requester,
        "source": batch.source, "status": status, "created_at": _iso(batch.created_at),
        "finished_at": _iso(finished_at), "counts": counts,
        "pending_chunks": sorted({d.chunk for d in rows if d.state in PENDING_STATES}),
        "approval": {"state": approval.state if approval else "", "approver": approval.decided_by if approval else "",
                     "keeper": approval.keeper if approval else "",
                     "decided_at": _iso(approval.decided_at) if approval else "",
                     "reason": approval.reason if approval else ""},
        "archive": {"state": "" if after.archived is None else "archived", "records": archived,
                    "refused": after.archive_refused},
        "filing": _filing_state(session, batch_id),
        # The work bucket's copies (received files, sealed files, provenance notes): removed once archived
        # and filed (archive.work_purge); the manifest and this report stay.
        "work": {"purged_at": _iso(after.work_purged_at)},
        "documents": docs,
    }
    return report, ({batch.es_id: picture} if picture else {})


# ---- the page ---------------------------------------------------------------------------------------

def _seal_css(pictures: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    """One CSS class per seal picture: the picture's bytes appear once, however many rows show it."""
    css, classes = "", {}
    for n, (es_id, png) in enumerate(sorted(pictures.items())):
        classes[es_id] = f"s{n}"
        css += f".s{n}{{background-image:url(data:image/png;base64,{base64.b64encode(png).decode()})}}"
    return css, classes


def _batch_verdict(report: dict) -> tuple[str, str]:
    """(css class, the one sentence on top) for the batch as a whole."""
    counts, status = report["counts"], report["status"]
    total, good = counts.get("documents", 0), counts.get("verified", 0)
    bad = total - good
    if status in ("refused", "not_approved"):
        return "bad", f"未盖章：{STATUS_ZH[status]}。共 {total} 个文件，均未盖章。"
    if status == "incomplete":
        return "bad", f"未完成：{good} 个文件已盖章并验章有效，{bad} 个文件有问题或待处理（见下方，排在最前）。"
    if bad:
        return "bad", f"{good} 个文件已盖章并验章有效；{bad} 个文件未通过（隔离或无效，见下方，排在最前）。"
    return "valid", f"全部 {total} 个文件已盖章并验章有效。"


def _facts_html(report: dict, seal_class: str) -> str:
    a, arch, fil = report["approval"], report["archive"], report["filing"]
    approval = "无审批记录"
    if a["state"]:
        approval = (f"{escape(APPROVAL_ZH.get(a['state'], a['state']))} · {escape(a['approver'] or a['keeper'])}"
                    f" · {human_time(a['decided_at'])}")
        if a["state"] != "approved" and a["reason"]:  # why it was refused; an approval needs no words
            approval += f" · {escape(a['reason'])}"
    if arch["state"] == "archived":
        refused = f"，拒收 {arch['refused']} 件（原因见下方）" if arch["refused"] else ""
        archive = f"已归档 {arch['records']} 件{refused}"
    else:
        archive = "待归档（archive_batch 运行后本报告更新）" if report["status"] == "done" else "不归档（批次未完成）"
    filing = (f"{FILING_ZH.get(fil['state'], fil['state'])}（回执 {fil['receipts']}/{fil['records']}）"
              if fil["state"] else "待备案（归档后登记）")
    c = report["counts"]
    picture = f'<span class="seal {seal_class}"></span> ' if seal_class else ""
    rows = (("印章 <small>seal</small>", f"{picture}{escape(report['seal_name'] or '—')}"
             f"<small>es_id {escape(report['es_id'])}</small>"),
            ("申请人 <small>requester</small>", escape(report["requester"])),
            ("用章审批 <small>approval</small>", approval),
            ("状态 <small>status</small>", f"{escape(STATUS_ZH.get(report['status'], report['status']))}"
                                           f"<small>{escape(report['status'])}</small>"),
            ("时间 <small>times</small>", f"提交 {human_time(report['created_at'])} → 完成 "
                                          f"{human_time(report['finished_at']) or '—'}"),
            ("文件 <small>documents</small>", f"共 {c.get('documents', 0)} · 有效 {c.get('verified', 0)} · "
                                              f"隔离 {c.get('quarantined', 0)} · 无效 {c.get('failed', 0)}"),
            ("归档 <small>archive</small>", archive),
            ("备案 <small>filing</small>", escape(filing)))
    if report.get("work", {}).get("purged_at"):
        rows += (("工作副本 <small>work copies</small>",
                  f"已于 {human_time(report['work']['purged_at'])} 清理：收到的文件与盖章文件已归档并备案，"
                  f"档案中有其记录（按档号检索）；本报告与清单保留<small>received and sealed files removed from the "
                  f"work bucket after archiving and filing; manifest and report kept</small>"),)
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _reason_html(reasons: list[str]) -> str:
    return "".join(f"{escape(chinese(r))}<small>{escape(r)}</small>" for r in reasons)


def _row_html(d: dict) -> str:
    """One line per file: row, file, 证照编号, holder, verdict, reason (Chinese, then technical), 档号."""
    if d["state"] == "failed":
        css = d["verdict"] if d["verdict"] in VERDICT_ZH else "not_valid"
        word = VERDICT_ZH[css]
    else:
        css, word = STATE_WORD.get(d["state"], ("wait", d["state"]))
    problem = ' class="p"' if d["state"] in ("quarantined", "failed", "refused") else ""
    return (f"<tr{problem}><td>{d['row']}</td><td>{escape(d['file'])}</td><td>{escape(d['licence_number'])}</td>"
            f"<td>{escape(d['holder'])}</td><td class=\"{css}\">{word}</td><td>{_reason_html(d['reasons'])}</td>"
            f"<td>{escape(d['archival_code'])}</td></tr>")


def render_html(report: dict, pictures: dict[str, bytes] | None = None) -> str:
    """The self-contained page (no outside link); every value from the batch is escaped."""
    seal_css, classes = _seal_css(pictures or {})
    css_class, sentence = _batch_verdict(report)
    head = ("<tr><th>行</th><th>文件</th><th>证照编号</th><th>持证主体</th><th>结论<small>verdict</small></th>"
            "<th>原因与改正方法<small>reason</small></th><th>档号<small>archival code</small></th></tr>")
    rows = "\n".join(_row_html(d) for d in report["documents"])
    legend = " · ".join(f"{VERDICT_ZH[k]} {VERDICT_EN[k]}" for k in VERDICT_ZH)
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>批次报告 {escape(report['batch_id'])}</title><style>{_CSS}{seal_css}</style></head><body>"
            f"<h1>批次报告 <small>batch report</small> {escape(report['batch_id'])}</h1>"
            f'<p class="v {css_class}">{escape(sentence)}</p>'
            f"{_facts_html(report, classes.get(report['es_id'], ''))}"
            f"<h2>逐个文件 <small>one line per file — problems first; {escape(legend)}</small></h2>"
            f"<table>{head}\n{rows}\n</table></body></html>\n")


# ---- writing -----------------------------------------------------------------------------------------

def write_report(session: Session, batch_id: str, *, status: str, finished_at: datetime | None, counts: dict,
                 store: WorkStore, after: AfterStamping | None = None, reports_dir: Path | None = None) -> dict:
    """Write report.json and report.html into the work store under ``batches/<batch_id>/`` (and publish
    them to ``reports_dir`` when set); returns ``{"json": name, "html": name, "report": facts}`` with the
    store's names (``s3://…``)."""
    report, pictures = build_report(session, batch_id, status=status, finished_at=finished_at, counts=counts,
                                    after=after)
    data = {"report.json": json.dumps(report, ensure_ascii=False, indent=1).encode(),
            "report.html": render_html(report, pictures).encode()}
    for name, content in data.items():
        store.put(batch_file_key(batch_id, name), content)
    if reports_dir is not None:
        folder = Path(reports_dir) / batch_id
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, PUBLISHED_DIR_MODE)  # explicit: the process runs with umask 077
        for name, content in data.items():
            write_atomic(folder / name, content, mode=REPORT_MODE)
    return {"json": store.name(batch_file_key(batch_id, "report.json")),
            "html": store.name(batch_file_key(batch_id, "report.html")), "report": report}


def refresh_report(session: Session, batch_id: str, after: AfterStamping, store: WorkStore,
                   reports_dir: Path | None = None) -> dict:
    """Write the report of a finished batch again with what happened since (archived, filed)."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.finished_at is None:
        raise ValueError(f"batch {batch_id} has not finished: its report is written by stamp_batch's report task")
    return write_report(session, batch_id, status=batch.status, finished_at=batch.finished_at,
                        counts=state_counts(session, batch_id), store=store, after=after, reports_dir=reports_dir)


def state_counts(session: Session, batch_id: str) -> dict:
    """``{"batch_id", "documents", <state>: n, ...}`` counted in the database."""
    rows = session.execute(select(BatchDocument.state, func.count()).where(
        BatchDocument.batch_id == batch_id).group_by(BatchDocument.state)).all()
    counts = {state: n for state, n in rows}
    return {"batch_id": batch_id, "documents": sum(counts.values()), **counts}
