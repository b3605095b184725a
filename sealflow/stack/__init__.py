"""The embedded SealFlow stack for one machine: SeaweedFS (S3 with Object Lock), an Airflow home
(SQLite, LocalExecutor), the national-platform simulator, the time-stamp authority and the identity
registers' simulator (身份核验) — all bound to 127.0.0.1.

Identity checks: :func:`with_stack_identity` points a stack's settings at its identity simulator;
the Airflow environment, the CLI's registry and the demo use it, so applying for and using a seal
are checked over real HTTP on the stack as in production. A non-embedded install (one that names
its object store) gets no simulator: ``up`` refuses to start it without ``SEALFLOW_IDENTITY_URL``.

``sealflow stack up|down|status`` drives it; ``make demo`` and the tests use it. Each process we
start writes a PID file in ``state_dir/run/`` recording its PID and creation time, so a second
``up`` sees live processes and does nothing, and ``down`` signals exactly the processes it
started (and their children) — never anything found by name. Logs go to ``state_dir/logs/``.

One module per seam; this package re-exports their public names, so ``from sealflow.stack import
up, down, status, …`` is the way in:

======================  ====================================================================
``paths``               folders, component names, the child environment, the stack's errors
``ports``               ports Linux's ephemeral range could take, refused before anything starts
``processes``           PID files, start with a health check, stop exactly what we started
``orphans``             leftovers of crashed components, the reaper of throw-away stacks
``components``          what each component runs, on which port, with which health check
``airflow_home``        Airflow's environment, secrets, users, metadata DB, connections, ``dag.test()``
``lifecycle``           ``up``, ``down``, ``status``, ``init_services``, ``start_components``
``layout``              the distributed layout declared once (services, executor, broker, DBs, shares)
``cluster``             that layout on loopback: the stack's plan, Airflow env, worker homes
``cluster_stores``      its PostgreSQL databases and Redis keys (made, checked, purged)
``cluster_components``  its processes: the SeaweedFS cluster, Airflow on Celery, two workers
======================  ====================================================================

Decision: a package of small modules that import downwards only (paths → processes → orphans;
airflow_home → components → cluster → cluster_stores, cluster_components → lifecycle), so each can
be read and tested on its own. Code that replaces a function for a test patches it where it is used
(e.g. ``components.airflow_env``), not here.
"""

from __future__ import annotations

from kernel.objectstore import CHECKSUM_ENV, ensure_buckets, ensure_replica_bucket, replica_client, s3_client
from kernel.settings import Settings, check_state
from sealflow.root import stack_identity_url, with_stack_identity
from sealflow.stack.airflow_home import (
    airflow_env,
    airflow_login,
    airflow_users,
    connection_specs,
    dag_file,
    passwords_file,
    prepare_airflow,
    run_dag_test,
)
from sealflow.stack.components import (
    API_SERVER_STARTUP_S,
    airflow_components,
    http_ok,
    identity_component,
    platform_component,
    replica_component,
    replica_ready,
    s3_ready,
    seaweed_component,
    sender_trust,
    tsa_component,
)
from sealflow.stack.lifecycle import (
    down,
    ensure_component,
    ensure_identity,
    init_services,
    prepare_distributed,
    start_components,
    status,
    up,
)
from sealflow.stack.orphans import (
    Member,
    describe,
    leftovers,
    prune_sessions,
    reap_leftovers,
    spawn_reaper,
    stack_processes,
    stop_processes,
)
from sealflow.stack.paths import (
    ADMIN_USER,
    AIRFLOW_COMPONENTS,
    CHILDREN,
    DAGS_DIR,
    DEMO_KEEPER,
    PLATFORM_CONN_ID,
    PLUGINS_DIR,
    REPLICA,
    REPO_ROOT,
    S3_CONN_ID,
    SERVICE_COMPONENTS,
    IdentityNotConfigured,
    StackError,
    embedded_replica,
    logs_dir,
    platform_db,
    require_identity_source,
    run_dir,
    sealflow_env,
    seaweed_dir,
    venv_bin,
    write_private,
)
from sealflow.stack.ports import (
    EPHEMERAL_RANGE_FILE,
    REPLICA_PORT_FIELDS,
    SEAWEED_GRPC_OFFSET,
    SEAWEED_PORT_FIELDS,
    check_ports,
    ephemeral_range,
    port_problems,
)
from sealflow.stack.processes import (
    STACK_TAG_VAR,
    Component,
    Running,
    alive,
    launch,
    log_tail,
    pid_file,
    process_of,
    read_pid,
    read_sessions,
    record_session,
    sessions_file,
    stack_lock,
    stack_tag,
    stop_entries,
)

__all__ = [
    "ADMIN_USER", "AIRFLOW_COMPONENTS", "API_SERVER_STARTUP_S", "CHECKSUM_ENV", "CHILDREN", "DAGS_DIR", "DEMO_KEEPER",
    "EPHEMERAL_RANGE_FILE", "PLATFORM_CONN_ID", "PLUGINS_DIR", "REPLICA", "REPLICA_PORT_FIELDS", "REPO_ROOT",
    "S3_CONN_ID", "SEAWEED_GRPC_OFFSET", "SEAWEED_PORT_FIELDS", "SERVICE_COMPONENTS", "STACK_TAG_VAR", "Component",
    "IdentityNotConfigured", "Member", "Running", "Settings", "StackError", "airflow_components", "airflow_env",
    "airflow_login", "airflow_users", "alive", "check_ports", "check_state", "connection_specs", "dag_file",
    "describe", "down", "embedded_replica", "ensure_buckets", "ensure_component", "ensure_identity",
    "ensure_replica_bucket", "ephemeral_range", "http_ok", "identity_component", "init_services", "launch",
    "leftovers", "log_tail", "logs_dir", "passwords_file", "pid_file", "platform_component",
    "platform_db", "port_problems", "prepare_airflow", "prepare_distributed",
    "process_of", "prune_sessions", "read_pid", "read_sessions",
    "reap_leftovers", "record_session", "replica_client", "replica_component", "replica_ready",
    "require_identity_source", "run_dag_test", "run_dir", "s3_client", "s3_ready", "sealflow_env",
    "seaweed_component", "seaweed_dir", "sender_trust", "sessions_file", "spawn_reaper", "stack_identity_url",
    "stack_lock", "stack_processes", "stack_tag", "start_components", "status", "stop_entries", "stop_processes",
    "tsa_component", "up", "venv_bin", "with_stack_identity", "write_private",
]
