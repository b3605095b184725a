"""The conditions people are told about (告警条件): a seal in its 30-day renewal window or expired, a
dead-lettered filing record, a locked key, a refused or failed batch — worked out from the facts.

Shared by the health page (shown while they hold) and the alert notifier (mailed once each); kept in
the console package so that the notifier depends on the console and never the other way round.
Each condition has a stable key, so "once per condition" means once per key while it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sealflow_airflow.console import queries
from stamping.batch.models import Batch


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


def conditions(session: Session, keys: list[dict[str, Any]], now: datetime | None = None) -> list[Condition]:
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
    for k in keys:
        if k["locked"]:
            out.append(Condition(f"key-locked:{k['key_id']}", f"[SealFlow] 密钥已锁定 {k['key_id']}",
                                 f"密钥 {k['key_id']} 因连续输错口令被锁定，需管理员解锁："
                                 f"sealflow ca unlock-key {k['key_id']}。 The key is locked."))
    for b in session.scalars(select(Batch).where(Batch.status.in_(("refused", "failed")))):
        word = "被拒绝" if b.status == "refused" else "失败"
        out.append(Condition(f"batch-{b.status}:{b.batch_id}", f"[SealFlow] 批次{word} {b.batch_id}",
                             f"批次 {b.batch_id}（申请人 {b.requester}，印章 {b.es_id}）{word}。"
                             f"详情见控制台 /sealflow/batches/{b.batch_id}。 The batch was {b.status}."))
    return out


