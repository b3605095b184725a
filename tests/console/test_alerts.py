"""Alerts reach a real SMTP server (aiosmtpd on a free port) through Airflow's SMTP notifier, once per
condition: an expiring seal, a dead-lettered filing, a locked key, a refused batch."""

from __future__ import annotations

import json
import socket
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kernel.db import make_engine, migrate, session_factory, transaction
from kernel.settings import Settings
from tests.pipeline.plugins_path import PLUGINS

sys.path.insert(0, str(PLUGINS))

aiosmtpd = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is not installed (pip install -e '.[dev]')")


class Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch):
    inbox, port = Inbox(), _free_port()
    controller = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "sealflow@localhost"}}))
    yield inbox
    controller.stop()


@pytest.fixture
def world(tmp_path: Path):
    from gmpki.keys.store import WrongPin
    from kernel.keys import key_store
    from stamping.batch.models import Batch
    from stamping.registry.demo import bootstrap_demo
    from stamping.registry.models import Seal
    from stamping.registry.service import SealRegistry

    settings = Settings(home=tmp_path / "var", kek="00" * 32)
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    demo = bootstrap_demo(SealRegistry(sessions, settings), official_pin="official-246810",
                          personal_pin="personal-135790")
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.execute(update(Seal).where(Seal.es_id == demo["es_ids"]["official"])
                        .values(valid_end=now + timedelta(days=12)))
        session.add(Batch(batch_id="refused-1", source="/in", es_id=demo["es_ids"]["official"], requester="applicant",
                          status="refused", work_dir="/tmp/x", created_at=now))
        from filing.outbox import DEAD, OutboxRecord, enqueue

        record_id = enqueue(session, "archive.register", "refused-1", {"documents": 1})
        session.flush()
        session.execute(update(OutboxRecord).where(OutboxRecord.record_id == record_id)
                        .values(state=DEAD, attempts=8, last_error="platform said 500"))
    store = key_store(settings)
    store.create("alert-test", "right-pin-1")
    for _ in range(5):
        with pytest.raises(Exception) as caught:
            store.signer("alert-test", "wrong-pin")
        assert isinstance(caught.value, WrongPin) or "locked" in str(caught.value)
    assert store.is_locked("alert-test")
    yield sessions, settings, store, demo
    engine.dispose()


def test_each_condition_is_mailed_once_and_again_only_when_it_comes_back(smtp: Inbox, world) -> None:
    from sealflow_airflow.alerts import SealFlowAlertNotifier

    sessions, settings, store, demo = world
    notifier = SealFlowAlertNotifier(to="records@office.example", sessions=sessions, settings=settings)
    first = notifier.notify({})
    assert sorted(k.split(":")[0] for k in first) == ["batch-refused", "filing-dead", "key-locked", "seal-renewal"]
    subjects = smtp.subjects()
    assert len(subjects) == 4
    assert any("印章 11 天后到期" in s or "印章 12 天后到期" in s for s in subjects), subjects
    assert any("密钥已锁定 alert-test" in s for s in subjects)
    assert any("批次被拒绝 refused-1" in s for s in subjects)
    assert all(m["To"] == "records@office.example" for m in smtp.messages)
    assert "sealflow ca unlock-key alert-test" in next(
        m for m in smtp.messages if "密钥" in str(m["Subject"])).get_body().get_content()

    assert notifier.notify({}) == [] and len(smtp.messages) == 4  # nothing new: nothing sent

    from gmpki.keys.store import set_admin_credential

    set_admin_credential(settings.state_dir / "ca-admin", "ca-admin-credential-1")
    store.admin_unlock("alert-test", settings.state_dir / "ca-admin", "ca-admin-credential-1")
    assert notifier.notify({}) == []  # cleared: forgotten
    for _ in range(5):
        with pytest.raises(Exception):
            store.signer("alert-test", "wrong-pin")
    assert notifier.notify({}) == ["key-locked:alert-test"]  # back again: announced again
    assert len(smtp.messages) == 5
    with sessions() as session:
        from stamping.registry.models import Seal

        assert session.scalar(select(Seal.es_id).where(Seal.es_id == demo["es_ids"]["official"]))
