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

from stamping.reasons import VERDICT_EN, VERDICT_ZH, check_zh, chinese, human_time
from stamping.verdict.result import DocumentResult, SignatureResult, Verdict

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc;word-break:break-all}
.ok{color:#176317}.bad{color:#b00020}.warn{color:#8a5a00}
table{border-collapse:collapse;width:100%;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4}.sig{display:flex;gap:1.5em;align-items:flex-start;margin:1em 0}
.seal{display:inline-block;width:120px;height:120px;background-size:contain;background-repeat:no-repeat;
border:1px solid #eee;flex:none}
small{color:#777;display:block;font-size:.8em;word-break:break-all}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-size:.85em}
ul.warnings{color:#8a5a00}
.b-ok{background:#2e7d32}.b-bad{background:#c62828}.b-warn{background:#ef8f00}
"""

def results_to_json(results: Iterable[DocumentResult]) -> list[dict]:
    return [r.to_json() for r in results]


def dumps(results: Iterable[DocumentResult]) -> str:
    return json.dumps(results_to_json(results), ensure_ascii=False, indent=2)


# The verdict's words come from the one table (stamping.reasons) the batch report and console use too.
VERDICT_LABELS = {Verdict(k): f"{VERDICT_ZH[k]} {VERDICT_EN[k]}" for k in VERDICT_ZH}
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


def _time_html(iso: str | None) -> str:
    """``<time>`` with the Beijing time a person reads, the exact ISO value in small print."""
    if not iso:
        return "—"
    try:
        shown = human_time(iso, seconds=True)
    except ValueError:
        return escape(iso)
    return f'<time datetime="{escape(iso)}">{shown}<small>{escape(iso)}</small></time>'


def _yes(value: bool) -> str:
    return '<span class="ok">是</span>' if value else '<span class="bad">否</span>'


def why(doc: DocumentResult) -> list[tuple[str, str]]:
    """The reasons behind a document's verdict: (plain Chinese, technical text) pairs, most telling first."""
    if doc.error:
        return [(chinese(doc.error), doc.error)]
    if doc.verdict == Verdict.VALID:
        return [("签章完整，签章人证书可信，印章有效。", "all checks passed")]
    failed = [(s, c) for s in doc.signatures for c in s.checks if not c.ok and c.kind != "warning"]
    if doc.verdict == Verdict.NOT_VALID and doc.intact and not doc.trusted:
        out = [("签章完整，但签章人证书不受信任：请导入发证机构的根证书（--trust），或核对证书链。",
                "intact, not trusted")]
        return out + [(chinese(f"{c.name}: {c.reason}"), f"{c.name}: {c.reason}") for _, c in failed]
    out = [(chinese(f"{c.name}: {c.reason}"), f"{c.name}: {c.reason}") for _, c in failed]
    out += [(chinese(f"warning: {w}"), w) for w in doc.all_warnings]
    return out or [(chinese("no signatures: the document is not sealed"), "no signatures")]


def _why_html(doc: DocumentResult) -> str:
    return "".join(f"<div>{escape(zh)}<small>{escape(tech)}</small></div>" for zh, tech in why(doc))


def _seal_classes(docs: list[DocumentResult]) -> tuple[str, dict[bytes, str]]:
    """One CSS class per distinct seal picture: its bytes appear once in the page however many
    signatures show it."""
    css, classes = "", {}
    for sig in (s for d in docs for s in d.signatures):
        png = sig.seal_picture_png
        if png and png not in classes:
            classes[png] = f"p{len(classes)}"
            css += f".{classes[png]}{{background-image:url(data:image/png;base64,{base64.b64encode(png).decode()})}}"
    return css, classes


def _signature_html(sig: SignatureResult, n: int, classes: dict[bytes, str]) -> str:
    img = ""
    if sig.seal_picture_png:
        img = f'<span class="seal {classes[sig.seal_picture_png]}" role="img" aria-label="印模 seal picture"></span>'
    rows = "".join(
        f'<tr><td>{escape(check_zh(c.name))}<small>{escape(c.name)}</small></td>'
        f'<td class="{_check_state(c.ok, c.kind)[0]}">{_check_state(c.ok, c.kind)[1]}'
        f"</td><td>{escape(c.reason)}<small>{escape(c.kind)}</small></td></tr>"
        for c in sig.checks
    )
    facts = (
        f"<tr><th>签章人 <small>signer</small></th><td>{escape(sig.signer)}</td></tr>"
        f"<tr><th>印章名称 <small>seal</small></th><td>{escape(sig.seal_name)}</td></tr>"
        f"<tr><th>印章编码 <small>es_id</small></th><td>{escape(sig.es_id)}</td></tr>"
        f"<tr><th>签章时间 <small>signed at</small></th><td>{_time_html(sig.signed_at)}</td></tr>"
        f"<tr><th>位置 <small>location</small></th><td>{escape(sig.location)}</td></tr>"
    )
    return (
        f'<h3>签章 {n} {_verdict(sig)}</h3><div class="sig">{img}<table>{facts}</table></div>'
        f"<table><tr><th>检查 <small>check</small></th><th>结果 <small>result</small></th>"
        f"<th>说明 <small>reason</small></th></tr>{rows}</table>"
    )


def _document_html(doc: DocumentResult, n: int, classes: dict[bytes, str]) -> str:
    head = (f'<h2 id="d{n}">{escape(doc.path)} {_verdict(doc)}</h2><p>格式 format: {escape(doc.format)} · '
            f"完整 intact: {_yes(doc.intact)} · 受信任 trusted: {_yes(doc.trusted)}"
            f"<small>verdict: {escape(str(doc.verdict))}</small></p>")
    if doc.error:
        head += f'<p class="bad">错误 error: {escape(chinese(doc.error))}<small>{escape(doc.error)}</small></p>'
    head += _warnings_html(doc.all_warnings)
    return head + "".join(_signature_html(s, i, classes) for i, s in enumerate(doc.signatures, 1))


def render_html(results: Iterable[DocumentResult], title: str = "验章报告 Verification report") -> str:
    """One self-contained page (inline CSS, each seal picture once as a data: URI), everything escaped:
    first one line per file with its verdict and why, then each file's signatures and checks."""
    docs = list(results)
    counts = {v: sum(d.verdict == v for d in docs) for v in Verdict}
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    summary = (f"<p>{len(docs)} 个文件 documents · "
               + " · ".join(f"{counts[v]} {escape(VERDICT_LABELS[v])}" for v in Verdict)
               + f" · 生成于 generated {_time_html(generated)}</p>")
    verdicts = "".join(f'<tr><td><a href="#d{n}">{escape(d.path)}</a></td><td>{_verdict(d)}</td>'
                       f"<td>{_why_html(d)}</td></tr>" for n, d in enumerate(docs, 1))
    overview = ("<h2>结论 <small>verdict per file</small></h2><table><tr><th>文件 <small>file</small></th>"
                "<th>结论 <small>verdict</small></th><th>原因 <small>why</small></th></tr>"
                f"{verdicts}</table>")
    seal_css, classes = _seal_classes(docs)
    body = "".join(_document_html(d, n, classes) for n, d in enumerate(docs, 1))
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}{seal_css}</style></head><body><h1>{escape(title)}</h1>{summary}{overview}{body}"
            "</body></html>")
