"""stamp_batch's trigger form as Airflow's UI gets it: the Params of the parsed DAG file, their JSON
schema checked the way the form checks a field (an empty field is sent as null), and Airflow's own
validation of a run's conf. No stack needed: the DAG file is parsed in a fresh process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from sealflow.stack import DAGS_DIR, PLUGINS_DIR

PARSE = f"""
import copy, json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.param import ParamsDict
bag = DagBag(dag_folder={str(DAGS_DIR / "stamp_batch.py")!r})
dag = bag.dags["stamp_batch"]
params = {{name: dag.params.get_param(name).dump() for name in dag.params}}
checked = {{}}
for label, conf in json.loads(sys.argv[1]).items():
    try:
        merged = ParamsDict(copy.deepcopy(dag.params))  # resolve() keeps a value: a fresh copy each
        merged.update(conf)
        merged.validate()
        checked[label] = "valid"
    except Exception as exc:
        checked[label] = f"{{type(exc).__name__}}: {{exc}}"
print(json.dumps({{"errors": {{k: str(v) for k, v in bag.import_errors.items()}}, "params": params,
                  "checked": checked}}, ensure_ascii=False))
"""
OFFICIAL = "450000000000000001"
PERSONAL = "450000000000000002"


def _parse(home: Path, confs: dict[str, dict] | None = None, **env: str) -> dict:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("SEALFLOW_", "AIRFLOW_"))}
    run_env.update({"SEALFLOW_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow"),
                    "PYTHONPATH": str(PLUGINS_DIR), "AIRFLOW__CORE__LOAD_EXAMPLES": "false", **env})
    done = subprocess.run([sys.executable, "-c", PARSE, json.dumps(confs or {})], env=run_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    return result


def _enrol(home: Path, es_id: str, keeper: str) -> None:
    custody = home / "custody"
    custody.mkdir(parents=True, exist_ok=True)
    name = base64.urlsafe_b64encode(es_id.encode()).decode()
    (custody / f"{name}.json").write_text(json.dumps({"es_id": es_id, "keeper": keeper, "pin": "(sealed)"}))


def _form_accepts(schema: dict, value: object) -> bool:
    try:
        jsonschema.validate(value, schema)
        return True
    except jsonschema.ValidationError:
        return False


@pytest.fixture(scope="module")
def form(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("home")
    _enrol(home, OFFICIAL, "keeper")
    _enrol(home, PERSONAL, "zhang")
    minimal = {"batch_location": "/data/batch-1", "es_id": OFFICIAL, "requester": "applicant"}
    return _parse(home, {
        "only what is needed": minimal,
        "optional fields left empty": {**minimal, "batch_id": None, "placement": None},
        "a seal enrolled after the parse": {**minimal, "es_id": "450000000000000999"},
        "a seal that is no esID": {**minimal, "es_id": "official seal"},
        "no folder": {"es_id": OFFICIAL, "requester": "applicant"},
    })


def test_only_the_folder_and_the_requester_must_be_filled_in(form: dict) -> None:
    """The form opens with each field's default; a field whose default its schema refuses keeps
    Trigger disabled until it is filled in. The seal is filled in with the first enrolled seal."""
    must_fill = {name for name, p in form["params"].items() if not _form_accepts(p["schema"], p["value"])}
    assert must_fill == {"batch_location", "requester"}
    may_stay_empty = {name for name, p in form["params"].items() if _form_accepts(p["schema"], None)}
    assert may_stay_empty == {"batch_id", "placement"}


def test_an_empty_batch_id_does_not_block_the_trigger(form: dict) -> None:
    batch_id = form["params"]["batch_id"]
    assert batch_id["value"] is None and "optional" in batch_id["schema"]["title"]
    assert _form_accepts(batch_id["schema"], None) and _form_accepts(batch_id["schema"], "office-2026-11")
    assert form["checked"]["only what is needed"] == "valid"
    assert form["checked"]["optional fields left empty"] == "valid"
    assert form["checked"]["no folder"] != "valid"


def test_the_seal_is_chosen_from_the_seals_enrolled_for_batch_use(form: dict) -> None:
    seal = form["params"]["es_id"]["schema"]
    assert sorted(seal["examples"]) == [OFFICIAL, PERSONAL]
    assert seal["values_display"][OFFICIAL].endswith(f"{OFFICIAL} · keeper keeper")
    assert form["checked"]["a seal that is no esID"] != "valid"
    # A list, not an enum: the API server checks against the DAG as last parsed, and a seal
    # enrolled since must not be refused there (ingest checks the seal with the registry).
    assert form["checked"]["a seal enrolled after the parse"] == "valid"


def test_the_form_parses_with_a_typed_seal_when_nothing_is_enrolled_or_the_registry_is_down(tmp_path: Path) -> None:
    result = _parse(tmp_path / "fresh")
    seal = result["params"]["es_id"]["schema"]
    assert "examples" not in seal and seal["pattern"] == r"^[0-9]{18}$"
    assert not (tmp_path / "fresh" / "sealflow.db").exists()  # parsing never creates a database
    _enrol(tmp_path / "down", OFFICIAL, "keeper")
    result = _parse(tmp_path / "down", SEALFLOW_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    assert result["params"]["es_id"]["schema"]["examples"] == [OFFICIAL]


def test_a_run_named_batch__name_is_batch_name() -> None:
    from tests.pipeline.plugins_path import PLUGINS

    sys.path.insert(0, str(PLUGINS))
    from sealflow_airflow.pipeline import _batch_id

    assert _batch_id({"batch_id": None}, "batch__office-2026-11") == "office-2026-11"
    assert _batch_id({}, "manual__2026-11-28T13:30:00+00:00_AbC") == "manual__2026-11-28T13-30-00-00-00_AbC"
    assert _batch_id({"batch_id": "given"}, "batch__other") == "given"


def test_every_placement_the_form_describes_is_accepted(form: dict) -> None:
    """The form's help for the placement rule is what an office types: each alternative, its
    placeholders filled in, is a rule the batch accepts (it once said ``cross-page``, refused)."""
    from stamping.placement import Placement

    described = form["params"]["placement"]["description"].split(" (", 1)[0]
    alternatives = [alt.strip() for alt in described.split("|")]
    assert len(alternatives) == 3 and alternatives[2].startswith("cross")
    for alternative in alternatives:
        filled = alternative.replace("TEXT", "（盖章）").replace("=N", "=0").replace("MM", "10")
        for typed in (filled.replace("[", "").replace("]", ""), filled.split("[", 1)[0]):
            Placement.parse(typed)  # raises PlacementError for a rule the batch would refuse
