"""A fixity problem reaches the people who must act, once: a real fixity pass over a real bucket finds a
package gone, the alert watch mails it through Airflow's SMTP notifier to a real local SMTP server;
the next pass finding the same problem sends nothing; a pass finding another problem mails again."""

from __future__ import annotations

import sys

import pytest
from sqlalchemy import select

from archive.checks import NoScanner
from archive.fixity import run_fixity
from archive.models import ArchiveRecord
from archive.service import archive_records
from tests.pipeline.plugins_path import PLUGINS
from tests.smtp_inbox import Inbox, smtp_fixture  # noqa: F401 (the fixture ``smtp``)

pytestmark = pytest.mark.stack
sys.path.insert(0, str(PLUGINS))


def test_a_fixity_problem_is_mailed_once_per_set_of_problems(env, sealed_docs, smtp: Inbox, tmp_path) -> None:
    from sealflow_airflow.alerts import SealFlowAlertNotifier

    archive_records([d.to_input() for d in sealed_docs[:3]], batch_id="FA1", settings=env.settings, store=env.store,
                    sessions=env.sessions, signer=env.signer, trust=env.trust, scanner=NoScanner())
    # Its own home: the alert ledger and an empty key store, not the shared stack's.
    settings = env.settings.with_overrides(home=tmp_path / "alerts-home")
    notifier = SealFlowAlertNotifier(to="archivist@office.example", sessions=env.sessions, settings=settings)
    assert run_fixity(env.store, env.sessions)["ok"]
    assert notifier.notify({}) == [] and smtp.messages == []  # a clean pass: nothing to say

    with env.sessions() as session:
        rows = list(session.scalars(select(ArchiveRecord).order_by(ArchiveRecord.id)))
    env.store.client.delete_object(Bucket=env.store.bucket, Key=rows[0].object_key)  # a delete marker hides it
    assert not run_fixity(env.store, env.sessions)["ok"]
    (key,) = notifier.notify({})
    assert key.startswith("fixity:")
    (message,) = smtp.messages
    assert "档案完整性检查发现 1 个问题" in str(message["Subject"])
    assert rows[0].archival_code in message.get_body().get_content()
    assert message["To"] == "archivist@office.example"

    run_fixity(env.store, env.sessions)  # the weekly pass finds the same problem again
    assert notifier.notify({}) == [] and len(smtp.messages) == 1

    env.store.client.delete_object(Bucket=env.store.bucket, Key=rows[1].object_key)
    run_fixity(env.store, env.sessions)
    assert notifier.notify({}) != [] and len(smtp.messages) == 2
    assert "发现 2 个问题" in str(smtp.messages[1]["Subject"])
