"""HTML of the console's pages (Chinese first, English second), escaped everywhere.

Plain f-strings over ``html.escape`` rather than a template engine: the pages are small tables, and
every value inserted goes through ``esc`` — the one rule that keeps a hostile file name or holder
name from becoming markup.
"""

from __future__ import annotations

import base64
import html
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sealflow_airflow.console import URL_PREFIX
from stamping.reasons import CHECK_ZH, VERDICT_ZH, chinese

STEPS = [("checked", "已检查", "checked"), ("approved", "已审批", "approved"), ("stamped", "已盖章", "stamped"),
         ("verified", "已验章", "verified"), ("archived", "已归档", "archived"), ("filed", "已备案", "filed")]
APPROVAL_ZH = {"approved": "同意", "refused": "拒绝", "pending": "待审批", "expired": "已过期", "": "—"}
STATUS_ZH = {"done": "完成", "refused": "已拒绝", "failed": "失败", "ingested": "已接收"}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


@lru_cache(maxsize=1)
def _css() -> str:
    return (Path(__file__).parent / "static" / "console.css").read_text(encoding="utf-8")


def layout(title_zh: str, title_en: str, body: str, user: str, refresh: int = 0) -> str:
    nav = "".join(f'<a href="{URL_PREFIX}/{path}">{zh} <span class="en">{en}</span></a>'
                  for path, zh, en in (("batches", "批次", "Batches"), ("inbox", "待我审批", "Inbox"),
                                       ("archive", "档案", "Archive"),
                                       ("verify", "验章", "Verify"), ("health", "运行状况", "Health")))
    return ('<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            + (f'<meta http-equiv="refresh" content="{refresh}">' if refresh else "")
            + f'<title>{esc(title_zh)} · SealFlow</title>'
            f"<style>{_css()}</style></head><body><header><strong>SealFlow 控制台</strong>{nav}"
            f'<span class="who">{esc(user)}</span></header><main>'
            f"<h1>{esc(title_zh)} <small>{esc(title_en)}</small></h1>"
            f"{body}</main></body></html>")


def _verdict(verdict: str) -> str:
    css = {"valid": "ok", "valid_with_warnings": "warnv", "not_valid": "bad"}.get(verdict, "")
    return f'<span class="{css}">{esc(VERDICT_ZH.get(verdict, verdict or "—"))}</span>' if verdict else "—"


def batches_page(rows: list[dict], run_links: dict[str, str]) -> str:
    head = "".join(f"<th>{zh}<br><small>{en}</small></th>" for _k, zh, en in STEPS)
    lines = []
    for b in rows:
        steps = b["steps"]
        cells = "".join(f"<td>{esc(APPROVAL_ZH.get(steps[k], steps[k]) if k == 'approved' else steps[k])}</td>"
                        for k, _zh, _en in STEPS)
        link = run_links.get(b["batch_id"])
        run = f'<a href="{esc(link)}">Airflow</a>' if link else "—"
        lines.append(
            f'<tr class="{"alarm" if b["alarm"] else ""}"><td><a href="{URL_PREFIX}/batches/{quote(b["batch_id"])}">'
            f'{esc(b["batch_id"])}</a></td><td>{esc(b["requester"])}</td>'
            f'<td>{esc(b["seal_name"])}<span class="tech">{esc(b["es_id"])}</span></td><td>{esc(b["keeper"])}</td>'
            f'<td class="{"bad" if b["status"] in ("refused", "failed") else ""}">'
            f'{esc(STATUS_ZH.get(b["status"], b["status"]))}</td>'
            f'<td>{b["documents"]}</td><td class="{"bad" if b["quarantined"] else ""}">{b["quarantined"]}</td>'
            f'<td class="{"bad" if b["failed"] else ""}">{b["failed"]}</td>{cells}'
            f'<td>{esc(b["created_at"])}</td><td>{run}</td></tr>')
    return ("<table><tr><th>批次<br><small>batch</small></th><th>申请人<br><small>requester</small></th>"
            "<th>印章<br><small>seal</small></th><th>保管人<br><small>keeper</small></th>"
            "<th>状态<br><small>status</small></th><th>文件<br><small>documents</small></th>"
            "<th>隔离<br><small>quarantined</small></th><th>失败<br><small>failed</small></th>"
            f"{head}<th>提交时间<br><small>created</small></th><th>运行<br><small>run</small></th></tr>"
            + "".join(lines) + "</table>"
            + ("" if rows else "<p>还没有批次。 <span class='en'>No batches yet.</span></p>"))


