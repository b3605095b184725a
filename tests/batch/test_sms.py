"""SMS gateways for one-time codes: the local outbox is private and logs no text; the HTTP gateway
delivers through a real HTTP server and fails without the message in its error; settings choose."""

from __future__ import annotations

import json
import logging
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kernel.settings import Settings, local_url
from stamping.batch.sms import HttpSmsGateway, LocalSmsGateway, SmsError, gateway_for

TEXT = "【SealFlow】用章审批 batch b1, seal 4500001. One-time code 314159, valid until …"


def test_the_local_outbox_is_one_private_file_per_keeper(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gateway = LocalSmsGateway(tmp_path / "sms")
    with caplog.at_level(logging.DEBUG):
        gateway.send("keeper", TEXT)
        gateway.send("other", "hello")
    path = tmp_path / "sms" / "keeper.txt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "sms").stat().st_mode) == 0o700
    assert gateway.last_message("keeper") == TEXT and gateway.messages("other") == ["hello"]
    assert "314159" not in caplog.text and caplog.records


def test_an_outbox_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    gateway = LocalSmsGateway(tmp_path / "sms")
    gateway.send("keeper", "first")
    (tmp_path / "sms" / "keeper.txt").chmod(0o644)
    with pytest.raises(SmsError, match="readable by others") as caught:
        gateway.send("keeper", TEXT)
    assert "314159" not in str(caught.value)
    assert gateway.messages("keeper") == ["first"]


def test_a_keeper_name_cannot_escape_the_outbox(tmp_path: Path) -> None:
    LocalSmsGateway(tmp_path / "sms").send("../../etc/x", "hi")
    assert [p.parent for p in tmp_path.rglob("*.txt")] == [tmp_path / "sms"]


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"auth": self.headers.get("Authorization"), **json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sms_server() -> Iterator[str]:
    _Recorder.received, _Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield local_url(server.server_address[1], "/sms")
    server.shutdown()
    server.server_close()


def test_the_http_gateway_posts_the_message_to_the_office_gateway(sms_server: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        HttpSmsGateway(sms_server, token="t0k").send("13800138000", TEXT)
    assert _Recorder.received == [{"auth": "Bearer t0k", "to": "13800138000", "text": TEXT}]
    assert "314159" not in caplog.text and "13800138000" not in caplog.text


def test_a_refusing_http_gateway_fails_without_the_message(sms_server: str) -> None:
    _Recorder.status = 503
    with pytest.raises(SmsError, match="refused the message \\(503\\)") as caught:
        HttpSmsGateway(sms_server).send("13800138000", TEXT)
    assert "314159" not in str(caught.value)
    with pytest.raises(SmsError, match="unreachable"):
        HttpSmsGateway("http://127.0.0.1:9/").send("13800138000", TEXT)


def test_settings_choose_the_gateway(settings: Settings, sms_server: str) -> None:
    assert isinstance(gateway_for(settings), LocalSmsGateway)
    http = gateway_for(replace(settings, sms_gateway="http", sms_url=sms_server))
    assert isinstance(http, HttpSmsGateway) and http.url == sms_server
    with pytest.raises(SmsError, match="unknown SMS gateway"):
        gateway_for(replace(settings, sms_gateway="pigeon"))
