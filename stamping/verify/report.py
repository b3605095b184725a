"""验章 reports: JSON (the ``sealflow verify --json`` shape), a self-contained HTML page, and the
reasons a batch records — all showing the one verdict (valid / valid_with_warnings / not_valid).

A not_valid document whose signatures are intact but not trusted says so (完整但不受信任): the
verdict stays not_valid, the nuance helps whoever has to act on it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from stamping.verdict.result import DocumentResult, SignatureResult, Verdict

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc;word-break:break-all}
.ok{color:#176317}.bad{color:#b00020}.warn{color:#8a5a00}
table{border-collapse:collapse;width:100%;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4}.sig{display:flex;gap:1.5em;align-items:flex-start;margin:1em 0}
.sig img{width:120px;height:auto;border:1px solid #eee}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-size:.85em}
ul.warnings{color:#8a5a00}
.b-ok{background:#2e7d32}.b-bad{background:#c62828}.b-warn{background:#ef8f00}
"""


def results_to_json(results: Iterable[DocumentResult]) -> list[dict]:
    return [r.to_json() for r in results]


def dumps(results: Iterable[DocumentResult]) -> str:
    return json.dumps(results_to_json(results), ensure_ascii=False, indent=2)


VERDICT_LABELS = {
    Verdict.VALID: "有效 valid",
    Verdict.VALID_WITH_WARNINGS: "有效但有警告 valid with warnings",
    Verdict.NOT_VALID: "无效 not valid",
}
_BADGE_CLASS = {Verdict.VALID: "b-ok", Verdict.VALID_WITH_WARNINGS: "b-warn", Verdict.NOT_VALID: "b-bad"}


def _verdict(r: DocumentResult | SignatureResult) -> str:
    verdict = r.verdict
    note = ""
    if verdict == Verdict.NOT_VALID and r.intact and not r.trusted:
        note = ' <span class="warn">(完整但不受信任 intact, not trusted)</span>'
    return f'<span class="badge {_BADGE_CLASS[verdict]}">{escape(VERDICT_LABELS[verdict])}</span>{note}'


def _check_state(ok: bool, kind: str) -> tuple[str, str]:
    if ok:
        return "ok", "✔ 通过"
    return ("warn", "⚠ 警告") if kind == "warning" else ("bad", "✘ 未通过")


def _warnings_html(warnings: list[str]) -> str:
    if not warnings:
        return ""
    return '<ul class="warnings">' + "".join(f"<li>⚠ {escape(w)}</li>" for w in warnings) + "</ul>"


def verdict_reasons(result: DocumentResult) -> list[str]:
    """Why a document is not ``valid``, as a batch records it: the error, the failed checks, the warnings
    (batches accept only ``valid``, so a warning is a reason too). Empty for a valid document."""
    if result.verdict == Verdict.VALID:
        return []
    if result.error:
        return [result.error]
    out = [f"{c.name}: {c.reason}" for s in result.signatures for c in s.checks if not c.ok and c.kind != "warning"]
    out += [f"warning: {w}" for w in result.all_warnings]
    if result.verdict == Verdict.VALID_WITH_WARNINGS:
        out.insert(0, "verdict valid_with_warnings: SealFlow batches accept only valid")
    return out or ["no signatures: the document is not sealed"]


def _signature_html(sig: SignatureResult, n: int) -> str:
    img = ""
    if sig.seal_picture_png:
        uri = "data:image/png;base64," + base64.b64encode(sig.seal_picture_png).decode()
        img = f'<img alt="印模 seal picture" src="{escape(uri)}">'
    rows = "".join(
        f'<tr><td>{escape(c.name)}</td><td class="{_check_state(c.ok, c.kind)[0]}">{_check_state(c.ok, c.kind)[1]}'
        f"</td><td>{escape(c.kind)}</td><td>{escape(c.reason)}</td></tr>"
        for c in sig.checks
    )
    facts = (
        f"<tr><th>签章人 signer</th><td>{escape(sig.signer)}</td></tr>"
        f"<tr><th>印章名称 seal</th><td>{escape(sig.seal_name)}</td></tr>"
        f"<tr><th>印章编码 es_id</th><td>{escape(sig.es_id)}</td></tr>"
        f"<tr><th>签章时间 signed at</th><td>{escape(sig.signed_at or '')}</td></tr>"
        f"<tr><th>位置 location</th><td>{escape(sig.location)}</td></tr>"
    )
    return (
        f'<h3>签章 {n} {_verdict(sig)}</h3><div class="sig">{img}<table>{facts}</table></div>'
        f"<table><tr><th>检查 check</th><th>结果 result</th><th>kind</th><th>原因 reason</th></tr>{rows}</table>"
    )


def _document_html(doc: DocumentResult) -> str:
    head = (f"<h2>{escape(doc.path)} {_verdict(doc)}</h2><p>格式 format: {escape(doc.format)} · "
            f"结论 verdict: {escape(str(doc.verdict))} · "
            f"完整 intact: {doc.intact} · 受信任 trusted: {doc.trusted} · 有效 valid: {doc.valid}</p>")
    if doc.error:
        head += f'<p class="bad">错误 error: {escape(doc.error)}</p>'
    head += _warnings_html(doc.all_warnings)
    return head + "".join(_signature_html(s, i) for i, s in enumerate(doc.signatures, 1))


def render_html(results: Iterable[DocumentResult], title: str = "验章报告 Verification report") -> str:
    """One self-contained page (inline CSS, seal pictures as data: URIs), everything escaped."""
    docs = list(results)
    counts = {v: sum(d.verdict == v for d in docs) for v in Verdict}
    summary = (f"<p>{len(docs)} 个文件 documents · "
               + " · ".join(f"{counts[v]} {escape(VERDICT_LABELS[v])}" for v in Verdict)
               + f" · 生成于 generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>")
    body = "".join(_document_html(d) for d in docs)
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{summary}{body}</body></html>")
