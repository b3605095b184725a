"""The trigger form of ``stamp_batch``: Airflow Params a records office fills in the UI.

Decisions:

* Only what a batch needs is required: the batch folder, the seal and the requester. Every
  optional field accepts ``null`` as well as text, because Airflow's form sends an empty field
  as ``null`` and validates the Params' JSON schema before it enables "Trigger": a ``"string"``
  field that was left empty kept the button disabled without a word.
* The seal is chosen from the seals enrolled for batch use (批量用章), read when the DAG file
  is parsed: ``examples`` (the form's drop-down list) of esIDs with ``values_display`` naming
  each seal and its keeper. Not an ``enum``: the API server validates a run's conf against the
  DAG as last parsed, so a seal enrolled seconds ago (``sealflow batch enrol`` then ``submit``)
  would be refused until the next parse; ingest checks the seal against the registry anyway. The
  list comes from the custody folder (one file per enrolled seal, readable without the
  database); the seals' names come from the registry when it answers within seconds. When
  nothing can be read (no home yet, no seal enrolled, registry down) the field falls back to
  an 18-digit esID typed by hand, so the DAG always parses; ingest checks the seal either way.
* The batch is named by the run: Airflow 3.3 makes a run id before the conf is looked at
  (``TriggerDAGRunPostBody.validate_context`` → ``timetable.generate_run_id(run_type, run_after,
  data_interval)``, no conf), so a batch id typed in the form cannot rename the run. The form
  therefore tells the office to name the batch in "Run ID" (advanced options); with "Batch id"
  left empty the batch takes the run's name (``batch__X`` → ``X``), so the run list finds it.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from sqlalchemy import create_engine, select

from kernel.settings import Settings
from stamping.registry.models import Seal

log = logging.getLogger(__name__)

ES_ID_PATTERN = r"^[0-9]{18}$"


def enrolled_seals(settings: Settings) -> dict[str, str]:
    """esID → label (``name · esID · keeper``) of every seal enrolled for batch use; {} when none."""
    custody = settings.state_dir / "custody"
    seals: dict[str, str] = {}
    try:
        files = sorted(custody.glob("*.json"))
    except OSError:
        return {}
    for path in files:
        try:
            es_id = base64.urlsafe_b64decode(path.stem.encode()).decode()
            keeper = str(json.loads(path.read_text(encoding="utf-8")).get("keeper", ""))
        except (OSError, ValueError):
            continue  # an unreadable custody file is not offered; ingest would refuse it anyway
        seals[es_id] = f"{es_id} · keeper {keeper}" if keeper else es_id
    names = _seal_names(settings, list(seals))
    return {es_id: f"{names[es_id]} · {label}" if es_id in names else label for es_id, label in seals.items()}


def _seal_names(settings: Settings, es_ids: list[str]) -> dict[str, str]:
    """The registry's names of the seals, or {} when the registry cannot answer at once."""
    if not es_ids:
        return {}
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return {}  # never create a database while parsing a DAG file
    try:
        args = {"timeout": 3} if url.startswith("sqlite") else {"connect_timeout": 3}
        engine = create_engine(url, connect_args=args)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(Seal.es_id, Seal.name).where(Seal.es_id.in_(es_ids))).all()
        finally:
            engine.dispose()
        return {es_id: name for es_id, name in rows}
    except Exception as exc:  # the form must parse whatever the registry's state
        log.warning("seal names not read for the trigger form (%s); esIDs are shown alone", type(exc).__name__)
        return {}


def seal_param_schema(seals: dict[str, str]) -> dict:
    """The Param keyword arguments of the seal field: a list of enrolled seals, or a typed esID."""
    if seals:
        first = next(iter(seals))
        return {"default": first, "type": "string", "pattern": ES_ID_PATTERN, "examples": list(seals),
                "values_display": seals, "title": "Seal (印章)",
                "description": "A seal enrolled for batch use; its keeper approves the batch with a one-time code."}
    return {"default": None, "type": "string", "pattern": ES_ID_PATTERN, "title": "Seal (印章编码 esID)",
            "description": "No seal is enrolled for batch use yet (sealflow batch enrol ES_ID --keeper NAME); "
                           "type the 18-digit esID of an enrolled seal."}


def stamp_batch_params(settings: Settings) -> dict:
    """The Params of stamp_batch's trigger form (keyword arguments of ``airflow.sdk.Param``)."""
    return {
        "batch_location": {"default": None, "type": "string", "minLength": 1,
                           "title": "Batch folder or s3://bucket/prefix",
                           "description": "Folder (or S3 prefix) holding the PDF/OFD files and manifest.csv/json"},
        "es_id": seal_param_schema(enrolled_seals(settings)),
        "requester": {"default": None, "type": "string", "minLength": 1, "title": "Requested by (用章申请人)",
                      "description": "Your user name in the seal registry: it must be allowed to request this seal."},
        "placement": {"default": "anchor:（盖章）", "type": ["null", "string"], "title": "Placement rule",
                      "description": "anchor:TEXT[,dx=MM,dy=MM] | page=N,x=MM,y=MM | cross[,y=MM] "
                                     "(骑缝章; empty: anchor:（盖章）)"},
        "pdf_container": {"default": "pkcs7", "type": "string", "enum": ["pkcs7", "gbt35275"],
                          "title": "PDF signature container"},
        "batch_id": {"default": None, "type": ["null", "string"], "maxLength": 64,
                     "title": "Batch id (optional)",
                     "description": "Leave empty: the batch is named after the run. To choose the name, set "
                                    "Run ID under Advanced options to batch__NAME; the run list then finds it."},
    }
