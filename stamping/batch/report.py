"""The batch report as a self-contained HTML page for records offices and operators."""

from __future__ import annotations

from html import escape

_STATE_LABEL = {
    "verified": "已盖章并验章通过 sealed and verified",
    "quarantined": "隔离 quarantined (bad manifest row or file)",
    "failed": "失败 failed (stamping or verification)",
    "accepted": "待盖章 waiting to be sealed",
    "stamped": "已盖章待验章 sealed, not yet verified",
}


def render_html(report: dict) -> str:
    counts = report["counts"]
    rows = "\n".join(
        f"<tr class='{escape(d['state'])}'><td>{d['row']}</td><td>{escape(d['file'])}</td>"
        f"<td>{escape(d.get('licence_number', ''))}</td><td>{escape(_STATE_LABEL.get(d['state'], d['state']))}</td>"
        f"<td>{'<br>'.join(escape(r) for r in d['reasons'])}</td></tr>"
        for d in report["documents"]
    )
    summary = "".join(
        f"<li>{escape(k)}: {v}</li>" for k, v in counts.items() if k != "batch_id"
    )
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>批次报告 {escape(report['batch_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}tr.failed,tr.quarantined{{background:#fdd}}
tr.verified{{background:#efe}}</style></head><body>
<h1>批次报告 Batch report {escape(report['batch_id'])}</h1>
<p>Seal {escape(report['es_id'])} · requested by {escape(report['requester'])} · status
<b>{escape(report['status'])}</b> · {escape(report['created_at'])} → {escape(report['finished_at'])}</p>
<ul>{summary}</ul>
<table><tr><th>row</th><th>file</th><th>证照编号</th><th>state</th><th>reasons</th></tr>
{rows}
</table></body></html>
"""
