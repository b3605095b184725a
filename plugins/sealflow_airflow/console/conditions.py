"""The conditions people are told about (告警条件): a seal in its 30-day renewal window or expired, a
dead-lettered filing record, a fixity problem of the archive, a locked key, a refused or failed batch,
a backup target without a recent backup — worked out from the facts.

Shared by the health page (shown while they hold) and the alert notifier (mailed once each); kept in
the console package so that the notifier depends on the console and never the other way round.
Each condition has a stable key, so "once per condition" means once per key while it holds. A fixity
problem's key is the digest of the problems the last pass found: the weekly pass finding the same
problems again is the same condition; a pass finding other problems is a new one; a clean pass clears it.
A stale backup's key is the newest backup's id: it is mailed once, a fresh backup clears it, and if the
backups stop again later that is a new condition. With no target configured there is no backup
condition (the page says so, and the ``backup`` DAG skips in yellow saying why): the alert is for a
deployment that chose where its backups live and stopped getting them — or cannot read that place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backup.service import latest_backup, public_target
from kernel.settings import Settings
from sealflow_airflow.console import queries
from stamping.batch.models import Batch

# Batch statuses that are an alert: refused by the keeper, or the run failed — documents left waiting
# (incomplete), the approval step failed or timed out (not_approved), or failed outright.
BATCH_ALARMS = {"refused": "被拒绝", "failed": "失败", "incomplete": "未完成（有文件未盖章或未验章）",
                "not_approved": "未获批准（审批步骤失败或超时）"}
# Fixity problems (archive.fixity) as the archivist reads them.
FIXITY_ZH = {"missing": "档案包缺失", "mismatch": "档案包内容与归档时不符", "overwritten": "档案包被新版本覆盖",
             "unreadable": "档案包无法读取", "incomplete_run": "归档运行不完整", "unpublished_run": "归档运行未入索引",
             "staged_run": "残留的暂存文件"}


@dataclass(frozen=True)
class Condition:
    key: str  # stable identity of the condition: one mail per key while it holds
    subject: str
    body: str


def key_states(keystore_dir: Path) -> list[dict[str, Any]]:
    """Wrong-PIN counters and locks of the key store (only those fields are read)."""
    out = []
    for path in sorted(keystore_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # an unreadable key file is a key nobody can use: shown as locked
            out.append({"key_id": path.stem, "wrong_pins": -1, "locked": True})
            continue
        out.append({"key_id": record.get("key_id", path.stem), "wrong_pins": int(record.get("wrong_pins", 0)),
                    "locked": bool(record.get("locked"))})
    return out


def backup_state(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The newest backup at the configured target (``latest_backup``), and whether it is stale.

    ``error`` says why the target could not be read; the page and the alerts show it instead of failing."""
    limit = settings.backup_alert_after_h
    state: dict[str, Any] = {"configured": bool(settings.backup_target), "target": "", "latest": None,
                             "error": "", "alert_after_h": limit, "stale": False}
    if not settings.backup_target:
        return state
    state["target"] = public_target(settings.backup_target)
    try:
        latest = latest_backup(settings, now)
    except Exception as exc:  # any store failure (folder, S3, a bad manifest) is shown, never a crashed page
        reason = (str(exc).splitlines() or [""])[0][:300].replace(settings.backup_target, state["target"])
        state["error"] = f"{type(exc).__name__}: {reason}"
        return state
    if latest is not None:
        state["target"] = latest["target"]
        state["stale"] = latest["age_s"] > limit * 3600
    state["latest"] = latest
    return state


def backup_conditions(backup: dict[str, Any]) -> list[Condition]:
    """A configured backup target that cannot be read, holds no backup, or whose newest one is too old."""
    if not backup["configured"]:
        return []
    target, limit, latest = backup["target"], backup["alert_after_h"], backup["latest"]
    if backup["error"]:
        return [Condition("backup-unreadable", "[SealFlow] 备份位置无法读取",
                          f"无法读取备份位置 {target}：{backup['error']}。无法确认是否仍在备份。请检查该位置（文件夹"
                          "已挂载、S3 可达且凭据有效），再执行 sealflow backup list 确认。 The backup target cannot "
                          "be read, so nobody can tell whether backups are taken: check it, then run "
                          "`sealflow backup list` (and `sealflow backup create` if no recent backup is there).")]
    if latest is None:
        return [Condition("backup-none", "[SealFlow] 尚无备份",
                          f"已配置备份位置 {target}，但其中还没有任何备份。请立即执行 sealflow backup create，并确认 "
                          "backup DAG 已启用（每日运行）。 A backup target is configured but holds no backup: run "
                          "`sealflow backup create` and make sure the backup DAG is on.")]
    if not backup["stale"]:
        return []
    hours = latest["age_s"] // 3600
    kind = "全量" if latest["kind"] == "full" else f"增量，基于 {latest['base']}"
    return [Condition(
        f"backup-stale:{latest['backup_id']}", f"[SealFlow] 最近一次备份已是 {hours} 小时前",
        f"备份位置 {target} 最近一次备份 {latest['backup_id']}（{kind}）创建于 {latest['created_at']}，"
        f"已超过 {limit} 小时没有新的备份（SEALFLOW_BACKUP_ALERT_AFTER_H）。请检查 backup DAG 最近的运行，"
        f"或立即执行 sealflow backup create。 The newest backup is {hours} hours old (limit {limit} h): "
        "check the backup DAG's runs, or run `sealflow backup create` now.")]