def batch_detail_page(b: dict) -> str:
    bad = [d for d in b["documents"] if d["state"] in ("quarantined", "failed")]
    summary = (f'<p>申请人 {esc(b["requester"])} · 印章 {esc(b["seal_name"])} ({esc(b["es_id"])}) · '
               f'保管人 {esc(b["keeper"])} · 状态 <b>{esc(STATUS_ZH.get(b["status"], b["status"]))}</b> · '
               f'文件 {len(b["documents"])} · 隔离 {b["quarantined"]} · 失败 {b["failed"]} · '
               f'已归档 {b["steps"]["archived"]} · 已备案 {b["steps"]["filed"]}</p>')
    bad_rows = "".join(
        f'<tr class="alarm"><td>{d["row"]}</td><td>{esc(d["file"])}</td><td>{esc(d["licence_number"])}</td>'
        f'<td>{esc(d["holder"])}</td><td>'
        + "".join(f'{esc(chinese(r))}<span class="tech">{esc(r)}</span>' for r in d["reasons"]) + "</td></tr>"
        for d in bad)
    bad_table = ("<section><h2>有问题的行 <small class='en'>rows with problems</small></h2>"
                 f'<p><a href="{URL_PREFIX}/batches/{quote(b["batch_id"])}/bad-rows.csv">下载 CSV '
                 "<span class='en'>download CSV</span></a></p><table><tr><th>行<br><small>row</small></th>"
                 "<th>文件<br><small>file</small></th><th>证照编号<br><small>licence no.</small></th>"
                 "<th>持证主体<br><small>holder</small></th>"
                 "<th>原因与改正方法<br><small>reason, how to fix</small></th></tr>"
                 f"{bad_rows}</table></section>") if bad else (
        "<p class='ok'>没有被隔离的行。 <span class='en'>No row quarantined.</span></p>")
    docs = "".join(
        f'<tr class="{"alarm" if d["state"] in ("quarantined", "failed") else ("warn" if d["warnings"] else "")}">'
        f'<td>{d["row"]}</td><td>{esc(d["file"])}</td><td>{esc(d["licence_number"])}</td><td>{esc(d["holder"])}</td>'
        f'<td>{esc(d["state"])}</td><td>{_verdict(d["verdict"])}'
        + "".join(f'<span class="tech">{esc(w)}</span>' for w in d["warnings"])
        + f'</td><td>{esc(d["archival_code"]) or "—"}</td></tr>' for d in b["documents"])
    receipts = "".join(f"<li><code>{esc(r.get('receipt', r) if isinstance(r, dict) else r)}</code></li>"
                       for r in b["receipts"]) or "<li>尚无备案回执 <span class='en'>no filing receipt yet</span></li>"
    return (summary + bad_table
            + "<section><h2>文件 <small class='en'>documents</small></h2><table><tr><th>行</th><th>文件</th>"
              "<th>证照编号</th><th>持证主体</th><th>状态</th><th>验章结果<br><small>verdict</small></th>"
              f"<th>档号<br><small>archival code</small></th></tr>{docs}</table></section>"
            + f"<section><h2>备案回执 <small class='en'>filing receipts</small></h2><ul>{receipts}</ul></section>")


