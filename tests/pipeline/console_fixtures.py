"""A batch run through the pipeline on the embedded stack, and the people who look at it in the console.

The api-server is restarted once with more SimpleAuthManager users: ``applicant`` (a registry user
holding only the applicant role), ``visitor`` (an Airflow viewer unknown to the registry) and
``keeper2`` (a registry keeper of the same unit who keeps none of the seals used here), so the tests
can show that the console's role check and the approval's keeper, not only Airflow's login, decide
who sees and answers what.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

import sealflow.stack as stack_module
import sealflow.stack.components as stack_components
from kernel.settings import local_url
from sealflow.airflow_api import PendingApproval
from sealflow.stack import airflow_login, down, start_components
from stamping.batch.models import BatchDocument
from stamping.batch.samples import write_batch
from stamping.registry.demo import ADMIN, DEMO_PERSON_ID
from stamping.registry.service import SealRegistry
from tests.pipeline.conftest import PipelineEnv, batch_conf, dag_test_script

BATCH_ID = "console-1"
INBOX_BATCH_ID = "console-2"  # approved by the keeper in the browser, from the inbox page
EXTRA_USERS = {"applicant": "viewer", "visitor": "viewer"}
OTHER_KEEPER = "keeper2"


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

    def verified_documents(self, batch_id: str = BATCH_ID) -> list[BatchDocument]:
        with self.env.sessions() as session:
            return list(session.scalars(select(BatchDocument).where(BatchDocument.batch_id == batch_id,
                                                                    BatchDocument.state == "verified")))

    def start_batch(self, batch_id: str, documents: int = 4,
                    timeout: float = 600) -> tuple[subprocess.Popen, PendingApproval]:
        """``dag.test()`` of stamp_batch in the background, returned once its approval waits for the
        keeper: the caller answers it (in the browser) and then calls :meth:`finish`."""
        folder = self.env.settings.home.parent / f"in-{batch_id}"
        write_batch(folder, documents, bad=False, start=950)
        proc = subprocess.Popen([sys.executable, "-c", dag_test_script("stamp_batch",
                                                                       batch_conf(self.env, folder, batch_id))],
                                env=self.env.stack.airflow_env(), cwd=self.env.settings.airflow_home,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while not (pending := self.env.api.pending_approvals("stamp_batch", "~")):
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
                proc.kill()
                raise AssertionError(f"stamp_batch {batch_id} never asked for approval:\n{out[-4000:]}")
            time.sleep(0.5)
        return proc, pending[0]

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _add_users(settings, passwords_file: Path) -> dict[str, str]:
    admin, admin_password = airflow_login(settings)
    passwords = json.loads(passwords_file.read_text())
    for user in EXTRA_USERS:
        passwords.setdefault(user, secrets.token_urlsafe(12))
    stack_module.write_private(passwords_file, json.dumps(passwords) + "\n")
    return {**passwords, admin: admin_password}


@pytest.fixture(scope="module")
def console_env(pipeline_env: PipelineEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEnv]:
    settings = pipeline_env.settings
    # A registry user is an Airflow user once the api-server starts again (registry people are its users).
    credit_code = SealRegistry(pipeline_env.sessions, settings).show(pipeline_env.es_id)["credit_code"]
    SealRegistry(pipeline_env.sessions, settings).add_user(credit_code, OTHER_KEEPER, "keeper", actor=ADMIN,
                                                           person_id_number=DEMO_PERSON_ID)
    passwords = _add_users(settings, stack_module.passwords_file(settings))
    original = stack_components.airflow_env

    def with_console_users(s, base=None):
        env = original(s, base)
        listed = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
        known = {entry.split(":")[0] for entry in listed.split(",")}  # registry people already are users
        extra = [f"{u}:{r}" for u, r in EXTRA_USERS.items() if u not in known]
        env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = ",".join([listed, *extra])
        return env

    with pytest.MonkeyPatch.context() as patch:
        # where the api-server's component is built (the name it calls), not the package's re-export
        patch.setattr(stack_components, "airflow_env", with_console_users)
        down(settings, out=lambda _m: None, only=["api-server"])
        start_components(settings, ["api-server"], out=lambda _m: None)
    passwords = {**json.loads(stack_module.passwords_file(settings).read_text()), **passwords}
    folder = tmp_path_factory.mktemp("console") / "in"
    expected = write_batch(folder, 10, bad=True, start=900)
    result = pipeline_env.run_batch(batch_conf(pipeline_env, folder, BATCH_ID), "Approve")
    assert result.returncode == 0, result.stdout[-4000:]
    archived = pipeline_env.stack.run_dag("archive_batch", {"batch_id": BATCH_ID})
    assert archived.returncode == 0, archived.stdout[-3000:] + archived.stderr[-3000:]
    yield ConsoleEnv(pipeline_env, local_url(settings.airflow_port), passwords, expected)
