"""SMS gateways for one-time codes. Production plugs in the office's gateway behind ``SmsGateway``;
the embedded stack uses :class:`LocalSmsGateway`, which writes each message to a file and the log."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None: ...


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


class LocalSmsGateway:
    """Delivers messages into ``outbox/<phone>.txt`` (one line each) and the log."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def send(self, phone: str, text: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        path = self.outbox / f"{phone}.txt"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{stamp}\t{text}\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.info("local SMS gateway: message to %s: %s", mask_phone(phone), text)

    def last_message(self, phone: str) -> str | None:
        path = self.outbox / f"{phone}.txt"
        if not path.exists():
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
        return lines[-1].split("\t", 1)[1] if lines else None
