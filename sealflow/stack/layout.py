"""The distributed layout, declared once: which services run, with which executor, broker,
databases, buckets and settings — what ``sealflow stack up --distributed`` starts on one machine
and what ``docker-compose.yml`` describes for several (``tests/foundation/test_compose.py``
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
"""

from __future__ import annotations

from dataclasses import dataclass


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

# Airflow settings every Airflow process of the layout runs with, the same value everywhere.
AIRFLOW_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": EXECUTOR,
    # Celery records which worker ran each task (celery_taskmeta.worker): the proof both did work.
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": '{"result_extended": true}',
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
}
# Settings whose value is per deployment (hosts, passwords, names) but which every Airflow process needs.
DEPLOYMENT_SETTINGS = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__OPERATORS__DEFAULT_QUEUE", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX",
    "SEALFLOW_DATABASE_URL", "SEALFLOW_S3_ACCESS_KEY", "SEALFLOW_S3_SECRET_KEY", *BUCKET_SETTINGS,
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
