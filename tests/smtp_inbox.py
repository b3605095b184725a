"""A real SMTP server for tests (aiosmtpd on a free local port) and Airflow's ``smtp_default``
connection pointing at it, so alerts travel through Airflow's SMTP notifier and are read back."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest

from sealflow.stack.ports import free_port


class Inbox:
    """Every message the server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def body_of(self, subject_part: str) -> str:
        return next(m for m in self.messages if subject_part in str(m["Subject"])).get_body().get_content()


@pytest.fixture(name="smtp")
def smtp_fixture(monkeypatch: pytest.MonkeyPatch):
    """The inbox of a running local SMTP server that ``smtp_default`` points at (import it by this name)."""
    controller_module = pytest.importorskip("aiosmtpd.controller",
                                            reason="aiosmtpd is not installed (pip install -e '.[dev]')")
    inbox, port = Inbox(), free_port()
    controller = controller_module.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "sealflow@localhost"}}))
    yield inbox
    controller.stop()
