"""Alerts (告警) through Airflow's notifiers: a seal entering its 30-day renewal window or expired, a
dead-lettered filing record, a locked key, a failed or refused batch — each e-mailed once per condition.

``SealFlowAlertNotifier`` is an Airflow notifier (``BaseNotifier``): use it as a DAG or task callback,
or call it from the ``sealflow_alerts`` watch DAG. On each call it works out the conditions that hold
now, sends the new ones through Airflow's ``SmtpNotifier`` (the ``smtp_default`` connection, so the
mail server and sender are Airflow configuration), and remembers them.

Decisions:
- Once per condition: a ledger (``<state>/alerts/sent.json``, written atomically) keeps the keys of the
  conditions already announced; a condition that clears is dropped from it, so if it comes back it is
  announced again. A crash between sending and writing the ledger may repeat one mail — never lose one.
- Conditions are read from the database and the key store (the facts), not from task events, so a
  watch that was down for a while still reports what happened meanwhile.
- Recipients are passed in by the DAG from configuration (an Airflow Variable), never hard-coded.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier
from sqlalchemy import select
from sqlalchemy.orm import Session

from sealflow.files import write_atomic
from sealflow_airflow.console import queries
from stamping.batch.models import Batch

log = logging.getLogger(__name__)


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


class AlertLedger:
    """The keys of conditions already announced (``<state>/alerts/sent.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> set[str]:
        try:
            return set(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return set()
        except ValueError as exc:
            raise ValueError(f"{self.path}: alert ledger unreadable ({exc}); move it away to re-announce "
                             "every current condition") from None

    def save(self, keys: set[str]) -> None:
        write_atomic(self.path, json.dumps(sorted(keys), ensure_ascii=False).encode())


class SealFlowAlertNotifier(BaseNotifier):
    """Announce every new SealFlow condition by e-mail through Airflow's ``SmtpNotifier``."""

    template_fields = ("to",)

    def __init__(self, *, to: str | list[str], from_email: str | None = None,
                 smtp_conn_id: str = "smtp_default", sessions=None, settings=None) -> None:
        super().__init__()
        self.to = to
        self.from_email = from_email
        self.smtp_conn_id = smtp_conn_id
        self._sessions, self._settings = sessions, settings

    def _env(self):
        if self._sessions is None or self._settings is None:
            from sealflow_airflow import pipeline

            return pipeline._sessions(), pipeline.settings()
        return self._sessions, self._settings

    def notify(self, context: Any) -> list[str]:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        sessions, settings = self._env()
        with sessions() as session:
            now_holding = conditions(session, key_states(settings.keystore_dir))
        ledger = AlertLedger(settings.state_dir / "alerts" / "sent.json")
        sent = ledger.load()
        holding = {c.key for c in now_holding}
        announced = []
        for condition in now_holding:
            if condition.key in sent:
                continue
            SmtpNotifier(from_email=self.from_email, to=self.to, smtp_conn_id=self.smtp_conn_id,
                         subject=condition.subject, html_content=f"<p>{html.escape(condition.body)}</p>"
                         ).notify(context)
            sent.add(condition.key)
            ledger.save(sent & holding)  # after each mail: a crash repeats at most one
            announced.append(condition.key)
        ledger.save(sent & holding)  # cleared conditions are forgotten, so a recurrence is announced
        if announced:
            log.info("alerts sent: %s", ", ".join(announced))
        return announced
