"""The pipeline on the real embedded stack: SeaweedFS, an Airflow home with its api-server (where
keepers answer 用章审批), the demo registry with its seals enrolled for batch use."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kernel.db import make_engine, migrate, session_factory
from kernel.settings import local_url
from sealflow.airflow_api import AirflowApi
from sealflow.batch_runner import last_code, serve_sample_issuer
from sealflow.root import with_stack_identity
from sealflow.stack import DAGS_DIR, airflow_login, start_components
from stamping.batch.seals import BatchSeals
from stamping.registry.demo import KEEPER, bootstrap_demo
from stamping.registry.service import SealRegistry
from tests.stack_fixtures import EmbeddedStack


@dataclass
class PipelineEnv:
    stack: EmbeddedStack
    sessions: Any
    seals: BatchSeals
    es_id: str
    personal_es_id: str
    api: AirflowApi

    @property
    def settings(self):
        return self.stack.settings

    keeper_api: AirflowApi  # logged in as the seal's keeper: 用章审批 is assigned to them alone

    def last_code(self, batch_id: str) -> str:
        code = last_code(self.settings, KEEPER, batch_id)
        assert code, f"no one-time code was texted to the keeper for batch {batch_id}"
        return code

    def run_batch(self, conf: dict[str, Any], answer: str | None, code: str | None = None,
                  timeout: float = 600, before: Any = None, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
        """``dag.test()`` of stamp_batch while the keeper answers its approval through the REST API.

        ``before(pending)`` runs first (e.g. wrong answers); ``answer=None`` answers nothing (the run is
        expected to end before asking); ``env`` adds to the stack's Airflow environment."""
        proc = subprocess.Popen([sys.executable, "-c", dag_test_script("stamp_batch", conf)],
                                env={**self.stack.airflow_env(), **(env or {})}, cwd=self.settings.airflow_home,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + timeout
            while answer is not None and not (pending := self.api.pending_approvals("stamp_batch", "~")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
                    raise AssertionError(f"stamp_batch never asked for approval:\n{out[-4000:]}")
                time.sleep(0.5)
            if answer is not None:
                if before is not None:
                    before(pending[0])
                self.keeper_api.answer(pending[0], answer,
                                       {"code": code if code is not None else self.last_code(conf["batch_id"])})
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def dag_test_script(dag_id: str, conf: dict[str, Any]) -> str:
    return (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_DIR)!r})\n"
        f"run = bag.dags[{dag_id!r}].test(run_conf=json.loads({json.dumps(json.dumps(conf))}))\n"
        "state = str(getattr(run.state, 'value', run.state))\n"
        "print(json.dumps({'run_id': run.run_id, 'state': state}))\n"
        "sys.exit(0 if state == 'success' else 1)\n"
    )


@pytest.fixture(scope="session")
def pipeline_env(embedded_stack: EmbeddedStack) -> Iterator[PipelineEnv]:
    settings = embedded_stack.settings
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sessions = session_factory(engine)
    # Applying and enrolling check the demo's people against the stack's identity simulator (bootstrap_demo
    # registers them there first), as the pipeline's tasks do.
    registry = SealRegistry(sessions, with_stack_identity(settings))
    demo = bootstrap_demo(registry, official_pin="official-246810", personal_pin="personal-135790")
    seals = BatchSeals(settings, sessions, registry)
    # The stack is shared by the session: an earlier test's prepare_demo_seal may have made and enrolled the
    # demo seals already (with PINs of its own); enrol only a seal made here.
    if not seals.is_enrolled(demo["es_ids"]["official"]):
        seals.enrol(demo["es_ids"]["official"], "official-246810", KEEPER)
    serve_sample_issuer(sessions, seals, demo["es_ids"]["official"])
    start_components(settings, ["api-server"], out=lambda _m: None)
    base = local_url(settings.airflow_port)
    api = AirflowApi(base, *airflow_login(settings))
    keeper_api = AirflowApi(base, *airflow_login(settings, KEEPER))
    yield PipelineEnv(embedded_stack, sessions, seals, demo["es_ids"]["official"], demo["es_ids"]["personal"], api,
                      keeper_api)
    keeper_api.close()
    api.close()
    engine.dispose()


def batch_conf(env: PipelineEnv, folder: Path, batch_id: str, **extra: Any) -> dict[str, Any]:
    return {"batch_location": str(folder), "es_id": env.es_id, "placement": "anchor:（盖章）",
            "requester": "applicant", "batch_id": batch_id, "pdf_container": "pkcs7", **extra}
