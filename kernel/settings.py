"""One settings object for SealFlow, read once from ``SEALFLOW_*`` environment variables.

No other module reads the environment: callers get a :class:`Settings` and pass it down.
Inside Airflow, hooks in ``plugins/`` may override the external endpoints from connections.

It also holds the permission rules of the state at rest (:func:`check_state`): the state directory
is 0700, and the databases and every secret file in it (KEK, key store, CA, PIN files, Airflow
secrets, the simulator's key, SMS codes) are 0600 — checked at start and refused otherwise, with the
``chmod`` that fixes it. Decision: refuse rather than repair silently, because an open file may
already have been read; the operator decides (rotate the secret, then chmod).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

DEFAULT_SM2_UID = "1234567812345678"


def _as_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


# The resolved_* properties below follow two rules, kept here once so each property stays one readable
# line (a table of fields would hide which setting falls back to what): an endpoint left "" is the
# embedded stack's server on this machine, and a file or folder left "" sits in the state directory.

def local_url(port: int, path: str = "") -> str:
    """The address of a server of this machine's embedded stack (or a test's) on 127.0.0.1:``port`` —
    the one place such an address is written, for the settings, the shell, benchmarks and tests."""
    return f"http://127.0.0.1:{port}{path}"


def _configured_or_local(url: str, port: int, path: str = "") -> str:
    """``url`` when one is configured, else the embedded stack's server on 127.0.0.1:``port``."""
    return url or local_url(port, path)


def _configured_or_state(configured: str, default: Path) -> Path:
    """``configured`` as a path when set, else ``default`` (a place in the state directory)."""
    return Path(configured) if configured else default


