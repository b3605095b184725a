"""Import the Airflow glue (plugins/sealflow_airflow) in the test process, as Airflow would."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from kernel.settings import Settings, get_settings
from sealflow.stack import sealflow_env

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def pipeline_module(settings: Settings):
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))
    os.environ.update(sealflow_env(settings))
    get_settings.cache_clear()
    importlib.import_module("sealflow_airflow.root").reset()  # the composition root builds anew
    return importlib.import_module("sealflow_airflow.pipeline")
