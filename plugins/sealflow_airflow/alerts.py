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
- Recipients come from configuration (the Airflow Variable ``sealflow_alert_recipients``), read when the
  notifier runs, never when a DAG file is parsed, and never hard-coded.
- Per event and on a watch: the pipeline's DAGs call the notifier when a run ends (a refused or failed
  batch, a failed archiving, filing or fixity run is mailed at once), and the 15-minute ``sealflow_alerts``
  watch catches what no run reports (a seal reaching its renewal window, a key locked from the CLI). Both
  share the ledger under an exclusive lock, so two callers never mail the same condition twice.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from kernel.files import exclusive_lock, write_atomic

log = logging.getLogger(__name__)

RECIPIENTS_VARIABLE = "sealflow_alert_recipients"


def configured_recipients() -> list[str]:
    """The addresses in the Airflow Variable ``sealflow_alert_recipients`` (comma-separated), or none."""
    from airflow.sdk import Variable

    return [r.strip() for r in Variable.get(RECIPIENTS_VARIABLE, default="").split(",") if r.strip()]


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

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive use of the ledger across processes (a run's callback and the watch at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with exclusive_lock(self.path.with_name(self.path.name + ".lock")):
            yield

    def save(self, keys: set[str]) -> None:
        write_atomic(self.path, json.dumps(sorted(keys), ensure_ascii=False).encode())


class SealFlowAlertNotifier(BaseNotifier):
    """Announce every new SealFlow condition by e-mail through Airflow's ``SmtpNotifier``."""

    # Nothing templated: the recipients come from configuration.
    template_fields = ()

    def __init__(self, *, to: str | list[str] | None = None, from_email: str | None = None,
                 smtp_conn_id: str = "smtp_default", sessions=None, settings=None) -> None:
        super().__init__()
        self.to = to
        self.from_email = from_email
        self.smtp_conn_id = smtp_conn_id
        self._sessions, self._settings = sessions, settings

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Nothing to render. Overridden because a DAG callback can receive the serialized DAG, which has
        no template environment: Airflow's rendering raised before ``notify`` was reached."""

    def _env(self):
        if self._sessions is None or self._settings is None:
            from sealflow_airflow import root

            return root.sessions(), root.settings()
        return self._sessions, self._settings

    def notify(self, context: Any) -> list[str]:
        """Mail each condition that holds now and was not announced yet; return their keys.

        ``to`` not given: the recipients are read from the Variable now; with none configured nothing
        is sent (and the ledger is left alone, so nothing is marked announced that nobody received)."""
        to = self.to if self.to else configured_recipients()
        if not to:
            log.warning("no alert recipients: set the Airflow Variable %s (comma-separated addresses)",
                        RECIPIENTS_VARIABLE)
            return []
        # Here, not at the top: DAG files import this module for their callbacks and stay light to parse.
        from sealflow_airflow.console.conditions import backup_state, conditions, key_states

        sessions, settings = self._env()
        with sessions() as session:
            now_holding = conditions(session, key_states(settings.keystore_dir), backup=backup_state(settings))
        ledger = AlertLedger(settings.state_dir / "alerts" / "sent.json")
        with ledger.locked():
            return self._announce(context, to, now_holding, ledger)

    def _announce(self, context: Any, to: str | list[str], now_holding: list, ledger: AlertLedger) -> list[str]:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        # Without the DAG: the mail is not templated, and the serialized DAG a DAG callback receives has no
        # template environment (the SMTP notifier renders the connection's sender with it).
        plain = {k: v for k, v in (context or {}).items() if k != "dag"}
        sent = ledger.load()
        holding = {c.key for c in now_holding}
        announced = []
        for condition in now_holding:
            if condition.key in sent:
                continue
            SmtpNotifier(from_email=self.from_email, to=to, smtp_conn_id=self.smtp_conn_id,
                         subject=condition.subject, html_content=f"<p>{html.escape(condition.body)}</p>"
                         ).notify(plain)
            sent.add(condition.key)
            ledger.save(sent & holding)  # after each mail: a crash repeats at most one
            announced.append(condition.key)
        ledger.save(sent & holding)  # cleared conditions are forgotten, so a recurrence is announced
        if announced:
            log.info("alerts sent: %s", ", ".join(announced))
        return announced
