"""验章 reports: JSON (the ``sealflow verify --json`` shape) and a self-contained HTML page."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape

from stamping.verify.result import DocumentResult, SignatureResult

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc;word-break:break-all}
.ok{color:#176317}.bad{color:#b00020}.warn{color:#8a5a00}
table{border-collapse:collapse;width:100%;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4}.sig{display:flex;gap:1.5em;align-items:flex-start;margin:1em 0}
.sig img{width:120px;height:auto;border:1px solid #eee}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-size:.85em}
.b-ok{background:#2e7d32}.b-bad{background:#c62828}.b-warn{background:#ef8f00}
"""


def results_to_json(results: Iterable[DocumentResult]) -> list[dict]:
    return [r.to_json() for r in results]


def dumps(results: Iterable[DocumentResult]) -> str:
    return json.dumps(results_to_json(results), ensure_ascii=False, indent=2)


def _badge(ok: bool, yes: str, no: str) -> str:
    return f'<span class="badge {"b-ok" if ok else "b-bad"}">{escape(yes if ok else no)}</span>'


def _verdict(r: DocumentResult | SignatureResult) -> str:
    if r.valid:
        return _badge(True, "有效 valid", "")
    if r.intact and not r.trusted:
        return '<span class="badge b-warn">完整但不受信任 intact, not trusted</span>'
    return _badge(False, "", "无效 invalid")


def _signature_html(sig: SignatureResult, n: int) -> str:
    img = ""
    if sig.seal_picture_png:
        uri = "data:image/png;base64," + base64.b64encode(sig.seal_picture_png).decode()
        img = f'<img alt="印模 seal picture" src="{escape(uri)}">'
    rows = "".join(
        f'<tr><td>{escape(c.name)}</td><td class="{"ok" if c.ok else "bad"}">{"✔ 通过" if c.ok else "✘ 未通过"}'
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
            f"完整 intact: {doc.intact} · 受信任 trusted: {doc.trusted} · 有效 valid: {doc.valid}</p>")
    if doc.error:
        head += f'<p class="bad">错误 error: {escape(doc.error)}</p>'
    return head + "".join(_signature_html(s, i) for i, s in enumerate(doc.signatures, 1))


def render_html(results: Iterable[DocumentResult], title: str = "验章报告 Verification report") -> str:
    """One self-contained page (inline CSS, seal pictures as data: URIs), everything escaped."""
    docs = list(results)
    valid = sum(d.valid for d in docs)
    summary = (f"<p>{len(docs)} 个文件 documents · {valid} 有效 valid · {len(docs) - valid} 无效 not valid · "
               f"生成于 generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC</p>")
    body = "".join(_document_html(d) for d in docs)
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>{summary}{body}</body></html>")
