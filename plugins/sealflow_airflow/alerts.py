"""Alerts (告警) through Airflow's notifiers: a seal entering its 30-day renewal window or expired, a
dead-lettered filing record, a fixity problem, a locked key, a failed or refused batch, a configured
backup target whose newest backup is missing, too old or unreadable — each e-mailed once per condition.

``SealFlowAlertNotifier`` is an Airflow notifier (``BaseNotifier``): use it as a DAG or task callback,
or call it from the ``sealflow_alerts`` watch DAG. On each call it works out the conditions that hold
now, sends the new ones through Airflow's ``SmtpNotifier`` (the ``smtp_default`` connection, so the
mail server and sender are Airflow configuration), and remembers them.

Decisions:
- Once per condition: a ledger (``<state>/alerts/sent.json``, written atomically) keeps the keys of the
  conditions already announced; a condition that clears is dropped from it, so if it comes back it is
  announced again. A crash between sending and writing the ledger may repeat one mail — never lose one.
- Conditions are read from the database, the key store and the backup target (the facts), not from
  task events, so a watch that was down for a while still reports what happened meanwhile.
- Recipients are passed in by the DAG from configuration (an Airflow Variable), never hard-coded.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from kernel.files import write_atomic
from sealflow_airflow.console.conditions import backup_state, conditions, key_states

log = logging.getLogger(__name__)


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
            from sealflow_airflow import root

            return root.sessions(), root.settings()
        return self._sessions, self._settings

    def notify(self, context: Any) -> list[str]:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        sessions, settings = self._env()
        with sessions() as session:
            now_holding = conditions(session, key_states(settings.keystore_dir), backup=backup_state(settings))
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