@dataclass(frozen=True)
class Settings:
    """Every knob of SealFlow. Environment variable = ``SEALFLOW_`` + upper-case field name."""

    home: Path = Path("var")
    database_url: str = ""
    # Embedded SeaweedFS (weed mini) ports; gRPC ports are these + 10000.
    s3_port: int = 18333
    master_port: int = 19333
    filer_port: int = 18888
    volume_port: int = 18080
    # weed mini always runs its admin server (even with the UI off); pin its port so stacks don't clash.
    seaweed_admin_port: int = 18646
    s3_endpoint: str = ""
    s3_access_key: str = "sealflow"
    s3_secret_key: str = "sealflow-secret"
    s3_region: str = "us-east-1"
    archive_bucket: str = "sealflow-archive"
    # Archive replica (异地备份副本): every archived object is also written, with the same Object Lock
    # retention, to a second, independent S3 store. Embedded stack: a second SeaweedFS on these ports
    # (gRPC = port + 10000) with its data in replica_data_dir (default <home>/seaweedfs-replica; put it
    # on another disk: a replica inside the home dies with the home). Production: replica_s3_endpoint
    # (any S3 with Object Lock) and its keys. replica_enabled=false archives to one store only.
    replica_enabled: bool = True
    replica_s3_endpoint: str = ""
    replica_s3_access_key: str = ""
    replica_s3_secret_key: str = field(default="", repr=False)
    replica_bucket: str = ""
    replica_data_dir: str = ""
    replica_s3_port: int = 18433
    replica_master_port: int = 19433
    replica_filer_port: int = 18988
    replica_volume_port: int = 18180
    replica_admin_port: int = 18746
    work_bucket: str = "sealflow-work"
    # Days a batch's received files, sealed files and provenance notes stay in the work bucket after the
    # archive holds its records and the platform has filed them; then `sealflow batch purge-work` (and the
    # hourly seal_maintenance job) removes them, keeping the manifest and the report. 0 keeps them for
    # ever (docs/backup.md says why 30 and why 0 is not "at once").
    work_retention_days: int = 30
    # Archives (电子档案): 档号 parts (全宗号, 门类代码), its pattern, upload threads, URL expiry,
    # the archiving unit's key in the key store.
    archive_fonds: str = "X001"
    archive_category: str = "ZZ"
    archive_code_pattern: str = r"^[0-9A-Z]{1,8}-[0-9A-Z]{1,4}·[0-9]{4}-(Y|D30|D10)-[0-9]{4,8}$"
    archive_item_digits: int = 6
    archive_upload_workers: int = 24
    archive_url_expiry: int = 3600
    archive_key_id: str = "archive-unit"
    archive_key_pin: str = field(default="", repr=False)
    # National-platform simulator (and, in production, the platform's endpoint).
    platform_port: int = 18600
    platform_url: str = ""
    # Time-stamp authority (时间戳服务, RFC 3161): the embedded stack's TSA on tsa_port, or in
    # production the provincial TSA's URL. Every seal SealFlow puts carries its token.
    tsa_port: int = 18610
    tsa_url: str = ""
    # Filing (备案): the pinned platform certificate (default <home>/filing/platform-cert.pem),
    # the sending system's key in the key store and its PIN, our system id, drain schedule.
    platform_cert: str = ""
    filing_key_id: str = "filing-system"
    filing_key_pin: str = field(default="", repr=False)
    filing_system_id: str = "sealflow"
    filing_schedule: str = "*/15 * * * *"
    # file_records fails its run (an alert) when nothing could be delivered for this many seconds.
    filing_alert_after_s: int = 3600
    # Seal registry (印章管理): review levels (逐级审核) per application, seal validity in days,
    # the region prefix of new esIDs; audit log key, its PIN (demo: generated on first use),
    # how many entries between mandatory signed checkpoints, and the checkpoint interval in seconds:
    # no entry may stay uncovered, nor a checkpoint un-anchored, longer (docs/audit.md).
    review_levels: int = 2
    seal_validity_days: int = 730
    seal_region_code: str = "450000"
    audit_key_id: str = "audit-log"
    audit_key_pin: str = field(default="", repr=False)
    audit_checkpoint_every: int = 100
    audit_checkpoint_interval: int = 7200
    # Identity registers of the data-sharing platform (身份核验): persons and units are checked there
    # on applying for and using a seal. "" on the embedded stack = its own simulator on identity_port
    # (sealflow.root.with_stack_identity); "" anywhere else (production) refuses both steps.
    identity_url: str = ""
    identity_port: int = 18620
    # Backups (备份): where they go (a folder or s3://bucket/prefix; never inside the home), the backup
    # key in the key store and its PIN, and the Object Lock retention of backup objects in days.
    # With a target set, the health page and the alerts raise a condition when the newest backup there is
    # older than backup_alert_after_h hours (default: the daily `backup` DAG plus two hours of slack).
    backup_target: str = ""
    backup_key_id: str = "backup-system"
    backup_key_pin: str = field(default="", repr=False)
    backup_retention_days: int = 30
    backup_alert_after_h: int = 26
    # The distributed stack (`sealflow stack up --distributed`): the machine's PostgreSQL (a database where
    # this user may CREATE DATABASE; the stack makes its own there) and Redis (the Celery broker).
    cluster_pg_dsn: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
    cluster_redis_url: str = "redis://127.0.0.1:6379/0"
    # Airflow API server for `sealflow stack up --ui`.
    airflow_port: int = 18280
    # Key-encryption key for the key store: a hex value, or a 0600 file holding it.
    kek: str = field(default="", repr=False)
    kek_file: str = ""
    trust_roots: tuple[str, ...] = ()
    sm2_uid: str = DEFAULT_SM2_UID
    sms_outbox: str = ""
    # 用章审批 codes: SMS gateway (local outbox files | http), its URL and token (production), and the
    # 0600 server secret under which codes are stored as HMAC-SM3 (default <home>/approval-mac.key).
    sms_gateway: str = "local"
    sms_url: str = ""
    sms_token: str = field(default="", repr=False)
    approval_mac_key_file: str = ""
    # The largest chunk of a batch (a stamp task and a verify task each); see stamping.batch.process.chunk_length.
    stamp_chunk_size: int = 1000
    # Airflow's fault handling on the embedded stack: a task whose supervisor died is failed (and
    # retried) after ``airflow_heartbeat_timeout_s``, looked for every ``airflow_heartbeat_check_s``;
    # a restarted scheduler adopts a dead one's tasks within ``airflow_orphan_check_s`` (Airflow's
    # defaults: 300, 10, 300). Retry delays of the pipeline's tasks (stamp_batch's, archive_batch's).
    # A task sent to the executor but never started (its Celery message lost with the broker) is
    # failed and re-queued by the scheduler after ``airflow_queued_timeout_s`` (Airflow's default, 600).
    # The fault suite's stack shortens them all; a production scheduler keeps these.
    airflow_heartbeat_timeout_s: int = 60
    airflow_heartbeat_check_s: int = 10
    airflow_orphan_check_s: int = 30
    airflow_queued_timeout_s: int = 600
    task_retry_delay_s: int = 10
    archive_retry_delay_s: int = 30
    # Where the records office reads batch reports on disk (<dir>/<batch>/report.html, 0640 in 0750
    # folders for the office's group): outside the private home, which stays 0700. "" = no copy there
    # (the report stays in the batch's work folder and the work bucket).
    reports_dir: str = ""
    log_level: str = "INFO"

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @property
    def embedded(self) -> bool:
        """Whether this is the embedded stack (``sealflow stack up``: demo, tests, one machine), which runs
        its own object store and simulators — known from ``s3_endpoint``: every other install (compose, a
        cluster) names its object store. Production, i.e. not embedded, gets no simulator by default:
        what it must check against (the identity registers) has to be configured, or it refuses."""
        return not self.s3_endpoint

    @property
    def identity_register_file(self) -> Path:
        """The embedded identity simulator's data (persons and units it knows; 0600, re-read on change)."""
        return self.state_dir / "identity" / "registers.json"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def keystore_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'sealflow.db'}"

    @property
    def resolved_s3_endpoint(self) -> str:
        return _configured_or_local(self.s3_endpoint, self.s3_port)

    @property
    def resolved_replica_endpoint(self) -> str:
        return _configured_or_local(self.replica_s3_endpoint, self.replica_s3_port)

    @property
    def resolved_replica_bucket(self) -> str:
        return self.replica_bucket or self.archive_bucket

    @property
    def resolved_replica_data_dir(self) -> Path:
        return _configured_or_state(self.replica_data_dir, self.state_dir / "seaweedfs-replica")

    @property
    def resolved_platform_url(self) -> str:
        return _configured_or_local(self.platform_url, self.platform_port)

    @property
    def resolved_tsa_url(self) -> str:
        return _configured_or_local(self.tsa_url, self.tsa_port, "/")

    @property
    def resolved_kek_file(self) -> Path:
        return _configured_or_state(self.kek_file, self.state_dir / "kek.hex")

    @property
    def resolved_approval_mac_key_file(self) -> Path:
        return _configured_or_state(self.approval_mac_key_file, self.state_dir / "approval-mac.key")

    @property
    def resolved_sms_outbox(self) -> Path:
        return _configured_or_state(self.sms_outbox, self.state_dir / "sms")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"SEALFLOW_{f.name.upper()}")
            if raw is None:
                continue
            default = f.default
            if isinstance(default, bool):
                values[f.name] = _as_bool(raw)
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, Path):
                values[f.name] = Path(raw)
            elif isinstance(default, tuple):
                values[f.name] = tuple(p for p in raw.split(os.pathsep) if p)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The optional settings file: ``SEALFLOW_CONFIG``, else ``$XDG_CONFIG_HOME/sealflow/sealflow.env``
    (``~/.config/sealflow/sealflow.env``). It holds ``SEALFLOW_*=value`` lines, e.g. ``SEALFLOW_HOME=/srv/sealflow``."""
    env = os.environ if environ is None else environ
    if env.get("SEALFLOW_CONFIG"):
        return Path(env["SEALFLOW_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "sealflow" / "sealflow.env"


def read_config_file(path: Path) -> dict[str, str]:
    """``SEALFLOW_*`` values of a settings file (``KEY=value`` lines, ``#`` comments); {} when absent."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    values: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if sep and key.strip().startswith("SEALFLOW_"):
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings file's values under the process environment (the environment wins)."""
    env = dict(os.environ if environ is None else environ)
    return {**read_config_file(config_file(env)), **env}


def home_source(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> str | None:
    """Where the SealFlow home comes from — ``SEALFLOW_HOME``, the settings file, or the current
    folder's ``var/`` when it exists — or None: then there is no home and nothing should be made."""
    env = dict(os.environ if environ is None else environ)
    if env.get("SEALFLOW_HOME"):
        return "SEALFLOW_HOME"
    path = config_file(env)
    if read_config_file(path).get("SEALFLOW_HOME"):
        return str(path)
    if ((cwd or Path.cwd()) / "var").is_dir():
        return "./var"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment over the optional settings file."""
    return Settings.from_env(environment())


# --- the state at rest -------------------------------------------------------------------------

PRIVATE_UMASK = 0o077


class StateNotPrivate(RuntimeError):
    """The state directory, a database or a secret file can be read by other users."""


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1]
    return Path(path) if path and path != ":memory:" else None


def state_secrets(settings: Settings) -> Iterator[Path]:
    """Every database and secret file SealFlow keeps in (or for) the state directory."""
    state, airflow = settings.state_dir, settings.airflow_home
    for db in (_sqlite_path(settings.resolved_database_url), airflow / "airflow.db",
               state / "platform" / "platform.db"):
        if db is not None:
            yield from (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
    yield settings.resolved_kek_file
    for folder in (settings.keystore_dir, state / "ca", state / "ca" / "keys", state / "platform" / "ca",
                   state / "platform" / "ca" / "keys", settings.resolved_sms_outbox, state / "pins",
                   state / "custody"):
        if folder.is_dir():
            # certificates (.pem) are public; dot files are empty locks and temporaries
            yield from (p for p in folder.iterdir()
                        if p.is_file() and not p.name.endswith(".pem") and not p.name.startswith("."))
    yield state / "platform" / "platform-key.pem"
    yield state / "registry" / "demo-pins.json"
    yield settings.identity_register_file  # names and ID numbers (PII)
    yield from (airflow / "sealflow-secrets.json", airflow / "simple_auth_manager_passwords.json.generated",
                airflow / "airflow.cfg")


def private_dirs(settings: Settings) -> Iterator[Path]:
    """Directories that must be 0700: the state directory and the folders of keys and codes."""
    state = settings.state_dir
    yield from (state, settings.keystore_dir, state / "ca", settings.resolved_sms_outbox, state / "pins",
                state / "custody")


def open_modes(settings: Settings) -> list[tuple[Path, int]]:
    """Each existing private directory or secret file that others may access, with its mode."""
    found = []
    for path in (*private_dirs(settings), *state_secrets(settings)):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append((path, mode))
    return found


def check_state(settings: Settings) -> None:
    """Refuse to start on a state directory others can read into; from here on, every file this
    process (and what it starts) creates is private (umask 077).

    Raises :class:`StateNotPrivate` naming each path, its mode and the command that fixes it.
    """
    os.umask(PRIVATE_UMASK)
    problems = open_modes(settings)
    if not problems:
        return
    dirs = [str(p) for p, _ in problems if p.is_dir()]
    files = [str(p) for p, _ in problems if not p.is_dir()]
    listed = "; ".join(f"{p} (mode {m:o})" for p, m in problems)
    fix = " && ".join(c for c in (f"chmod 700 {' '.join(dirs)}" if dirs else "",
                                  f"chmod 600 {' '.join(files)}" if files else "") if c)
    raise StateNotPrivate(f"the state at rest is readable by other users: {listed}. Anyone who could read them "
                          f"may hold the secrets: rotate what matters, then run `{fix}`")
