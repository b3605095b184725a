"""SMS gateways (短信网关) for the one-time codes of 用章审批, behind one interface, ``SmsGateway``.

Decisions behind it:

- A message holding a code is a secret: no gateway ever logs its text (only the masked number and the
  message length), and no exception carries it.
- :class:`LocalSmsGateway` (embedded stack, demo, tests) delivers into ``<outbox>/<keeper>.txt``, one
  file per keeper, created 0600 in a 0700 folder; a file found wider than 0600 is refused, not used.
- :class:`HttpSmsGateway` (production) POSTs ``{"to", "text"}`` as JSON to the office's gateway URL,
  with an optional bearer token; a non-2xx answer raises :class:`SmsError` naming the status only.
- :func:`gateway_for` chooses the gateway from settings (``sms_gateway`` = ``local`` | ``http``).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from kernel.settings import Settings

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.@+-]")


class SmsError(Exception):
    """The message could not be delivered; the text says why (never the message itself)."""


class SmsGateway(Protocol):
    def send(self, phone: str, text: str) -> None: ...


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


class LocalSmsGateway:
    """Delivers messages into ``outbox/<phone>.txt`` (one line each, 0600); logs no text."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = Path(outbox)

    def _path(self, phone: str) -> Path:
        name = _SAFE_NAME.sub("_", phone).lstrip(".") or "_"
        return self.outbox / f"{name}.txt"

    def send(self, phone: str, text: str) -> None:
        self.outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.outbox, 0o700)
        path = self._path(phone)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
            if mode & 0o077:
                raise SmsError(f"SMS outbox file {path} is readable by others (mode {mode:o}); chmod 600 it")
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            os.write(fd, f"{stamp}\t{text}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("local SMS gateway: one message (%d characters) to %s", len(text), mask_phone(phone))

    def messages(self, phone: str) -> list[str]:
        path = self._path(phone)
        if not path.exists():
            return []
        return [line.split("\t", 1)[1] for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]

    def last_message(self, phone: str) -> str | None:
        found = self.messages(phone)
        return found[-1] if found else None


class HttpSmsGateway:
    """POSTs each message as JSON ``{"to": phone, "text": text}`` to the office's SMS gateway."""

    def __init__(self, url: str, token: str = "", timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise SmsError(f"SMS gateway URL {url!r} must be http(s)://…; set SEALFLOW_SMS_URL")
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, phone: str, text: str) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = httpx.post(self.url, json={"to": phone, "text": text}, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise SmsError(f"SMS gateway {self.url} unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise SmsError(f"SMS gateway {self.url} refused the message ({response.status_code})")
        log.info("HTTP SMS gateway: one message (%d characters) to %s", len(text), mask_phone(phone))


def gateway_for(settings: Settings) -> SmsGateway:
    """The gateway named by ``settings.sms_gateway``: ``local`` (outbox files) or ``http``."""
    kind = (settings.sms_gateway or "local").lower()
    if kind == "local":
        return LocalSmsGateway(settings.resolved_sms_outbox)
    if kind == "http":
        return HttpSmsGateway(settings.sms_url, settings.sms_token)
    raise SmsError(f"unknown SMS gateway {kind!r}: set SEALFLOW_SMS_GATEWAY to local or http")
