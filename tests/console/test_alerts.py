"""Alerts reach a real SMTP server (aiosmtpd on a free port) through Airflow's SMTP notifier, once per
condition: a seal entering its renewal window, an expired seal, a dead-lettered filing, a locked key, a
refused batch and failed ones (incomplete, never approved) — and the health page lists the same. The
fixity alert is tested where a real fixity pass runs (tests/archive/test_fixity_alert.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from kernel.db import transaction
from tests.console.world import demo_world, get_as_admin
from tests.pipeline.plugins_path import PLUGINS
from tests.smtp_inbox import Inbox, smtp_fixture  # noqa: F401 (the fixture ``smtp``)

sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def world(tmp_path: Path):
    from gmpki.keys.store import WrongPin
    from kernel.keys import key_store
    from stamping.batch.models import Batch
    from stamping.registry.models import Seal

    built = demo_world(tmp_path / "var", demo={"official_pin": "official-246810", "personal_pin": "personal-135790"})
    settings, sessions, demo = built.settings, built.sessions, built.demo
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        session.execute(update(Seal).where(Seal.es_id == demo["es_ids"]["official"])
                        .values(valid_end=now + timedelta(days=12)))
        session.execute(update(Seal).where(Seal.es_id == demo["es_ids"]["personal"])
                        .values(valid_end=now - timedelta(days=1)))
        for batch_id, status in (("refused-1", "refused"), ("stuck-1", "incomplete"), ("unanswered-1", "not_approved"),
                                 ("fine-1", "done")):
            session.add(Batch(batch_id=batch_id, source="/in", es_id=demo["es_ids"]["official"],
                              requester="applicant", status=status, work_dir="/tmp/x", created_at=now))
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
    built.engine.dispose()


def test_each_condition_is_mailed_once_and_again_only_when_it_comes_back(smtp: Inbox, world) -> None:
    from sealflow_airflow.alerts import SealFlowAlertNotifier

    sessions, settings, store, demo = world
    notifier = SealFlowAlertNotifier(to="records@office.example", sessions=sessions, settings=settings)
    first = notifier.notify({})
    assert sorted(k.split(":")[0] for k in first) == [
        "batch-incomplete", "batch-not_approved", "batch-refused", "filing-dead", "key-locked", "seal-expired",
        "seal-renewal"]
    subjects = smtp.subjects()
    assert len(subjects) == 7
    assert any("印章 11 天后到期" in s or "印章 12 天后到期" in s for s in subjects), subjects
    assert any("印章已过期" in s for s in subjects)
    assert any("密钥已锁定 alert-test" in s for s in subjects)
    assert any("批次被拒绝 refused-1" in s for s in subjects)
    assert any("stuck-1" in s and "未完成" in s for s in subjects)
    assert any("unanswered-1" in s and "未获批准" in s for s in subjects)
    assert not any("fine-1" in s for s in subjects)
    assert "platform said 500" in smtp.body_of("死信")
    assert all(m["To"] == "records@office.example" for m in smtp.messages)
    assert "sealflow ca unlock-key alert-test" in smtp.body_of("密钥")

    assert notifier.notify({}) == [] and len(smtp.messages) == 7  # nothing new: nothing sent

    from gmpki.keys.store import set_admin_credential

    set_admin_credential(settings.state_dir / "ca-admin", "ca-admin-credential-1")
    store.admin_unlock("alert-test", settings.state_dir / "ca-admin", "ca-admin-credential-1")
    assert notifier.notify({}) == []  # cleared: forgotten
    for _ in range(5):
        with pytest.raises(Exception):
            store.signer("alert-test", "wrong-pin")
    assert notifier.notify({}) == ["key-locked:alert-test"]  # back again: announced again
    assert len(smtp.messages) == 8
    with sessions() as session:
        from stamping.registry.models import Seal

        assert session.scalar(select(Seal.es_id).where(Seal.es_id == demo["es_ids"]["official"]))


def test_the_health_page_shows_every_condition_that_is_mailed_and_the_last_fixity_pass(world) -> None:
    from html import escape

    from archive.fixity import record_run
    from tests.pipeline.plugins_path import pipeline_module

    sessions, settings, _store, _demo = world
    record_run(sessions, {"checked_at": datetime.now(UTC).isoformat(), "records_checked": 3, "ok": False,
                          "problem_counts": {"missing": 1},
                          "problems": [{"archival_code": "X001-ZZ·2026-Y-000001", "key": "packages/a.tar",
                                        "licence_id": "L1", "problem": "missing", "reason": "no current object"}],
                          "report_key": "reports/fixity/20260101T000000000000Z.json"})
    pipeline_module(settings)
    from sealflow_airflow.console.conditions import backup_state, conditions, key_states

    page = get_as_admin("/health")
    assert page.status_code == 200, page.text
    with sessions() as session:
        holding = conditions(session, key_states(settings.keystore_dir), backup=backup_state(settings))
    assert len(holding) == 8  # the seven of the mail test and the fixity problem
    for condition in holding:
        assert escape(condition.subject) in page.text, condition.subject
    assert "档案完整性检查发现 1 个问题" in page.text
    assert "检查 3 件，发现问题 档案包缺失 1" in page.text  # the last fixity pass, from the archive's record
