"""The distributed layout, declared once: which services run, with which executor, broker,
databases, buckets and settings — what ``sealflow stack up --distributed`` starts on one machine
and what ``docker-compose.yml`` describes for several (``tests/foundation/test_compose_layout.py``
compares the two so they cannot drift).

Decisions:

* **Data, not code**: this module holds tables only; ``cluster`` turns them into processes and
  environments on loopback, compose spells them out for containers.
* **SeaweedFS as a cluster**: one master with ``-defaultReplication=001`` and two volume servers in
  the same data center and rack (001 = one more copy on another server of the same rack), a filer
  and the S3 gateway in front of it. The archive replica stays a separate single-process store
  (``weed mini``), as on the embedded stack: it stands for another site.
* **Airflow on Celery**: broker Redis, metadata and Celery results in one PostgreSQL database
  (``airflow``), the SealFlow registry in another (``sealflow``); the launcher names both per stack.
* **What a worker shares** (:data:`WORKER_SHARES`): only read-mostly configuration a multi-machine
  deployment must mount on every worker. A batch's files are not among them: they live in the work
  bucket (the data plane), so no task relies on a file another task left on a local disk.
* **Who signs in** (:data:`AUTH_MANAGER`): Airflow's SimpleAuthManager, on every stack and in compose,
  with the registry's people as its users — see the comment there for why not FAB.
* **Every environment setting is accounted for**: the same value everywhere (:data:`AIRFLOW_SETTINGS`,
  :data:`AIRFLOW_FROM_SETTINGS`), a value per deployment (:data:`DEPLOYMENT_SETTINGS`), or set by one side
  only, with the reason (:data:`COMPOSE_OWN_SETTINGS`, :data:`LAUNCHER_OWN_SETTINGS`).
  ``tests/foundation/test_compose_layout.py`` fails on any other difference between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from kernel.settings import Settings


@dataclass(frozen=True)
class Service:
    """One process of the layout: its launcher component name and its docker-compose service name."""

    component: str
    compose: str
    role: str


SEAWEED_MASTER = Service("weed-master", "seaweed-master", "SeaweedFS master (-defaultReplication=001)")
SEAWEED_VOLUMES = (Service("weed-volume-1", "seaweed-volume-1", "SeaweedFS volume server"),
                   Service("weed-volume-2", "seaweed-volume-2", "SeaweedFS volume server"))
SEAWEED_FILER = Service("weed-filer", "seaweed-filer", "SeaweedFS filer (the S3 gateway's metadata)")
SEAWEED_S3 = Service("weed-s3", "s3", "S3 gateway (work and archive buckets, Object Lock)")
SEAWEED_SERVICES = (SEAWEED_MASTER, *SEAWEED_VOLUMES, SEAWEED_FILER, SEAWEED_S3)
REPLICA_SERVICE = Service("seaweedfs-replica", "s3-replica", "archive replica (another site's S3)")
SIMULATORS = (Service("platform", "platform", "national-platform simulator"),
              Service("tsa", "tsa", "time-stamp authority"),
              Service("identity", "identity", "identity registers' simulator"))
AIRFLOW_SERVICES = (Service("api-server", "airflow-apiserver", "Airflow API server and UI"),
                    Service("scheduler", "airflow-scheduler", "Airflow scheduler"),
                    Service("dag-processor", "airflow-dag-processor", "Airflow DAG processor"),
                    Service("triggerer", "airflow-triggerer", "Airflow triggerer"))
WORKERS = (Service("worker-1", "airflow-worker-1", "Celery worker"),
           Service("worker-2", "airflow-worker-2", "Celery worker"))
SERVICES = (*SEAWEED_SERVICES, REPLICA_SERVICE, *SIMULATORS, *AIRFLOW_SERVICES, *WORKERS)

# Services only compose has: on this machine PostgreSQL and Redis are the machine's own, `up` itself
# does airflow-init's work and checks the secrets, and metrics export is a deployment's choice.
COMPOSE_ONLY = {
    "secrets-check": "`up` makes the secrets itself (0600 files in the state directory)",
    "postgres": "the machine's PostgreSQL (SEALFLOW_CLUSTER_PG_DSN)",
    "redis": "the machine's Redis (SEALFLOW_CLUSTER_REDIS_URL)",
    "statsd-exporter": "metrics export, a deployment's choice",
    "airflow-init": "`up` migrates the databases and makes the buckets",
}

EXECUTOR = "CeleryExecutor"
BROKER_SCHEME = "redis"
REPLICATION = "001"
DATA_CENTER = "dc1"
RACK = "rack1"
# The flags of each SeaweedFS server that make the layout (hosts, ports and folders are the deployment's).
# 512 MB volumes and 64 per server: each bucket is a collection that grows several volumes at once.
_VOLUME_FLAGS = {"dataCenter": DATA_CENTER, "rack": RACK, "max": "64"}
SEAWEED_FLAGS = {
    SEAWEED_MASTER.component: {"defaultReplication": REPLICATION, "volumeSizeLimitMB": "512"},
    **{volume.component: _VOLUME_FLAGS for volume in SEAWEED_VOLUMES},
    SEAWEED_FILER.component: {"defaultReplicaPlacement": REPLICATION},
    SEAWEED_S3.component: {"port.iceberg": "0", "port.lance": "0"},
}
# Database role -> what it holds. The launcher names them sf_<stack>_<role>; compose uses the role.
DATABASES = {"airflow": "Airflow's metadata and the Celery results", "sealflow": "the SealFlow registry"}
# Bucket setting -> its default (kernel.settings.Settings), made by `up` / `sealflow stack init`.
BUCKET_SETTINGS = {"SEALFLOW_WORK_BUCKET": "sealflow-work", "SEALFLOW_ARCHIVE_BUCKET": "sealflow-archive"}

# Who signs in to Airflow — the UI, the REST API (`sealflow batch submit|approve`), the console and the
# 用章审批 answer — on every stack and in compose. The person acting is the Airflow user named like the
# registry user (docs/identities.md): the approval is assigned to the keeper's user id = name
# (plugins/sealflow_airflow/approval.py) and the answer gate compares the auth manager's user id with
# it (answer_gate.py); the CLI logs in with the generated password of that name. All of that holds for
# the SimpleAuthManager (user id = user name) and for no other manager as the code stands: FAB's user
# id is a number, and FAB is neither a SealFlow dependency nor installed, so nothing here runs or tests
# it. Airflow calls this manager one for development; what that leaves open in production (plaintext
# passwords file, no rotation or lockout) and what a move to another manager takes: docs/identities.md.
AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Only the API server builds the auth manager (sign-in, tokens); every other process checks the tokens it
# signed with the shared JWT secret. So only it holds the users and their passwords file.
AUTH_SERVICE = AIRFLOW_SERVICES[0]
AUTH_USERS_SETTING = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
AUTH_PASSWORDS_SETTING = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
# Prints the users (``name:role,...``: the registry's people by role, sealflow/airflow_users.py) and makes
# a password for each new one in the passwords file: `up` does the same when it starts the API server,
# compose's API server runs it before it starts. People added later sign in after its restart.
AUTH_USERS_COMMAND = ("sealflow", "stack", "airflow-users")

# Airflow settings every Airflow process runs with, the same value on every stack (the embedded one too).
AIRFLOW_COMMON_SETTINGS = {
    "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # Airflow's default, said out loud: a new DAG waits until it is unpaused (`up`, an operator).
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    # A task's calls to the API server wait 60 s (not 5) for an answer: on a loaded machine a call that
    # timed out but landed (a task's start) is otherwise retried into a 409 and fails.
    "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
    # A live but busy scheduler marked itself dead after 30 s without a heartbeat and reset its own running
    # chunks, again and again, on a loaded machine.
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "120",
}
# Airflow settings whose value is a SealFlow setting (a kernel.settings.Settings field): the fault bounds of
# docs/distributed.md. A killed task supervisor or scheduler: its tasks are failed (and retried) after the
# heartbeat timeout, looked for every check interval; a restarted scheduler adopts a dead one's tasks within
# the orphan check; a queued task whose Celery message was lost (the broker restarted empty) is re-queued
# after the queued timeout. Compose passes each as ``${SEALFLOW_<FIELD>:-<default>}``: one knob, one name.
AIRFLOW_FROM_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "airflow_heartbeat_timeout_s",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "airflow_heartbeat_check_s",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "airflow_orphan_check_s",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "airflow_queued_timeout_s",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "airflow_heartbeat_check_s",
}
# Airflow settings every Airflow process of the layout runs with, the same value everywhere.
AIRFLOW_SETTINGS = {
    **AIRFLOW_COMMON_SETTINGS,
    "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
    # Celery records which worker ran each task (celery_taskmeta.worker): the proof both did work.
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": '{"result_extended": true}',
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
}
# Settings whose value is per deployment (hosts, passwords, names) but which every Airflow process needs.
DEPLOYMENT_SETTINGS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX",
    "SEALFLOW_DATABASE_URL", "SEALFLOW_S3_ACCESS_KEY", "SEALFLOW_S3_SECRET_KEY", *BUCKET_SETTINGS,
    "SEALFLOW_HOME", "SEALFLOW_IDENTITY_URL",
    "PYTHONPATH",  # DAG files import the Airflow glue (plugins/) by name
)
# Per worker, never shared: its own Airflow logs (and log-server port), scratch and SealFlow home.
WORKER_OWN_SETTINGS = ("AIRFLOW__LOGGING__BASE_LOG_FOLDER", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                       "SEALFLOW_HOME", "TMPDIR")


@dataclass(frozen=True)
class Share:
    """A folder of the stack's state that a worker's own SealFlow home links to (on several machines:
    mounts, read-only where ``read_only``), and why it must be shared."""

    name: str
    why: str
    read_only: bool = True


# The one place that says what a worker shares with the rest of the stack. Everything else in a
# worker's SealFlow home (scratch, alert ledger, anything a task writes) is its own.
WORKER_SHARES = (
    Share("keys", "the key store: seal, archive, filing, audit and backup keys (encrypted under the KEK)"),
    Share("custody", "keepers' custody records of batch seals (written when a keeper enrols a seal)"),
    Share("pins", "generated PINs of the system keys (made once by `up`)"),
    Share("ca", "the installation's CA certificates that tasks chain to"),
    Share("filing", "the pinned platform certificate"),
    Share("registry", "the demo registry's pins file"),
    Share("inbox", "where offices drop batches for stamp_inbox (production: an upload to the work bucket)"),
    Share("sms", "the local SMS gateway's outbox (production: an SMS gateway URL)", read_only=False),
)


@dataclass(frozen=True)
class SecretFile:
    """A secret every Airflow process reads from a file named by a setting: on this machine the stack's
    file (the ``Settings`` property ``resolved``), in compose the secret ``compose`` (/run/secrets/...)."""

    setting: str
    resolved: str
    compose: str


SECRET_FILES = (
    SecretFile("SEALFLOW_KEK_FILE", "resolved_kek_file", "sealflow_kek"),
    # The API server's answer gate checks the codes the workers' tasks issued: one key for all.
    SecretFile("SEALFLOW_APPROVAL_MAC_KEY_FILE", "resolved_approval_mac_key_file", "approval_mac_key"),
)
# The S3 gateway's credentials file (`weed s3 -config`): a compose secret, a 0600 file of the stack here.
S3_CONFIG_SECRET = "s3_config"

# Settings compose sets and the launcher does not, or sets otherwise — and why. Any other difference
# between the two environments fails tests/foundation/test_compose_layout.py.
_STATSD = "Airflow's metrics to the statsd-exporter service: metrics export is a deployment's choice (COMPOSE_ONLY)"
_BY_URL = ("a server by its service's URL; `up` runs it on this machine and reaches it by the plan's port "
           "(the SEALFLOW_*_PORT settings)")
_CONNECTION = ("a connection from the environment; `up` stores the same connection in the metadata database "
               "(airflow_home.connection_specs, compared by the test)")
COMPOSE_OWN_SETTINGS = {
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "compose's scheduler healthcheck asks it (port 8974); on one machine "
                                               "two stacks' schedulers would take the same port (`status` checks "
                                               "the process instead)",
    "AIRFLOW__METRICS__STATSD_ON": _STATSD, "AIRFLOW__METRICS__STATSD_HOST": _STATSD,
    "AIRFLOW__METRICS__STATSD_PORT": _STATSD, "AIRFLOW__METRICS__STATSD_PREFIX": _STATSD,
    "AIRFLOW_CONN_SEALFLOW_S3": _CONNECTION, "AIRFLOW_CONN_SEALFLOW_PLATFORM": _CONNECTION,
    "SEALFLOW_S3_ENDPOINT": _BY_URL, "SEALFLOW_REPLICA_S3_ENDPOINT": _BY_URL, "SEALFLOW_PLATFORM_URL": _BY_URL,
    "SEALFLOW_TSA_URL": _BY_URL,
    **{secret.setting: "the launcher gives the secret files' paths to its workers (their home is their own); its "
                       "other processes find them in the stack's state (Settings.resolved_*)"
       for secret in SECRET_FILES},
    "SEALFLOW_FILING_KEY_PIN": "the operator's PIN of the filing key from .env; `up` generates one (pins/)",
    "DUMB_INIT_SETSID": "the official image's init: a Celery worker's warm shutdown",
}
# Settings the launcher sets and compose does not — and why.
_IMAGE_HOME = "compose runs the image's /opt/airflow, with dags/, plugins/ and logs/ mounted there"
LAUNCHER_OWN_SETTINGS = {
    "AIRFLOW_HOME": _IMAGE_HOME, "AIRFLOW__CORE__DAGS_FOLDER": _IMAGE_HOME,
    "AIRFLOW__CORE__PLUGINS_FOLDER": _IMAGE_HOME, "AIRFLOW__LOGGING__BASE_LOG_FOLDER": _IMAGE_HOME,
    "AIRFLOW__API__BASE_URL": "the API server on 127.0.0.1 and the plan's port; compose: the image's 0.0.0.0:8080",
    "AIRFLOW__API__HOST": "the API server on 127.0.0.1 and the plan's port; compose: the image's 0.0.0.0:8080",
    "AIRFLOW__API__PORT": "the API server on 127.0.0.1 and the plan's port; compose: the image's 0.0.0.0:8080",
    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": "one machine: a port of the plan per worker; compose: 8793 in each "
                                                "container",
    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": "one machine: a port of the plan; compose: 8794 in its container",
    "AWS_REQUEST_CHECKSUM_CALCULATION": "compose: the image's ENV (Dockerfile, compared by the test)",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "compose: the image's ENV (Dockerfile, compared by the test)",
    "PATH": "the launcher's virtual environment; compose: the image's",
    "SEALFLOW_CLUSTER_PG_DSN": "where the launcher makes its databases; compose has its own postgres service",
    "SEALFLOW_CLUSTER_REDIS_URL": "the launcher's broker; compose has its own redis service",
    "SEALFLOW_KEK": "a KEK given inline (tests); compose takes it from the secret file only (SEALFLOW_KEK_FILE)",
    **{f"SEALFLOW_{f.name.upper()}": "a port of a server of this machine; compose names each server by its service"
       for f in fields(Settings) if f.name.endswith("_port")},
}