def archive_page(query: str, day: str, rows: list[dict], verification: dict | None) -> str:
    form = ('<form method="get"><label>证照编号 / 证照标识 / 持证主体 / 档号 '
            f'<input name="q" value="{esc(query)}"></label> '
            f'<label>归档日期 <input name="day" type="date" value="{esc(day)}"></label> '
            "<button>查找 <span class='en'>Search</span></button></form>")
    result = ""
    if verification is not None:
        ok = verification["ok"]
        problems = "".join(f"<li>{esc(p['file'])}: {esc(p['reason'])}</li>" for p in verification["problems"])
        result = ('<section><h2>档案包校验 <small class="en">package verification</small> '
                  f'{esc(verification["archival_code"])}</h2>'
                  f'<p class="{"ok" if ok else "bad"}">{"档案包完整有效" if ok else "档案包校验未通过"} '
                  f'<span class="en">{"package verified" if ok else "package NOT verified"}</span></p>'
                  f"<ul>{problems}</ul></section>")
    lines = "".join(
        f'<tr><td><a href="{URL_PREFIX}/archive/{quote(r["archival_code"], safe="")}">{esc(r["archival_code"])}</a>'
        f'</td><td>{esc(r["licence_number"])}</td><td>{esc(r["licence_id"])}</td>'
        f'<td>{esc(r["holder"])}</td><td>{esc(r["batch_id"])}</td><td>{esc(r["archived_at"])}</td>'
        f'<td>{esc(r["state"])}{_version_note(r)}</td>'
        f'<td><form class="inline" method="post" '
        f'action="{URL_PREFIX}/archive/{quote(r["archival_code"], safe="")}/verify">'
        "<button>校验 <span class='en'>verify</span></button></form></td></tr>" for r in rows)
    table = ("<table><tr><th>档号</th><th>证照编号</th><th>证照标识</th><th>持证主体</th><th>批次</th><th>归档时间</th>"
             f"<th>状态</th><th></th></tr>{lines}</table>") if rows else (
        "<p>没有找到档案。 <span class='en'>Nothing found.</span></p>")
    return form + result + table


def verify_page(report: dict | None) -> str:
    form = (f'<form method="post" action="{URL_PREFIX}/verify" enctype="multipart/form-data">'
            '<input type="file" name="file" accept=".ofd,.pdf" required> '
            "<button>验章 <span class='en'>Verify</span></button></form>"
            f"<p class='en'>JSON API: POST {URL_PREFIX}/api/verify (OpenAPI: {URL_PREFIX}/openapi.json)</p>")
    if report is None:
        return form
    verdict = report["verdict"]
    sigs = "".join(
        f"<tr><td>{esc(s.get('seal_name') or '?')}<span class='tech'>{esc(s.get('es_id') or '')}</span></td>"
        f"<td>{esc(s.get('signer') or '?')}</td><td>{esc(s.get('signed_at') or '?')}</td><td>"
        + "".join(f"<span class='bad'>✘ {esc(CHECK_ZH.get(c.get('name', ''), c.get('reason') or ''))}</span>"
                  f"<span class='tech'>{esc(c.get('name'))}: {esc(c.get('reason') or '')}</span>"
                  for c in s.get("checks", []) if not c.get("ok", True))
        + "</td></tr>" for s in report.get("signatures", []))
    error = f"<p class='bad'>{esc(report['error'])}</p>" if report.get("error") else ""
    warnings = "".join(f"<li class='warnv'>{esc(w)}</li>" for w in report.get("warnings", []))
    return (form + f'<section id="result"><h2>{esc(report["path"])}: {_verdict(verdict)} '
            f'<small class="en">{esc(verdict)}</small></h2>{error}<ul>{warnings}</ul>'
            "<table><tr><th>印章</th><th>签章人</th><th>签章时间</th>"
            "<th>未通过的检查<br><small>failed checks</small></th></tr>"
            f"{sigs}</table></section>")


