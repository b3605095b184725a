"""A batch run through the pipeline on the embedded stack, and the people who look at it in the console.

The api-server is restarted once with two more SimpleAuthManager users: ``applicant`` (a registry user
holding only the applicant role) and ``visitor`` (an Airflow viewer unknown to the registry), so the
tests can show that the console's role check, not only Airflow's login, decides who sees what.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

import sealflow.stack as stack_module
from sealflow.stack import airflow_login, down, start_components
from stamping.batch.models import BatchDocument
from stamping.batch.samples import write_batch
from tests.pipeline.conftest import PipelineEnv, batch_conf

BATCH_ID = "console-1"
EXTRA_USERS = {"applicant": "viewer", "visitor": "viewer"}


@dataclass
class ConsoleEnv:
    env: PipelineEnv
    base: str
    passwords: dict[str, str]
    expected: dict
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            response = httpx.post(f"{self.base}/auth/token", json={"username": user, "password": self.passwords[user]})
            assert response.status_code in (200, 201), response.text
            self.tokens[user] = response.json()["access_token"]
        return self.tokens[user]

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def verified_documents(self) -> list[BatchDocument]:
        with self.env.sessions() as session:
            return list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == BATCH_ID,
                                                                    BatchDocument.state == "verified")))


def _add_users(settings, passwords_file: Path) -> dict[str, str]:
    admin, admin_password = airflow_login(settings)
    passwords = json.loads(passwords_file.read_text())
    for user in EXTRA_USERS:
        passwords.setdefault(user, secrets.token_urlsafe(12))
    stack_module._write_private(passwords_file, json.dumps(passwords) + "\n")
    return {**passwords, admin: admin_password}


@pytest.fixture(scope="module")
def console_env(pipeline_env: PipelineEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEnv]:
    settings = pipeline_env.settings
    passwords = _add_users(settings, stack_module._passwords_file(settings))
    original = stack_module.airflow_env

    def with_console_users(s, base=None):
        env = original(s, base)
        listed = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        known = {entry.split(":")[0] for entry in listed.split(",")}  # registry people already are users
        extra = [f"{u}:{r}" for u, r in EXTRA_USERS.items() if u not in known]
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join([listed, *extra])
        return env

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stack_module, "airflow_env", with_console_users)
        down(settings, out=lambda _m: None, only=["api-server"])
        start_components(settings, ["api-server"], out=lambda _m: None)
    passwords = {**json.loads(stack_module._passwords_file(settings).read_text()), **passwords}
    folder = tmp_path_factory.mktemp("console") / "in"
    expected = write_batch(folder, 10, bad=True, start=900)
    result = pipeline_env.run_batch(batch_conf(pipeline_env, folder, BATCH_ID), "Approve")
    assert result.returncode == 0, result.stdout[-4000:]
    archived = pipeline_env.stack.run_dag("archive_batch", {"batch_id": BATCH_ID})
    assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]
    yield ConsoleEnv(pipeline_env, f"http://127.0.0.1:{settings.airflow_port}", passwords, expected)
