"""Registers SealFlow with Airflow (the plugin manager loads every plugins/*.py it is not told to ignore).

The Airflow glue itself is the ``sealflow_airflow`` package next to this file; DAG files import it by
name. UI pages (a FastAPI app or external views) are added here — any FastAPI route must depend on
Airflow's auth dependencies, since plugin routes are not protected by default.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from sealflow_airflow.console import EXTERNAL_VIEWS, URL_PREFIX
from sealflow_airflow.console.app import app as console_app


def _answer_gate(app):
    from sealflow_airflow.answer_gate import AnswerGate

    return AnswerGate(app)


class SealFlowPlugin(AirflowPlugin):
    """SealFlow: electronic-seal batches (用章), verification (验章), archives and filing (备案)."""

    name = "sealflow"
    # 用章审批 answers are checked by SealFlow in the API server as they arrive (sealflow_airflow.answer_gate).
    fastapi_root_middlewares = [{"name": "sealflow-answer-gate",
                                 "middleware": _answer_gate, "args": [], "kwargs": {}}]
    # The SealFlow console (控制台): pages + JSON API under /sealflow, every route behind Airflow's login
    # and the person's SealFlow roles (sealflow_airflow/console/roles.py); menu entries in the UI's nav.
    fastapi_apps = [{"app": console_app, "url_prefix": URL_PREFIX, "name": "SealFlow 控制台 console"}]
    external_views = EXTERNAL_VIEWS
