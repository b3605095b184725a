"""Airflow hook for filing (备案) with the national platform: endpoint and credentials from a connection.

Connection ``sealflow_platform`` (any type; ``http`` is fine):

* host / schema / port — the platform endpoint (``https://host:port``; a full URL in host works too);
* login — our system id at the platform (default ``Settings.filing_system_id``);
* password — the PIN of the sending system's key in the key store;
* extra — ``{"key_id": "filing-system", "platform_cert": "/path/platform-cert.pem", "timeout": 30}``.

Without the connection (the embedded stack) everything comes from :class:`kernel.settings.Settings`.
The PIN never reaches logs or XCom.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseHook

from filing.client import PlatformClient
from filing.identity import load_platform_certificate, system_signer
from kernel.settings import Settings, get_settings
from sealflow_airflow.hooks import platform_overrides

log = logging.getLogger(__name__)


class SealflowPlatformHook(BaseHook):
    conn_name_attr = "platform_conn_id"
    default_conn_name = "sealflow_platform"
    conn_type = "http"
    hook_name = "SealFlow national platform"

    def __init__(self, platform_conn_id: str = default_conn_name, settings: Settings | None = None) -> None:
        super().__init__()
        self.platform_conn_id = platform_conn_id
        self.settings = settings or get_settings()

    def _connection(self) -> Any | None:
        try:
            return self.get_connection(self.platform_conn_id)
        except Exception:  # Airflow raises different types per version when a connection is absent
            log.info("no connection %r: the platform endpoint comes from settings", self.platform_conn_id)
            return None

    def settings_and_url(self) -> tuple[Settings, str, float]:
        """Settings overridden by the connection, the endpoint URL and the timeout."""
        conn = self._connection()
        if conn is None:
            return self.settings, self.settings.resolved_platform_url, 30.0
        overrides = platform_overrides(conn)  # the one reading of the connection (sealflow_airflow.hooks)
        settings = self.settings.with_overrides(**overrides) if overrides else self.settings
        return settings, settings.resolved_platform_url, float((conn.extra_dejson or {}).get("timeout", 30.0))

    def get_conn(self) -> PlatformClient:
        settings, url, timeout = self.settings_and_url()
        return PlatformClient(
            url,
            system_signer(settings),
            load_platform_certificate(settings),
            timeout=timeout,
            system_id=settings.filing_system_id,
        )


def file_records(max_records: int | None = None, platform_conn_id: str = "sealflow_platform") -> dict[str, Any]:
    """The ``file_records`` task: drain what is due, then report the outbox status (small dict for XCom)."""
    from filing.dispatcher import drain
    from filing.outbox import utcnow
    from filing.reconcile import status
    from sealflow_airflow import root

    factory = root.sessions()
    started = utcnow()
    with SealflowPlatformHook(platform_conn_id).get_conn() as client:
        result = drain(factory, client, max_records=max_records)
    with factory() as session:
        state = status(session)
    refresh_filed_reports(factory, started)
    log.info(
        "filing: claimed %d, sent %d, failed %d, dead %d; outbox %s",
        result.claimed, result.sent, result.failed, result.dead, state["counts"],
    )
    alarm_on_failing_delivery(factory, result, root.settings().filing_alert_after_s)
    return {"drain": result.as_dict(), "outbox": state["counts"], "held_by_dead_letter": state["held_by_dead_letter"]}


def refresh_filed_reports(factory: Any, since: Any) -> list[str]:
    """Batches whose archive registration this drain filed get their report written again, so it says
    已备案 with the receipts — the batch ids. (A dead letter is an alert and on the health page.)"""
    from sqlalchemy import select

    from filing.outbox import OutboxRecord
    from sealflow_airflow import pipeline

    with factory() as session:
        batch_ids = sorted(set(session.scalars(select(OutboxRecord.subject).where(
            OutboxRecord.kind == "archive.register", OutboxRecord.sent_at >= since))))
    for batch_id in batch_ids:
        pipeline.refresh_report(batch_id)
    return batch_ids


def alarm_on_failing_delivery(factory: Any, result: Any, threshold_s: float) -> None:
    """Fail the run (no retry: only the platform or an operator can change it) when nothing could be
    delivered for longer than ``threshold_s``, or when this drain dead-lettered records."""
    from airflow.sdk.exceptions import AirflowFailException

    from filing.dispatcher import delivery_stall
    from filing.outbox import utcnow

    now = utcnow()
    with factory() as session:
        stall = delivery_stall(session, now)
    if stall is not None and stall.seconds(now) > threshold_s:
        raise AirflowFailException(
            f"filing: nothing delivered to the platform for {stall.seconds(now) / 60:.0f} min (since "
            f"{stall.since.isoformat()}), {stall.waiting} records waiting; last error: {stall.last_error} — "
            f"check the platform and connection sealflow_platform; `sealflow filing status` shows the outbox")
    if result.dead:
        raise AirflowFailException(
            f"filing: {result.dead} record(s) dead-lettered in this run ({result.sent} others delivered); "
            f"`sealflow filing status` names them and the reason; fix, then `sealflow filing retry RECORD_ID`")