def conditions(session: Session, keys: list[dict[str, Any]], *, backup: dict[str, Any],
               now: datetime | None = None) -> list[Condition]:
    """Every condition that holds. ``keys``: ``key_states``; ``backup``: ``backup_state`` (both read
    outside the database, so the caller gives them)."""
    now = now or datetime.now(UTC)
    out: list[Condition] = []
    for s in queries.seals_expiring(session, now):
        if s["expired"]:
            out.append(Condition(f"seal-expired:{s['es_id']}", f"[SealFlow] 印章已过期 {s['name']}",
                                 f"印章 {s['name']} ({s['es_id']}) 已于 {s['valid_end']} 过期，保管人 {s['keeper']}。"
                                 "请办理续期或停用。 The seal has expired."))
        else:
            out.append(Condition(f"seal-renewal:{s['es_id']}", f"[SealFlow] 印章 {s['days_left']} 天后到期 {s['name']}",
                                 f"印章 {s['name']} ({s['es_id']}) 将于 {s['valid_end']} 到期，请在到期前 30 天内"
                                 f"办理续期。保管人 {s['keeper']}。 The seal expires in {s['days_left']} days."))
    for d in queries.outbox(session)["dead"]:
        out.append(Condition(f"filing-dead:{d['record_id']}", f"[SealFlow] 备案失败（死信）{d['kind']} {d['subject']}",
                             f"备案记录 {d['record_id']} ({d['kind']}, {d['subject']}) 尝试 {d['attempts']} 次后放弃："
                             f"{d['last_error']}。请检查备案平台后在运行状况页重试。 Filing dead-lettered."))
    out += fixity_conditions(session)
    for k in keys:
        if k["locked"]:
            out.append(Condition(f"key-locked:{k['key_id']}", f"[SealFlow] 密钥已锁定 {k['key_id']}",
                                 f"密钥 {k['key_id']} 因连续输错口令被锁定，需管理员解锁："
                                 f"sealflow ca unlock-key {k['key_id']}。 The key is locked."))
    out += backup_conditions(backup)
    for b in session.scalars(select(Batch).where(Batch.status.in_(tuple(BATCH_ALARMS))).order_by(Batch.batch_id)):
        word = BATCH_ALARMS[b.status]
        out.append(Condition(f"batch-{b.status}:{b.batch_id}", f"[SealFlow] 批次{word} {b.batch_id}",
                             f"批次 {b.batch_id}（申请人 {b.requester}，印章 {b.es_id}）{word}。"
                             f"详情见控制台 /sealflow/batches/{b.batch_id}。 The batch was {b.status}."))
    return out


def fixity_conditions(session: Session) -> list[Condition]:
    """The last fixity pass, when it found problems: one condition for that set of problems."""
    run = queries.last_fixity(session)
    if run is None or run.ok:
        return []
    total = sum(run.problem_counts.values())
    counts = "，".join(f"{FIXITY_ZH.get(k, k)} {n} 处" for k, n in sorted(run.problem_counts.items()))
    examples = "；".join(f"{FIXITY_ZH.get(p['problem'], p['problem'])}：{p.get('archival_code') or p.get('key')}"
                        for p in run.problems[:5])
    checked = run.checked_at if run.checked_at.tzinfo else run.checked_at.replace(tzinfo=UTC)
    return [Condition(
        f"fixity:{run.problems_sm3[:16]}", f"[SealFlow] 档案完整性检查发现 {total} 个问题",
        f"{checked.isoformat(timespec='seconds')} 的完整性检查（检查 {run.records_checked} 件）发现：{counts}。"
        f"例如 {examples}。完整报告在档案桶的 {run.report_key or 'reports/fixity/'}。请用 sealflow archive verify "
        "核对受影响的档案包，并按 docs/backup.md 从备份恢复。 The archive's fixity check found problems.")]

