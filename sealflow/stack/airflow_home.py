"""The stack's Airflow home: its secrets and users, the environment every Airflow process runs
with, the metadata database and connections, and running one DAG with ``dag.test()``.

Decisions:

* **One environment for every Airflow process** (:func:`airflow_env`): components, the CLI and
  ``dag.test()`` see exactly the home of ``settings``; inherited ``AIRFLOW_*``/``SEALFLOW_*``
  variables are replaced, and tasks check identities against the stack's register.
* **Secrets made once, 0600**: the JWT and API secrets and the Fernet key, and a generated password
  per user of the auth manager (``layout.AUTH_MANAGER``: the registry's people by role, :func:`airflow_users`).
* **What every stack shares with compose comes from the layout** (``layout.AIRFLOW_COMMON_SETTINGS``,
  ``AIRFLOW_FROM_SETTINGS``); what is set here is this machine's (paths, ports, the executor, SQLite).
* **Prepared once per Airflow version and connection set** (:func:`prepare_airflow`): a marker
  with their fingerprint makes a second ``up`` skip ``airflow db migrate``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kernel.objectstore import CHECKSUM_ENV
from kernel.settings import Settings, local_url
from sealflow.root import with_stack_identity
from sealflow.stack import layout
from sealflow.stack.paths import (
    ADMIN_USER,
    DAGS_DIR,
    PLATFORM_CONN_ID,
    PLUGINS_DIR,
    S3_CONN_ID,
    StackError,
    logs_dir,
    sealflow_env,
    venv_bin,
    write_private,
)
from sealflow.stack.processes import log_tail


def _secrets_file(settings: Settings) -> Path:
    return settings.airflow_home / "sealflow-secrets.json"


def passwords_file(settings: Settings) -> Path:
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def _airflow_secrets(settings: Settings) -> dict[str, str]:
    """JWT and API secrets shared by every Airflow component, and the Fernet key; made once."""
    path = _secrets_file(settings)
    if path.exists():
        return json.loads(path.read_text())
    import base64

    values = {
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    write_private(path, json.dumps(values))
    return values


def airflow_users(settings: Settings) -> list[tuple[str, str]]:
    """The SimpleAuthManager's users: the stack administrator and the registry's people by role
    (sealflow.airflow_users), each with a generated password in the 0600 passwords file."""
    from sealflow.airflow_users import ensure_passwords, registry_users, simple_auth_users

    users = simple_auth_users(registry_users(settings), ADMIN_USER)
    ensure_passwords(passwords_file(settings), [name for name, _ in users], write_private)
    return users


def airflow_login(settings: Settings, user: str = ADMIN_USER) -> tuple[str, str]:
    """The local UI/API login (user, password) of the simple auth manager; made on first use.
    ``user`` other than the administrator logs in only if the registry made them an Airflow user."""
    from sealflow.airflow_users import ensure_passwords

    passwords = ensure_passwords(passwords_file(settings), [user], write_private)
    return user, passwords[user]


def auth_users(settings: Settings) -> str:
    """The auth manager's users as its setting holds them (``name:role,...``), each with a password in the
    passwords file — what ``sealflow stack airflow-users`` (``layout.AUTH_USERS_COMMAND``) prints."""
    return ",".join(f"{name}:{role}" for name, role in airflow_users(settings))


def auth_env(settings: Settings) -> dict[str, str]:
    """What the API server needs to sign people in (``layout.AUTH_SERVICE``): the users and their passwords file."""
    return {layout.AUTH_USERS_SETTING: auth_users(settings),
            layout.AUTH_PASSWORDS_SETTING: str(passwords_file(settings))}


def airflow_env(settings: Settings, base: Mapping[str, str] | None = None, *, sign_in: bool = True
                ) -> dict[str, str]:
    """The complete environment to run Airflow (CLI, components, ``dag.test()``) on this stack.

    ``base`` defaults to the current environment (for PATH, HOME...); any ``AIRFLOW__``/``SEALFLOW_``
    variables in it are replaced so the Airflow home is exactly the one of ``settings``. ``sign_in``: with
    the auth manager's users (:func:`auth_env`) — the embedded stack's one environment has them; on the
    distributed stack only the API server's does (``layout.AUTH_SERVICE``).
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "SEALFLOW_"))}
    home = settings.airflow_home
    api = local_url(settings.airflow_port)
    keys = _airflow_secrets(settings)
    env.update(sealflow_env(with_stack_identity(settings)))  # tasks check identities against the stack's register
    env.update(CHECKSUM_ENV)
    # The settings every stack shares with compose (sealflow/stack/layout.py says why each value).
    env.update(layout.AIRFLOW_COMMON_SETTINGS)
    env.update({key: str(getattr(settings, field)) for key, field in layout.AIRFLOW_FROM_SETTINGS.items()})
    if sign_in:
        env.update(auth_env(settings))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
            # Airflow's LocalExecutor minus the race that failed a task resumed right after parking
            # (an approval answered at once): see plugins/sealflow_airflow/executor.py.
            "AIRFLOW__CORE__EXECUTOR": "sealflow_airflow.executor.LocalExecutor",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            # SQLite's default 5 s lock wait, on purpose: with 60 s the API server's own threads waited on each
            # other's write lock for a minute and a trigger request failed (seen in bench-e2e 10,000).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.airflow_port),
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # Its health server would take port 8974 on this machine for every stack (compose asks it).
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        }
    )
    # Components spawn `airflow ...` themselves; DAG files import the Airflow glue in plugins/.
    env["PATH"] = os.pathsep.join([str(venv_bin()), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH", "")) if p)
    return env


_CONNECTIONS_SCRIPT = r"""
import json, sys
from airflow.models import Connection
from airflow.utils.session import create_session
wanted = json.load(sys.stdin)
with create_session() as session:
    for spec in wanted:
        conn = session.query(Connection).filter(Connection.conn_id == spec["conn_id"]).one_or_none()
        if conn is None:
            session.add(Connection(**spec))
            print("created connection", spec["conn_id"])
            continue
        for key, value in spec.items():
            if key != "conn_id":
                setattr(conn, key, value)
        print("updated connection", spec["conn_id"])
"""


def connection_specs(settings: Settings) -> list[dict[str, Any]]:
    """The Airflow connections of the stack: the object store and the national platform."""
    from urllib.parse import urlsplit

    platform = urlsplit(settings.resolved_platform_url)
    return [
        {
            "conn_id": S3_CONN_ID,
            "conn_type": "aws",
            "description": "SealFlow object store (S3 API)",
            "login": settings.s3_access_key,
            "password": settings.s3_secret_key,
            "extra": json.dumps({"endpoint_url": settings.resolved_s3_endpoint, "region_name": settings.s3_region,
                                 "work_bucket": settings.work_bucket, "archive_bucket": settings.archive_bucket}),
        },
        {
            "conn_id": PLATFORM_CONN_ID,
            "conn_type": "http",
            "description": "National government-service platform (备案接口)",
            "host": platform.hostname or "127.0.0.1",
            "port": platform.port or (443 if platform.scheme == "https" else 80),
            "schema": platform.scheme or "http",
        },
    ]


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


def prepare_airflow(settings: Settings, out: Callable[[str], None] = print,
                    env: dict[str, str] | None = None) -> bool:
    """Make the Airflow home: ``airflow db migrate`` once, connections upserted. True if work was done.

    A marker records the Airflow version, the metadata database and the connections; when all are
    unchanged this is a no-op. ``env``: the Airflow environment (default :func:`airflow_env`; the
    distributed stack's puts the metadata on PostgreSQL).
    """
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    airflow_login(settings)
    specs = connection_specs(settings)
    env = env or airflow_env(settings)
    metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    fingerprint = hashlib.sha256(json.dumps([_airflow_version(), metadata, specs], sort_keys=True).encode()
                                 ).hexdigest()
    marker = home / ".sealflow-prepared"
    on_disk = not metadata.startswith("sqlite") or (home / "airflow.db").exists()
    if marker.exists() and marker.read_text().strip() == fingerprint and on_disk:
        return False
    log_path = logs_dir(settings) / "airflow-setup.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out(f"airflow: migrating the metadata database in {home} ...")
    with open(log_path, "ab") as log_file:
        for argv, stdin in (([str(venv_bin() / "airflow"), "db", "migrate"], None),
                            ([sys.executable, "-c", _CONNECTIONS_SCRIPT], json.dumps(specs).encode())):
            done = subprocess.run(argv, input=stdin, stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                  cwd=home, timeout=600, check=False)
            if done.returncode != 0:
                raise StackError(f"{' '.join(argv[:3])} failed (exit {done.returncode}); "
                                 f"log {log_path}:\n{log_tail(log_path)}")
    marker.write_text(fingerprint + "\n")
    out(f"airflow: home ready, connections {S3_CONN_ID} and {PLATFORM_CONN_ID} set")
    return True


def dag_file(dag_id: str) -> Path:
    """The file in ``dags/`` that names ``dag_id`` (parsing one file instead of all is seconds faster);
    the whole folder when no single file does."""
    quoted = (f'"{dag_id}"', f"'{dag_id}'", f"def {dag_id}(")
    matches = [path for path in sorted(DAGS_DIR.glob("*.py"))
               if any(q in path.read_text(encoding="utf-8", errors="replace") for q in quoted)]
    return matches[0] if len(matches) == 1 else DAGS_DIR


def run_dag_test(settings: Settings, dag_id: str, conf: dict[str, Any] | None = None,
                 timeout: float = 900) -> subprocess.CompletedProcess:
    """Run one DAG in-process with ``dag.test()`` in a subprocess with :func:`airflow_env`.

    The last stdout line is a JSON object ``{"dag_id", "run_id", "state"}``; exit code 0 only on success.
    """
    prepare_airflow(settings, out=lambda _msg: None)
    script = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(dag_file(dag_id))!r})\n"
        f"dag = bag.dags.get({dag_id!r})\n"
        "if dag is None:\n"
        "    print(json.dumps({'error': 'dag not found', 'import_errors': {k: str(v)[-2000:] for k, v in "
        "bag.import_errors.items()}}))\n"
        "    sys.exit(3)\n"
        f"run = dag.test(run_conf=json.loads({json.dumps(json.dumps(conf or {}))}))\n"
        "state = str(getattr(run.state, 'value', run.state))\n"
        "print(json.dumps({'dag_id': dag.dag_id, 'run_id': run.run_id, 'state': state}))\n"
        "sys.exit(0 if state == 'success' else 1)\n"
    )
    return subprocess.run([sys.executable, "-c", script], env=airflow_env(settings), cwd=settings.airflow_home,
                          capture_output=True, text=True, timeout=timeout, check=False)
