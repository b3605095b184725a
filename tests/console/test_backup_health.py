"""The health page shows the last backup (when, full or incremental, how big, where) and nobody is left
unaware of a missing or stale one: it is a condition, listed on the page and mailed by the alerts.
In-process (FastAPI's test client and a local SMTP server), backups taken to a folder: no stack."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup.snapshot import BackupKeys, FolderDestination, create_backup
from kernel.db import session_factory
from kernel.settings import Settings
from tests.backups.seeded import backup_signer
from tests.console.world import demo_world, get_as_admin
from tests.pipeline.plugins_path import PLUGINS, pipeline_module
from tests.smtp_inbox import Inbox, smtp_fixture  # noqa: F401 (the fixture ``smtp``)

sys.path.insert(0, str(PLUGINS))

KEK = "00" * 32


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    from gmpki.pki.ca import DemoCA

    return backup_signer(DemoCA.create(tmp_path_factory.mktemp("health-ca") / "ca"))


def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str):
    """A home with the demo's people (an administrator sees the health page) as the console's root."""
    # monkeypatch owns the variable, so the target does not leak into later tests' settings
    if target:
        monkeypatch.setenv("SEALFLOW_BACKUP_TARGET", target)
    else:
        monkeypatch.delenv("SEALFLOW_BACKUP_TARGET", raising=False)
    world = demo_world(tmp_path / "var", kek=KEK, backup_target=target)
    settings, engine = world.settings, world.engine
    pipeline_module(settings)
    import sealflow_airflow.console.health_routes as console

    monkeypatch.setattr(console, "_last_fixity", lambda: "never run")  # no Airflow database in this process
    return settings, engine


@pytest.fixture
def with_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    settings, engine = _home(tmp_path, monkeypatch, str(tmp_path / "backups"))
    yield settings, engine
    engine.dispose()


def _take(settings: Settings, engine, signer, now: datetime | None = None):
    return create_backup(engine, settings.state_dir, FolderDestination(Path(settings.backup_target)),
                         BackupKeys.from_kek(bytes.fromhex(KEK)), signer, {}, now=now)


def _as_admin(path: str):
    response = get_as_admin(path)
    assert response.status_code == 200, response.text
    return response


def _backup_alerts(health: dict) -> list[dict]:
    return [a for a in health["alerts"] if a["key"].startswith("backup")]


def test_a_fresh_backup_is_shown_with_its_kind_and_size_and_raises_no_alert(with_target, signer) -> None:
    settings, engine = with_target
    taken = _take(settings, engine, signer)
    health = _as_admin("/api/health").json()
    shown = health["backup"]
    assert shown["configured"] and shown["target"] == str(Path(settings.backup_target).resolve())
    assert shown["latest"]["backup_id"] == taken.backup_id and shown["latest"]["kind"] == "full"
    assert shown["latest"]["bytes"] == sum(o["size"] for o in taken.manifest["objects"]) > 0
    assert shown["latest"]["objects"] == len(taken.manifest["objects"])
    assert _backup_alerts(health) == []
    page = _as_admin("/health").text
    assert "最近一次备份" in page and taken.backup_id in page and "全量 full" in page
    assert f"{len(taken.manifest['objects'])} 个对象" in page


def test_a_backup_older_than_the_limit_is_an_alert_on_the_page_and_in_the_mail(with_target, signer, smtp) -> None:
    from sealflow_airflow.alerts import SealFlowAlertNotifier

    settings, engine = with_target
    assert settings.backup_alert_after_h == 26  # a daily schedule plus slack
    old = _take(settings, engine, signer, now=datetime.now(UTC) - timedelta(hours=27))
    alerts = _backup_alerts(_as_admin("/api/health").json())
    assert [a["key"] for a in alerts] == [f"backup-stale:{old.backup_id}"]
    assert "sealflow backup create" in alerts[0]["body"] and "26" in alerts[0]["body"]
    assert "最近一次备份已是 27 小时前" in alerts[0]["subject"]
    assert "最近一次备份已是 27 小时前" in _as_admin("/health").text

    sessions = session_factory(engine)
    notifier = SealFlowAlertNotifier(to="ops@office.example", sessions=sessions, settings=settings)
    assert f"backup-stale:{old.backup_id}" in notifier.notify({})
    assert "sealflow backup create" in smtp.body_of("备份")

    _take(settings, engine, signer)  # a new backup clears it
    assert _backup_alerts(_as_admin("/api/health").json()) == []
    assert notifier.notify({}) == []


def test_a_configured_target_without_any_backup_is_an_alert(with_target) -> None:
    health = _as_admin("/api/health").json()
    assert health["backup"]["configured"] and health["backup"]["latest"] is None
    assert [a["key"] for a in _backup_alerts(health)] == ["backup-none"]
    assert "sealflow backup create" in _backup_alerts(health)[0]["body"]
    assert "尚无备份" in _as_admin("/health").text


def test_an_unreadable_target_is_an_alert_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "var"
    _settings, engine = _home(tmp_path, monkeypatch, str(home / "backups"))  # inside the home: refused
    try:
        health = _as_admin("/api/health").json()
        assert health["backup"]["error"] and "inside the SealFlow home" in health["backup"]["error"]
        assert [a["key"] for a in _backup_alerts(health)] == ["backup-unreadable"]
        assert "备份位置无法读取" in _as_admin("/health").text
    finally:
        engine.dispose()


def test_without_a_backup_target_the_page_says_so_and_raises_no_alert(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _settings, engine = _home(tmp_path, monkeypatch, "")
    try:
        health = _as_admin("/api/health").json()
        assert health["backup"] == {"configured": False, "target": "", "latest": None, "error": "",
                                    "alert_after_h": 26, "stale": False}
        assert _backup_alerts(health) == []
        assert "未配置备份 (no backup target configured)" in _as_admin("/health").text
    finally:
        engine.dispose()