def health_page(h: dict, retried: dict | None = None, can_retry: bool = False) -> str:
    expiring = "".join(
        f'<tr class="{"alarm" if s["expired"] else "warn"}"><td>{esc(s["name"])}'
        f'<span class="tech">{esc(s["es_id"])}</span></td>'
        f'<td>{esc(s["keeper"])}</td><td>{esc(s["valid_end"])}</td>'
        f'<td>{"已过期" if s["expired"] else str(s["days_left"]) + " 天"}</td></tr>' for s in h["seals_expiring"])
    dead = "".join(f"<tr class='alarm'><td>{esc(d['record_id'])}</td><td>{esc(d['kind'])}</td>"
                   f"<td>{esc(d['subject'])}</td>"
                   f"<td>{d['attempts']}</td><td>{esc(d['last_error'])}</td><td>{_retry_button(d, can_retry)}</td></tr>"
                   for d in h["outbox"]["dead"])
    notice = ""
    if retried is not None:
        run = retried["file_records_run"]
        notice = (f"<p class='ok' id='retried'>已重新排队 {esc(retried['record_id'])}，由备案发送任务 "
                  f"{esc(run or 'file_records')} 发送。 <span class='en'>made due again; the outbox dispatcher "
                  f"sends it.</span> {esc(retried['note'])}</p>")
    keys = "".join(f'<tr class="{"alarm" if k["locked"] else ("warn" if k["wrong_pins"] else "")}">'
                   f'<td>{esc(k["key_id"])}</td>'
                   f'<td>{k["wrong_pins"]}</td><td>{"已锁定" if k["locked"] else "正常"}</td></tr>' for k in h["keys"])
    alerts = "".join(f"<li class='bad'>{esc(a['subject'])}<span class='tech'>{esc(a['body'])}</span></li>"
                     for a in h["alerts"])
    fixity = h["fixity"]
    audit = h["audit"]
    return (
        notice + "<section><h2>当前告警 <small class='en'>current alerts</small></h2>"
        + (f"<ul>{alerts}</ul>" if alerts else "<p class='ok'>没有 <span class='en'>none</span></p>")
        + "</section>"
        f"<section><h2>备案 <small class='en'>filing</small></h2><p>待发 backlog: <b>{h['outbox']['backlog']}</b> · "
        f"死信 dead letters: <b class='{'bad' if h['outbox']['dead'] else ''}'>{len(h['outbox']['dead'])}</b></p>"
        + ("<table><tr><th>记录</th><th>类型</th><th>对象</th><th>尝试</th><th>最后错误</th><th></th></tr>"
           f"{dead}</table>" if dead else "")
        + "</section><section><h2>30 天内到期的印章 <small class='en'>seals expiring within 30 days</small></h2>"
        + (f"<table><tr><th>印章</th><th>保管人</th><th>有效期至</th><th>剩余</th></tr>{expiring}</table>"
           if expiring else "<p class='ok'>没有 <span class='en'>none</span></p>")
        + "</section><section><h2>密钥库 <small class='en'>key store: wrong PINs and locks</small></h2>"
        + f"<table><tr><th>密钥</th><th>连续错误口令</th><th>状态</th></tr>{keys}</table></section>"
        + "<section><h2>最近一次完整性检查 <small class='en'>last fixity run</small></h2>"
        + f"<p>{esc(fixity)}</p></section>"
        + f"<section><h2>审计检查点 <small class='en'>audit checkpoints</small></h2><p>{esc(audit)}</p></section>"
        + "<section><h2>最近一次备份 <small class='en'>last backup</small></h2>"
        + f"{_backup(h['backup'])}</section>")


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, "KB"
    for bigger in ("MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _age(seconds: int) -> str:
    if seconds < 3600:
        return f"{max(seconds, 0) // 60} 分钟前 <span class='en'>min ago</span>"
    if seconds < 72 * 3600:
        return f"{seconds // 3600} 小时前 <span class='en'>h ago</span>"
    return f"{seconds // 86400} 天前 <span class='en'>days ago</span>"


def _backup(b: dict) -> str:
    """The newest backup at the target (``conditions.backup_state``), or why there is none to show."""
    if not b["configured"]:
        return ("<p class='warn'>未配置备份 (no backup target configured)：请将 SEALFLOW_BACKUP_TARGET 设为主目录之外的"
                "文件夹或 s3://bucket/prefix。 <span class='en'>Set SEALFLOW_BACKUP_TARGET; the backup DAG "
                "skips until then.</span></p>")
    where = f"位置 <span class='en'>where</span>: <code>{esc(b['target'])}</code>"
    if b["error"]:
        return (f"<p class='bad'>备份位置无法读取 <span class='en'>target unreadable</span>：{esc(b['error'])} · "
                f"{where}</p>")
    latest = b["latest"]
    if latest is None:
        return (f"<p class='bad'>尚无备份 <span class='en'>no backup yet</span> · {where} · "
                "请执行 <code>sealflow backup create</code></p>")
    kind = ("全量 full" if latest["kind"] == "full"
            else f"增量 incremental，基于 <span class='tech'>{esc(latest['base'])}</span>")
    added = ("" if latest["new_objects"] is None else
             f" · 本次写入 <span class='en'>added</span> {latest['new_objects']} 个对象，{_size(latest['new_bytes'])}")
    return (f"<p class='{'bad' if b['stale'] else 'ok'}'>{esc(latest['created_at'])}（{_age(latest['age_s'])}）· "
            f"{kind} · {latest['objects']} 个对象 <span class='en'>objects</span>，{_size(latest['bytes'])}{added}"
            f" · {where}<span class='tech'>{esc(latest['backup_id'])}</span></p>"
            + (f"<p class='bad'>超过 {b['alert_after_h']} 小时没有新的备份 <span class='en'>older than the "
               f"{b['alert_after_h']} h limit</span></p>" if b["stale"] else ""))


def _retry_button(dead: dict, can_retry: bool) -> str:
    if not can_retry:
        return "<small>重试需运维角色 <span class='en'>operator role retries</span></small>"
    return (f'<form class="inline" method="post" action="{URL_PREFIX}/health/dead-letters/'
            f'{quote(dead["record_id"], safe="")}/retry"><button>重试 <span class="en">retry</span></button></form>')


def _version_note(r: dict) -> str:
    """A re-issued licence's records name each other (换发/补发): superseded by / supersedes, linked."""
    def link(code: str) -> str:
        return f'<a href="{URL_PREFIX}/archive/{quote(code, safe="")}">{esc(code)}</a>'

    note = ""
    if r.get("superseded_by"):
        note += f"<br>已被 {link(r['superseded_by'])} 替代 <span class='en'>superseded</span>"
    if r.get("supersedes"):
        note += f"<br>替代 {link(r['supersedes'])} <span class='en'>supersedes</span>"
    return note


def record_page(r: dict, page: int, share: dict | None, shown: Any) -> str:
    """One archived record: its metadata, the actions (verify, share link, EEP) and a page preview.
    ``shown`` is the drawn page (``RenderedPage``) or the reason it cannot be drawn."""
    code = quote(r["archival_code"], safe="")
    facts = "".join(f"<tr><th>{zh}<br><small>{en}</small></th><td>{esc(r[key]) or '—'}</td></tr>" for key, zh, en in (
        ("archival_code", "档号", "archival code"), ("licence_number", "证照编号", "licence number"),
        ("licence_id", "证照标识", "licence id"), ("holder", "持证主体", "holder"), ("batch_id", "批次", "batch"),
        ("archived_at", "归档时间", "archived"), ("retention", "保管期限", "retention"),
        ("retain_until", "保留至", "retained until"), ("document_name", "文件", "document"),
        ("package_size", "档案包大小 (字节)", "package bytes"), ("version", "存储版本", "stored version")))
    if r.get("supersedes") or r.get("superseded_by"):
        reissue = f"{esc(r.get('reissue', ''))} {esc(r.get('reissue_reason', ''))}".strip()
        facts += (f"<tr><th>版本 <br><small>version of the licence</small></th><td>"
                  f"{'当前版本 current' if not r.get('superseded_by') else '已被替代 superseded'}"
                  f"{' · ' + reissue if reissue else ''}{_version_note(r)}</td></tr>")
    actions = (f'<div class="actions"><form class="inline" method="post" action="{URL_PREFIX}/archive/{code}/verify">'
               "<button>校验 <span class='en'>verify</span></button></form> "
               f'<form class="inline" method="post" action="{URL_PREFIX}/archive/{code}/share">'
               "<button>生成分享链接 <span class='en'>share link</span></button></form> "
               f'<a class="button" href="{URL_PREFIX}/archive/{code}/eep" download>导出 EEP '
               "<span class='en'>EEP export (DA/T 48)</span></a></div>")
    shared = ""
    if share is not None:
        shared = ('<section id="share"><h2>分享链接 <small class="en">share link</small></h2>'
                  f'<p><input id="share-url" readonly size="80" value="{esc(share["url"])}"></p>'
                  f'<p>有效期至 <b id="share-expiry">{esc(share["expires_at"])}</b> '
                  f'({share["expires_in"]} 秒 s) · 固定版本 pinned version <code>{esc(share["version_id"])}</code></p>'
                  "<p class='en'>The link serves a tar of the package with its run's signed manifest; the "
                  f"receiver checks it offline: <code>{esc(share['verify_with'])}</code></p></section>")
    if isinstance(shown, str):
        preview = f"<p class='bad'>{esc(shown)}</p>"
    else:
        nav = " ".join(f'<a href="{URL_PREFIX}/archive/{code}?page={n}">第 {n + 1} 页 <span class="en">page '
                       f"{n + 1}</span></a>" for n in (page - 1, page + 1) if 0 <= n < shown.page_count)
        partial = ("<p class='warnv'>预览不完整 <span class='en'>partial preview</span>: "
                   + esc("; ".join(shown.skipped[:5])) + "</p>") if shown.skipped else ""
        data = base64.b64encode(shown.png).decode("ascii")
        preview = (f"<p>第 {page + 1} / {shown.page_count} 页 <span class='en'>page {page + 1} of "
                   f"{shown.page_count}</span> {nav}</p>{partial}"
                   f'<img id="preview" class="preview" alt="第 {page + 1} 页 page {page + 1}" '
                   f'src="data:image/png;base64,{data}">')
    return (f"<table class='facts'>{facts}</table>{actions}{shared}"
            f"<section><h2>页面预览 <small class='en'>page preview</small></h2>{preview}</section>")


def _countdown(seconds: int) -> str:
    return f"{seconds // 60:d}:{seconds % 60:02d}"


# The answer goes from the browser to Airflow's own HITL endpoint with the UI's session cookie, exactly as
# Airflow's approval form sends it; SealFlow's answer gate (a middleware in the same api-server) decides it.
_INBOX_SCRIPT = """
(function () {
  var base = document.getElementById('inbox').getAttribute('data-api-base') || '';
  function tick() {
    document.querySelectorAll('.countdown').forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.expires) - Date.now()) / 1000));
      el.textContent = left > 0 ? Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0') : '已过期 expired';
      if (left === 0) { el.closest('.approval').querySelectorAll('.approve button').forEach(function (b) {
        b.disabled = true; }); }
    });
  }
  function answer(box, option, params) {
    var out = box.querySelector('.answer-result');
    out.className = 'answer-result'; out.textContent = '提交中… sending';
    fetch(base + box.dataset.answerPath, {method: 'PATCH', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({chosen_options: [option], params_input: params})})
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) {
        if (r.ok) {
          out.className = 'answer-result ok';
          out.textContent = option === 'Approve' ? '已同意，批次继续盖章。 Approved: the batch goes on.'
                                                 : '已拒绝。 Refused.';
          box.querySelectorAll('button, input').forEach(function (e) { e.disabled = true; });
        } else {
          out.className = 'answer-result bad';
          var zh = j.outcome === 'wrong_code' ? '验证码不对，任务仍在等待您的答复。 ' :
                   r.status === 403 ? '您不是该印章的保管人。 ' : '未能提交。 ';
          out.textContent = zh + (j.detail || r.status);
        }
      }); })
      .catch(function (e) { out.className = 'answer-result bad'; out.textContent = '网络错误 ' + e; });
  }
  document.querySelectorAll('.approval').forEach(function (box) {
    box.querySelector('form.approve').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var code = box.querySelector('input[name=code]');
      answer(box, 'Approve', {code: code.value.trim()});
      code.value = '';
    });
    box.querySelector('form.refuse').addEventListener('submit', function (ev) {
      ev.preventDefault();
      answer(box, 'Reject', {code: '', reason: box.querySelector('input[name=reason]').value});
    });
  });
  tick(); setInterval(tick, 1000);
})();
"""


def inbox_page(items: list[dict], api_base: str) -> str:
    """The keeper's pending approvals with an answer box each; the code is typed, never shown."""
    if not items:
        return "<p class='ok'>没有等待您审批的用章申请。 <span class='en'>No approval waits for you.</span></p>"
    boxes = []
    for i in items:
        picture = (f'<img class="seal" alt="{esc(i["seal_name"])}" src="{esc(i["picture"])}">'
                   if i["picture"] else "")
        if i["waiting"]:
            answer = (
                '<form class="approve"><label>短信验证码 <span class="en">one-time code</span> '
                '<input name="code" type="password" inputmode="numeric" autocomplete="one-time-code" '
                'pattern="[0-9]{6}" maxlength="6" required></label> '
                "<button>同意 <span class='en'>Approve</span></button></form>"
                '<form class="refuse"><label>拒绝理由 <span class="en">reason</span> '
                '<input name="reason" maxlength="500" required></label> '
                "<button>拒绝 <span class='en'>Refuse</span></button></form>"
                '<p class="answer-result" role="status"></p>')
        else:
            answer = ("<p class='warnv'>审批任务尚未就绪，请稍后刷新。 <span class='en'>The approval task is not "
                      "waiting yet; reload in a moment.</span></p>")
        boxes.append(
            f'<section class="approval" data-batch="{esc(i["batch_id"])}" data-answer-path="{esc(i["answer_path"])}">'
            f"<h2>批次 <a href=\"{URL_PREFIX}/batches/{quote(i['batch_id'], safe='')}\">{esc(i['batch_id'])}</a>"
            "</h2><div class='approval-body'>" + picture
            + "<table class='facts'>"
            f"<tr><th>印章 <small>seal</small></th><td>{esc(i['seal_name'])}<span class='tech'>{esc(i['es_id'])}</span>"
            f"</td></tr><tr><th>文件数 <small>documents</small></th><td>{i['documents']}</td></tr>"
            f"<tr><th>申请人 <small>requester</small></th><td>{esc(i['requester'])}</td></tr>"
            f"<tr><th>验证码剩余时间 <small>code expires in</small></th><td><b class='countdown' "
            f"data-expires=\"{esc(i['expires_at'])}\">{_countdown(i['seconds_left'])}</b> "
            f"<small>({esc(i['expires_at'])})</small></td></tr>"
            f"<tr><th>剩余尝试次数 <small>tries left</small></th><td>{i['tries_left']}</td></tr></table></div>"
            f"{answer}</section>")
    return (f'<div id="inbox" data-api-base="{esc(api_base)}">'
            "<p>验证码只通过短信发给您本人，本页不显示验证码。 <span class='en'>The code was texted to you; this "
            "page never shows it.</span></p>" + "".join(boxes) + f"</div><script>{_INBOX_SCRIPT}</script>")
