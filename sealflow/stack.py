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

Orphans: a component killed with SIGKILL (a crashed scheduler) leaves the processes it forked —
LocalExecutor workers, task supervisors, tasks (which move to process groups of their own) —
reparented to init, out of reach of its PID file. So every component is started as a session
leader and with a tag in its environment (``SEALFLOW_STACK_TAG=<state dir digest>/<component>``),
both inherited by everything it forks, and the sessions are recorded in ``run/sessions.json``.
A process belongs to this stack if it carries the tag, or lives in a recorded session and
started after its leader (the kernel does not reuse a PID while a session still uses it as its
id). ``down`` stops those too; ``up`` reports and stops leftovers of components that are gone.

Ports: SeaweedFS also binds each of its ports + 10000 (gRPC). ``up`` refuses ports whose port or
gRPC companion falls in Linux's ephemeral range (``ip_local_port_range``), where any outgoing
connection may take them first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from kernel.objectstore import CHECKSUM_ENV, ensure_buckets, ensure_replica_bucket, replica_client, s3_client
from kernel.settings import Settings, check_state
from sealflow.root import stack_identity_url, with_stack_identity

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS_DIR = REPO_ROOT / "dags"
PLUGINS_DIR = REPO_ROOT / "plugins"
ADMIN_USER = "admin"
DEMO_KEEPER = "keeper"  # stamping.registry.demo.KEEPER: the Airflow user is the registry user name
S3_CONN_ID = "sealflow_s3"
PLATFORM_CONN_ID = "sealflow_platform"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
REPLICA = "seaweedfs-replica"  # the second SeaweedFS holding the archive replica
# The stack's own services besides Airflow, in the order `down` stops them (the stores last).
SERVICE_COMPONENTS = ("platform", "tsa", "identity", "seaweedfs", REPLICA)

# Processes started by this Python process, kept referenced so they are reaped, not warned about.
_CHILDREN: dict[int, subprocess.Popen] = {}


class StackError(RuntimeError):
    """A stack component could not be started or stopped; the message says which and why."""


# --------------------------------------------------------------------------- paths and env
def run_dir(settings: Settings) -> Path:
    return settings.state_dir / "run"


def logs_dir(settings: Settings) -> Path:
    return settings.state_dir / "logs"


def seaweed_dir(settings: Settings) -> Path:
    return settings.state_dir / "seaweedfs"


def platform_db(settings: Settings) -> Path:
    return settings.state_dir / "platform" / "platform.db"


def venv_bin() -> Path:
    """The bin directory of the running interpreter (the venv holding airflow and weed)."""
    return Path(sys.executable).parent


def _secrets_file(settings: Settings) -> Path:
    return settings.airflow_home / "sealflow-secrets.json"


def _passwords_file(settings: Settings) -> Path:
    return settings.airflow_home / "simple_auth_manager_passwords.json.generated"


def _write_private(path: Path, text: str) -> None:
    """Write a 0600 file atomically (secrets: JWT key, Fernet key, UI password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


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
    _write_private(path, json.dumps(values))
    return values


def airflow_users(settings: Settings) -> list[tuple[str, str]]:
    """The SimpleAuthManager's users: the stack administrator and the registry's people by role
    (sealflow.airflow_users), each with a generated password in the 0600 passwords file."""
    from sealflow.airflow_users import ensure_passwords, registry_users, simple_auth_users

    users = simple_auth_users(registry_users(settings), ADMIN_USER)
    ensure_passwords(_passwords_file(settings), [name for name, _ in users], _write_private)
    return users


def airflow_login(settings: Settings, user: str = ADMIN_USER) -> tuple[str, str]:
    """The local UI/API login (user, password) of the simple auth manager; made on first use.
    ``user`` other than the administrator logs in only if the registry made them an Airflow user."""
    from sealflow.airflow_users import ensure_passwords

    passwords = ensure_passwords(_passwords_file(settings), [user], _write_private)
    return user, passwords[user]


def sealflow_env(settings: Settings) -> dict[str, str]:
    """``SEALFLOW_*`` variables reproducing ``settings`` in a child process (home made absolute)."""
    env: dict[str, str] = {}
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name == "home":
            value = str(settings.state_dir)
        elif isinstance(value, tuple):
            value = os.pathsep.join(value)
        if value in ("", ()):
            continue
        env[f"SEALFLOW_{f.name.upper()}"] = str(value)
    return env


class IdentityNotConfigured(StackError):
    """Production without an identity register: nothing could check who applies for or uses a seal."""


def require_identity_source(settings: Settings) -> None:
    """Refuse to start a non-embedded install that has no identity register to check people against."""
    if not settings.embedded and not settings.identity_url:
        raise IdentityNotConfigured(
            "no identity register configured: this install is not the embedded stack (SEALFLOW_S3_ENDPOINT is "
            "set), so applying for or using a seal must check people and units against the data-sharing "
            "platform — set SEALFLOW_IDENTITY_URL to its identity service (docs/identities.md)")


def airflow_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The complete environment to run Airflow (CLI, components, ``dag.test()``) on this stack.

    ``base`` defaults to the current environment (for PATH, HOME...); any ``AIRFLOW__``/``SEALFLOW_``
    variables in it are replaced so the Airflow home is exactly the one of ``settings``.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "SEALFLOW_"))}
    home = settings.airflow_home
    api = f"http://127.0.0.1:{settings.airflow_port}"
    keys = _airflow_secrets(settings)
    env.update(sealflow_env(with_stack_identity(settings)))  # tasks check identities against the stack's register
    env.update(CHECKSUM_ENV)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
            # Airflow's LocalExecutor minus the race that failed a task resumed right after parking
            # (an approval answered at once): see plugins/sealflow_airflow/executor.py.
            "AIRFLOW__CORE__EXECUTOR": "sealflow_airflow.executor.LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in airflow_users(settings)),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_passwords_file(settings)),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # A task's calls to the API server wait 60 s (not 5) for an answer: on a loaded machine a
            # call that timed out but landed (a task's start) is otherwise retried into a 409 and fails.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__API__BASE_URL": api,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.airflow_port),
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # A killed task supervisor or scheduler: its tasks are failed (and retried) after 60 s,
            # not 300 s; a restarted scheduler adopts a dead one's tasks within 30 s, not 300 s.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(settings.airflow_heartbeat_timeout_s),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL":
                str(settings.airflow_heartbeat_check_s),
            "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(settings.airflow_orphan_check_s),
        }
    )
    # Components spawn `airflow ...` themselves; DAG files import the Airflow glue in plugins/.
    env["PATH"] = os.pathsep.join([str(venv_bin()), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH", "")) if p)
    return env


def platform_available() -> bool:
    """Whether the national-platform simulator (filing.simulator) is installed."""
    try:
        return importlib.util.find_spec("filing.simulator") is not None
    except ModuleNotFoundError:
        return False


# --------------------------------------------------------------------------- ports
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
SEAWEED_GRPC_OFFSET = 10000
SEAWEED_PORT_FIELDS = ("s3_port", "master_port", "filer_port", "volume_port", "seaweed_admin_port")
REPLICA_PORT_FIELDS = ("replica_s3_port", "replica_master_port", "replica_filer_port", "replica_volume_port",
                       "replica_admin_port")


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """Linux's range of ports for outgoing connections; the usual default where /proc has none."""
    try:
        low, high = (int(v) for v in path.read_text().split()[:2])
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_problems(settings: Settings, ephemeral: tuple[int, int] | None = None) -> list[str]:
    """Ports of the components we would start that the ephemeral range can take (empty: all good)."""
    low, high = ephemeral or ephemeral_range()
    wanted: list[tuple[str, int]] = [("airflow_port", settings.airflow_port)]
    if not settings.platform_url:
        wanted.append(("platform_port", settings.platform_port))
    if not settings.tsa_url:
        wanted.append(("tsa_port", settings.tsa_port))
    if not settings.identity_url and settings.embedded:
        wanted.append(("identity_port", settings.identity_port))
    if not settings.s3_endpoint:
        for name in SEAWEED_PORT_FIELDS:
            port = getattr(settings, name)
            wanted += [(name, port), (f"{name} + {SEAWEED_GRPC_OFFSET} (SeaweedFS gRPC)", port + SEAWEED_GRPC_OFFSET)]
    if embedded_replica(settings):
        for name in REPLICA_PORT_FIELDS:
            port = getattr(settings, name)
            wanted += [(name, port), (f"{name} + {SEAWEED_GRPC_OFFSET} (SeaweedFS gRPC)", port + SEAWEED_GRPC_OFFSET)]
    return [f"{name} = {port}" for name, port in wanted if low <= port <= high]


def check_ports(settings: Settings) -> None:
    problems = port_problems(settings)
    if problems:
        low, high = ephemeral_range()
        raise StackError(
            f"ports inside Linux's ephemeral range {low}-{high} (any outgoing connection may take them): "
            f"{', '.join(problems)}; choose SEALFLOW_*_PORT values below {low - SEAWEED_GRPC_OFFSET} "
            f"(SeaweedFS binds each port + {SEAWEED_GRPC_OFFSET} too)")


# --------------------------------------------------------------------------- components
@dataclass
class Component:
    name: str
    argv: list[str]
    port: int | None
    env: dict[str, str]
    health: Callable[[], bool]
    startup_timeout: float = 60.0
    cwd: Path | None = None


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own loopback URLs
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _s3_ready(settings: Settings) -> bool:
    try:
        s3_client(settings, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3).list_buckets()
        return True
    except Exception:  # any error means "not ready yet"; the caller times out with the log tail
        return False


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _weed_argv(data: Path, s3: int, master: int, filer: int, volume: int, admin: int) -> list[str]:
    return [
        str(venv_bin() / "weed"), "mini",
        f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
        f"-admin.port={admin}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.port={s3}", f"-master.port={master}", f"-filer.port={filer}", f"-volume.port={volume}",
    ]


def _weed_env(access_key: str, secret_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key})
    return env


def seaweed_component(settings: Settings) -> Component:
    data = seaweed_dir(settings)
    argv = _weed_argv(data, settings.s3_port, settings.master_port, settings.filer_port, settings.volume_port,
                      settings.seaweed_admin_port)
    env = _weed_env(settings.s3_access_key, settings.s3_secret_key)
    return Component("seaweedfs", argv, settings.s3_port, env, lambda: _s3_ready(settings), 60.0, data)


def _replica_ready(settings: Settings) -> bool:
    try:
        replica_client(settings, retries={"max_attempts": 1}, connect_timeout=1, read_timeout=3).list_buckets()
        return True
    except Exception:  # any error means "not ready yet"; the caller times out with the log tail
        return False


def replica_component(settings: Settings) -> Component:
    """The archive replica: a second, independent SeaweedFS (own ports, own data folder, own process)."""
    data = settings.resolved_replica_data_dir
    argv = _weed_argv(data, settings.replica_s3_port, settings.replica_master_port, settings.replica_filer_port,
                      settings.replica_volume_port, settings.replica_admin_port)
    env = _weed_env(settings.replica_s3_access_key or settings.s3_access_key,
                    settings.replica_s3_secret_key or settings.s3_secret_key)
    return Component(REPLICA, argv, settings.replica_s3_port, env, lambda: _replica_ready(settings), 60.0, data)


def embedded_replica(settings: Settings) -> bool:
    """Whether this stack runs the replica itself (replication on, no external replica endpoint)."""
    return settings.replica_enabled and not settings.replica_s3_endpoint


def sender_trust(settings: Settings) -> list[Path]:
    """What the simulator trusts for senders: the state's demo CA, root and intermediate (made if missing)."""
    from gmpki.pki.ca import DemoCA

    directory = settings.state_dir / "ca"
    DemoCA.create(directory)
    return [directory / "ca-root.pem", directory / "ca-intermediate.pem"]


def platform_component(settings: Settings) -> Component:
    db = platform_db(settings)
    # Senders must chain to the state's demo CA (the one that issues the filing system's certificate).
    argv = [sys.executable, "-m", "filing.simulator", "--host", "127.0.0.1",
            "--port", str(settings.platform_port), "--db", str(db)]
    for pem_file in sender_trust(settings):
        argv += ["--trust", str(pem_file)]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = f"{settings.resolved_platform_url}/v1/health"
    return Component("platform", argv, settings.platform_port, env, lambda: _http_ok(url), 30.0, db.parent)


def tsa_component(settings: Settings) -> Component:
    """The embedded time-stamp authority (stamping.tsa.server), certified by the stack's CA."""
    directory = settings.state_dir / "tsa"
    argv = [sys.executable, "-m", "stamping.tsa.server", "--host", "127.0.0.1", "--port", str(settings.tsa_port),
            "--dir", str(directory), "--ca", str(settings.state_dir / "ca")]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = f"http://127.0.0.1:{settings.tsa_port}/health"
    return Component("tsa", argv, settings.tsa_port, env, lambda: _http_ok(url), 30.0, directory)


def identity_component(settings: Settings) -> Component:
    """The identity registers' simulator (stamping.registry.identity_simulator) on the stack's register
    file, which :func:`stamping.registry.identity_register.register` fills and the simulator re-reads."""
    data = settings.identity_register_file
    argv = [sys.executable, "-m", "stamping.registry.identity_simulator", "--host", "127.0.0.1",
            "--port", str(settings.identity_port), "--data", str(data)]
    env = dict(os.environ)
    env.update(sealflow_env(settings))
    url = f"{stack_identity_url(settings)}/v1/health"
    return Component("identity", argv, settings.identity_port, env, lambda: _http_ok(url), 30.0, data.parent)


# The API server imports all of Airflow and its plugins before it answers: on a loaded machine
# (a shared CI runner) that took over 120 s. A healthy start returns as soon as it answers.
API_SERVER_STARTUP_S = 300.0


def airflow_components(settings: Settings) -> list[Component]:
    env = airflow_env(settings)
    airflow = str(venv_bin() / "airflow")
    health = f"http://127.0.0.1:{settings.airflow_port}/api/v2/monitor/health"
    api_up = lambda: _http_ok(health)  # noqa: E731
    home = settings.airflow_home
    return [
        Component("api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.airflow_port)],
                  settings.airflow_port, env, api_up, API_SERVER_STARTUP_S, home),
        Component("scheduler", [airflow, "scheduler", "--skip-serve-logs"], None, env, lambda: True, 60.0, home),
        Component("dag-processor", [airflow, "dag-processor"], None, env, lambda: True, 60.0, home),
        Component("triggerer", [airflow, "triggerer", "--skip-serve-logs"], None, env, lambda: True, 60.0, home),
    ]


# --------------------------------------------------------------------------- PID files
@dataclass
class Running:
    name: str
    pid: int
    create_time: float
    port: int | None
    log: str
    argv: list[str] = field(default_factory=list)


def _pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid.json"


def read_pid(settings: Settings, name: str) -> Running | None:
    path = _pid_file(settings, name)
    try:
        return Running(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _process(entry: Running) -> Any:  # psutil.Process | None
    """The live process of a PID file entry, only if it is still the very process we started."""
    import psutil

    try:
        proc = psutil.Process(entry.pid)
        if proc.status() == psutil.STATUS_ZOMBIE or not _started_as(proc, entry):
            return None
        return proc
    except psutil.Error:
        return None


def _started_as(proc: Any, entry: Running) -> bool:
    """Whether a live process is the one ``entry`` recorded: the same start time — or, when the wall
    clock was stepped since (a resumed VM, NTP), which moves the start times psutil computes from
    the boot time, the component's own stack tag. Without the second test a clock step made every
    running component look dead: its PID file was removed and ``up`` reaped it as a leftover."""
    if abs(proc.create_time() - entry.create_time) <= 1.0:
        return True
    with contextlib.suppress(Exception):  # psutil.Error, or an unreadable environment
        return proc.environ().get(STACK_TAG_VAR, "").endswith("/" + entry.name)
    return False


def alive(settings: Settings, name: str) -> Running | None:
    entry = read_pid(settings, name)
    if entry is None:
        return None
    if _process(entry) is None:
        _pid_file(settings, name).unlink(missing_ok=True)
        return None
    return entry


def _log_tail(path: Path, lines: int = 25, since: int = 0) -> str:
    """The last lines of a log, from byte offset ``since`` (this start's output only)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _start(settings: Settings, comp: Component) -> Running:
    import psutil

    if comp.port is not None and _port_in_use(comp.port):
        raise StackError(f"{comp.name}: port {comp.port} on 127.0.0.1 is already in use by another process; "
                         f"choose other ports (SEALFLOW_*_PORT) or stop that process")
    logs_dir(settings).mkdir(parents=True, exist_ok=True)
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    if comp.cwd:
        comp.cwd.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir(settings) / f"{comp.name}.log"
    with open(log_path, "ab") as log_file:
        offset = log_file.tell()
        log_file.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {comp.name}\n".encode())
        log_file.flush()
        # A new session: the component outlives this command and gets its own process group,
        # which `down` signals so that workers it forks stop with it.
        env = {**comp.env, STACK_TAG_VAR: stack_tag(settings, comp.name)}
        proc = subprocess.Popen(comp.argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                env=env, cwd=comp.cwd, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    entry = Running(comp.name, proc.pid, psutil.Process(proc.pid).create_time(), comp.port, str(log_path), comp.argv)
    _record_session(settings, entry)
    _write_private(_pid_file(settings, comp.name), json.dumps(asdict(entry)))
    launched = time.monotonic()
    deadline = launched + comp.startup_timeout
    # A component without a port of its own counts as started once it survived a short grace period.
    grace = 0.0 if comp.port is not None else 2.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _pid_file(settings, comp.name).unlink(missing_ok=True)
            raise StackError(f"{comp.name} exited with code {proc.returncode} while starting; "
                             f"log {log_path}:\n{_log_tail(log_path, since=offset)}")
        if time.monotonic() - launched >= grace and comp.health():
            return entry
        time.sleep(0.3)
    _stop_entry(settings, entry)
    raise StackError(f"{comp.name} did not become healthy within {comp.startup_timeout:.0f} s; "
                     f"log {log_path}:\n{_log_tail(log_path, since=offset)}")


def _stop_entries(settings: Settings, entries: list[Running], timeout: float = 20.0) -> list[Running]:
    """SIGTERM the process groups we started, wait for all at once, SIGKILL what is left.

    Returns the entries that were still running. Only processes whose PID *and* creation time match
    a PID file are signalled (with the children they forked), so a reused PID is never touched.
    """
    import psutil

    running: list[Running] = []
    family: list[Any] = []
    for entry in entries:
        proc = _process(entry)
        if proc is None:
            _pid_file(settings, entry.name).unlink(missing_ok=True)
            continue
        running.append(entry)
        try:
            children = proc.children(recursive=True)
        except psutil.Error:
            children = []
        family += [proc, *children]
        try:
            os.killpg(entry.pid, signal.SIGTERM)  # our component leads its own group (start_new_session)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        for child in children:  # tasks move to process groups of their own: signal them directly
            with contextlib.suppress(psutil.Error):
                child.terminate()
    _, survivors = psutil.wait_procs(family, timeout=timeout)
    for straggler in survivors:
        with contextlib.suppress(psutil.Error):
            straggler.kill()
    psutil.wait_procs(survivors, timeout=5)
    for entry in running:
        child = _CHILDREN.pop(entry.pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)
        _pid_file(settings, entry.name).unlink(missing_ok=True)
    return running


# --------------------------------------------------------------------------- orphans and leftovers
STACK_TAG_VAR = "SEALFLOW_STACK_TAG"


def stack_tag(settings: Settings, component: str) -> str:
    """``<digest of the state dir>/<component>``: marks every process a component starts, forks included."""
    digest = hashlib.sha256(str(settings.state_dir.resolve()).encode()).hexdigest()[:16]
    return f"{digest}/{component}"


def _sessions_file(settings: Settings) -> Path:
    return run_dir(settings) / "sessions.json"


def _read_sessions(settings: Settings) -> list[dict[str, Any]]:
    try:
        return list(json.loads(_sessions_file(settings).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return []


def _record_session(settings: Settings, entry: Running) -> None:
    """Remember a component's session (id = its PID) for as long as any process may live in it."""
    sessions = [s for s in _read_sessions(settings) if s.get("sid") != entry.pid]
    sessions.append({"name": entry.name, "sid": entry.pid, "create_time": entry.create_time})
    _write_private(_sessions_file(settings), json.dumps(sessions))


@dataclass(frozen=True)
class Member:
    """A live process that belongs to this stack, and the component that started it (or its ancestor)."""

    component: str
    pid: int
    rss: int
    cmdline: str


def stack_processes(settings: Settings, components: Iterable[str] | None = None) -> list[Member]:
    """Every live process of this state directory's stack (tagged, or in a recorded session).

    Never this process or its ancestors (a task that runs ``sealflow stack`` must not kill its own chain).
    """
    import psutil

    wanted = None if components is None else set(components)
    prefix = stack_tag(settings, "")
    sessions = {s["sid"]: s for s in _read_sessions(settings)}
    own = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: list[Member] = []
    for proc in psutil.process_iter(["pid", "create_time", "cmdline", "memory_info"]):
        if proc.info["pid"] in own:
            continue
        name = _membership(proc, prefix, sessions)
        if name is None or (wanted is not None and name not in wanted):
            continue
        memory = proc.info.get("memory_info")
        found.append(Member(name, proc.info["pid"], memory.rss if memory else 0,
                            " ".join(proc.info.get("cmdline") or [])[:200]))
    return found


def _membership(proc: Any, prefix: str, sessions: dict[int, dict[str, Any]]) -> str | None:
    import psutil

    with contextlib.suppress(psutil.Error, OSError):
        tag = proc.environ().get(STACK_TAG_VAR, "")
        if tag.startswith(prefix):
            return tag[len(prefix):]
    with contextlib.suppress(psutil.Error, OSError):
        session = sessions.get(os.getsid(proc.info["pid"]))
        if (session is not None and proc.info["create_time"] >= session["create_time"] - 1.0
                and not _leader_replaced(session)):
            return str(session["name"])
    return None


def _leader_replaced(session: dict[str, Any]) -> bool:
    """True when a live process holds the session's id but is not the leader we started (reused PID)."""
    import psutil

    try:
        return abs(psutil.Process(session["sid"]).create_time() - session["create_time"]) > 1.0
    except psutil.Error:
        return False


def stop_processes(members: list[Member], timeout: float = 20.0) -> list[Member]:
    """SIGTERM, wait, SIGKILL what is left; returns the members that were signalled."""
    import psutil

    procs: list[Any] = []
    for member in members:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(member.pid)
            proc.terminate()
            procs.append(proc)
    _, survivors = psutil.wait_procs(procs, timeout=timeout)
    for straggler in survivors:
        with contextlib.suppress(psutil.Error):
            straggler.kill()
    psutil.wait_procs(survivors, timeout=5)
    signalled = {p.pid for p in procs}
    return [m for m in members if m.pid in signalled]


def leftovers(settings: Settings, components: Iterable[str] | None = None) -> list[Member]:
    """Processes of this stack whose component is no longer running (orphans of a crash)."""
    live = {name for name in (*AIRFLOW_COMPONENTS, *SERVICE_COMPONENTS) if alive(settings, name)}
    return [m for m in stack_processes(settings, components) if m.component not in live]


def _describe(members: list[Member]) -> str:
    by: dict[str, list[Member]] = {}
    for member in members:
        by.setdefault(member.component, []).append(member)
    return "; ".join(f"{name}: {len(ms)} (pids {', '.join(str(m.pid) for m in ms[:8])}"
                     f"{' …' if len(ms) > 8 else ''}, {sum(m.rss for m in ms) / 2**20:.0f} MiB)"
                     for name, ms in sorted(by.items()))


def reap_leftovers(settings: Settings, out: Callable[[str], None], components: Iterable[str] | None = None) -> int:
    """Find, report and stop leftovers of crashed components; how many there were."""
    found = leftovers(settings, components)
    if found:
        out(f"leftover processes of crashed stack components found — {_describe(found)}; stopping them")
        stop_processes(found)
    _prune_sessions(settings)
    return len(found)


def _prune_sessions(settings: Settings) -> None:
    """Forget sessions with neither a live leader nor a live member."""
    import psutil

    sessions = _read_sessions(settings)
    if not sessions:
        return
    in_use: set[int] = set()
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            in_use.add(os.getsid(proc.info["pid"]))
    kept = [s for s in sessions if s["sid"] in in_use]
    if kept != sessions:
        _write_private(_sessions_file(settings), json.dumps(kept))


def _stop_entry(settings: Settings, entry: Running, timeout: float = 20.0) -> bool:
    return bool(_stop_entries(settings, [entry], timeout))


@contextlib.contextmanager
def _stack_lock(settings: Settings) -> Iterator[None]:
    """One `up`/`down` at a time per state directory."""
    run_dir(settings).mkdir(parents=True, exist_ok=True)
    with open(run_dir(settings) / "stack.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- Airflow home
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


def prepare_airflow(settings: Settings, out: Callable[[str], None] = print) -> bool:
    """Make the Airflow home: ``airflow db migrate`` once, connections upserted. True if work was done.

    A marker records the Airflow version and the connections; when both are unchanged this is a no-op.
    """
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    airflow_login(settings)
    specs = connection_specs(settings)
    fingerprint = hashlib.sha256(json.dumps([_airflow_version(), specs], sort_keys=True).encode()).hexdigest()
    marker = home / ".sealflow-prepared"
    if marker.exists() and marker.read_text().strip() == fingerprint and (home / "airflow.db").exists():
        return False
    env = airflow_env(settings)
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
                                 f"log {log_path}:\n{_log_tail(log_path)}")
    marker.write_text(fingerprint + "\n")
    out(f"airflow: home ready, connections {S3_CONN_ID} and {PLATFORM_CONN_ID} set")
    return True


# --------------------------------------------------------------------------- up / down / status
def _ensure(settings: Settings, comp: Component, out: Callable[[str], None]) -> Running:
    entry = alive(settings, comp.name)
    if entry is not None:
        out(f"{comp.name}: already running (pid {entry.pid})")
        return entry
    started = time.monotonic()
    entry = _start(settings, comp)
    out(f"{comp.name}: started (pid {entry.pid}{f', port {comp.port}' if comp.port else ''}) "
        f"in {time.monotonic() - started:.1f} s")
    return entry


def _pin_platform_certificate(settings: Settings, out: Callable[[str], None]) -> None:
    """Pin the simulator's receipt-signing certificate once, from the file the simulator made on this
    machine — never from its HTTP endpoint (filing.identity never replaces a pinned one)."""
    from filing.identity import pin_platform_certificate, platform_cert_path

    if platform_cert_path(settings).is_file():
        return
    try:
        pin_platform_certificate(settings, platform_db(settings).parent / "platform-cert.pem")
        out(f"platform: certificate pinned in {platform_cert_path(settings)}")
    except Exception as exc:  # filing still reports "run `sealflow filing setup`" when it needs it
        out(f"platform: certificate not pinned ({exc})")


def _ensure_filing_identity(settings: Settings, out: Callable[[str], None]) -> None:
    """The sending system's key for the stack's own simulator, made before any filing task runs: the
    tasks read the platform from the ``sealflow_platform`` connection and, like production, never make
    a key themselves (a cron run at start-up would otherwise fail and hold the DAG for a retry)."""
    from filing.identity import setup_system_identity

    setup_system_identity(settings)
    out(f"platform: filing key {settings.filing_key_id!r} ready")


def _ensure_identity(settings: Settings, out: Callable[[str], None]) -> None:
    if settings.identity_url:
        out(f"identity: not started, using the configured identity register {settings.identity_url}")
    else:
        _ensure(settings, identity_component(settings), out)


def ensure_identity(settings: Settings, out: Callable[[str], None] = print) -> Settings:
    """Start the stack's identity simulator if it is not running (the demo needs it before the rest of
    the stack: its people are checked when their seals are applied for); returns
    :func:`with_stack_identity` of ``settings``. Refuses production without an identity register."""
    require_identity_source(settings)
    check_state(settings)
    check_ports(settings)
    with _stack_lock(settings):
        _ensure_identity(settings, out)
    return with_stack_identity(settings)


def up(settings: Settings, ui: bool = False, out: Callable[[str], None] = print) -> dict[str, Any]:
    """Start what is not running (idempotent) and return :func:`status`."""
    require_identity_source(settings)  # production without an identity register: refuse before anything runs
    check_state(settings)  # refuse an open state dir; what the stack creates is private (umask 077)
    check_ports(settings)
    with _stack_lock(settings):
        reap_leftovers(settings, out)
        if settings.s3_endpoint:  # an external object store was configured: use it, start nothing
            out(f"seaweedfs: not started, using the configured endpoint {settings.s3_endpoint}")
        else:
            _ensure(settings, seaweed_component(settings), out)
        ensure_buckets(s3_client(settings), settings)
        if embedded_replica(settings):
            _ensure(settings, replica_component(settings), out)
        elif settings.replica_enabled:
            out(f"{REPLICA}: not started, using the configured replica {settings.replica_s3_endpoint}")
        if settings.replica_enabled:
            ensure_replica_bucket(replica_client(settings), settings)
        if settings.platform_url:
            out(f"platform: not started, using the configured platform {settings.platform_url}")
        elif platform_available():
            try:
                _ensure(settings, platform_component(settings), out)
                _pin_platform_certificate(settings, out)
                _ensure_filing_identity(settings, out)
            except StackError as exc:
                # The object store and Airflow still work; filing tasks will report the platform as down.
                lines = str(exc).splitlines()
                out(f"platform: NOT started — {lines[0]} … {lines[-1].strip()}")
        else:
            out("platform: simulator not installed (filing.simulator missing) — skipped")
        if settings.tsa_url:
            out(f"tsa: not started, using the configured time-stamp authority {settings.tsa_url}")
        else:
            _ensure(settings, tsa_component(settings), out)
        _ensure_identity(settings, out)
        prepare_airflow(settings, out)
        if ui:
            for comp in airflow_components(settings):
                _ensure(settings, comp, out)
    return status(settings)


def down(settings: Settings, out: Callable[[str], None] = print, only: Iterable[str] | None = None,
         grace: float = 20.0) -> list[str]:
    """Stop every component this state directory started: Airflow first, then the simulator and the store.

    ``only`` limits it to the named components (e.g. ``AIRFLOW_COMPONENTS`` to stop just the UI side).
    ``grace``: seconds between SIGTERM and SIGKILL (Airflow's components can take the whole 20 s; a
    test stack that is thrown away needs no graceful end).
    """
    stopped: list[str] = []
    wanted = None if only is None else set(only)
    with _stack_lock(settings):
        for group in (AIRFLOW_COMPONENTS, SERVICE_COMPONENTS):
            names = [name for name in group if wanted is None or name in wanted]
            entries = [e for e in (read_pid(settings, name) for name in names) if e is not None]
            running = _stop_entries(settings, entries, timeout=grace)
            for entry in entries:
                if entry in running:
                    stopped.append(entry.name)
                    out(f"{entry.name}: stopped (pid {entry.pid})")
                else:
                    out(f"{entry.name}: was not running (stale pid file removed)")
            # What the group's components forked and left behind (a crashed scheduler's workers and tasks).
            orphans = stop_processes(stack_processes(settings, names), timeout=grace)
            if orphans:
                stopped.extend(sorted({m.component for m in orphans} - set(stopped)))
                out(f"stopped {len(orphans)} leftover processes — {_describe(orphans)}")
        _prune_sessions(settings)
    if not stopped:
        out("nothing was running")
    return stopped


def _monitor(settings: Settings) -> dict[str, Any]:
    """Airflow's own view of its components (heartbeats), via the api-server; {} when it is down."""
    url = f"http://127.0.0.1:{settings.airflow_port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # our own loopback URL
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return {}


def status(settings: Settings) -> dict[str, Any]:
    """Each component with pid, port, health and log path; plus where things are."""
    components: dict[str, Any] = {}
    checks: dict[str, Callable[[], bool]] = {
        "seaweedfs": lambda: _s3_ready(settings),
        REPLICA: lambda: _replica_ready(settings),
        "platform": lambda: _http_ok(f"{settings.resolved_platform_url}/v1/health"),
        "tsa": lambda: _http_ok(f"http://127.0.0.1:{settings.tsa_port}/health"),
        "identity": lambda: _http_ok(f"{with_stack_identity(settings).identity_url}/v1/health"),
        "api-server": lambda: _http_ok(f"http://127.0.0.1:{settings.airflow_port}/api/v2/monitor/health"),
    }
    for name in ("seaweedfs", REPLICA, "platform", "tsa", "identity", *AIRFLOW_COMPONENTS):
        entry = alive(settings, name)
        if entry is None:
            state = "not installed" if name == "platform" and not platform_available() else "stopped"
            components[name] = {"state": state, "pid": None, "port": None, "healthy": False}
            continue
        if name in checks:
            healthy = checks[name]()
        else:
            healthy = _monitor(settings).get(name.replace("-", "_"), {}).get("status") == "healthy"
        components[name] = {"state": "running", "pid": entry.pid, "port": entry.port, "healthy": healthy,
                            "log": entry.log}
    return {
        "state_dir": str(settings.state_dir),
        "s3_endpoint": settings.resolved_s3_endpoint,
        "buckets": {"work": settings.work_bucket, "archive": settings.archive_bucket},
        "archive_replica": ({"endpoint": settings.resolved_replica_endpoint, "bucket": settings.resolved_replica_bucket}
                            if settings.replica_enabled else None),
        "platform_url": settings.resolved_platform_url,
        "tsa_url": settings.resolved_tsa_url,
        "identity_url": with_stack_identity(settings).identity_url or "(none configured: seals are refused)",
        "airflow_home": str(settings.airflow_home),
        "airflow_url": f"http://127.0.0.1:{settings.airflow_port}",
        "logs": str(logs_dir(settings)),
        "components": components,
        "leftovers": [asdict(m) for m in leftovers(settings)],
    }


def init_services(settings: Settings, timeout: float = 120.0, out: Callable[[str], None] = print) -> None:
    """Prepare external services (production, compose's airflow-init): migrate the SealFlow database
    and create the buckets once the object store answers. Idempotent."""
    from sealflow import root

    require_identity_source(settings)
    with root.database(settings.resolved_database_url) as sessions:
        url = sessions.kw["bind"].url
    out(f"database migrated: {url.render_as_string(hide_password=True)}")
    deadline = time.monotonic() + timeout
    while not _s3_ready(settings):
        if time.monotonic() > deadline:
            raise StackError(f"object store {settings.resolved_s3_endpoint} did not answer within {timeout:.0f} s")
        time.sleep(1)
    ensure_buckets(s3_client(settings), settings)
    out(f"buckets ready at {settings.resolved_s3_endpoint}: {settings.work_bucket}, {settings.archive_bucket}")
    if settings.replica_enabled:
        while not _replica_ready(settings):
            if time.monotonic() > deadline:
                raise StackError(f"archive replica {settings.resolved_replica_endpoint} did not answer within "
                                 f"{timeout:.0f} s (or set SEALFLOW_REPLICA_ENABLED=false to archive to one store)")
            time.sleep(1)
        ensure_replica_bucket(replica_client(settings), settings)
        out(f"archive replica ready at {settings.resolved_replica_endpoint}: {settings.resolved_replica_bucket}")


_REAPER_SCRIPT = """
import sys
from pathlib import Path

import psutil

from kernel.settings import Settings
from sealflow.stack import down

try:
    psutil.Process(int(sys.argv[1])).wait()
except psutil.NoSuchProcess:
    pass
down(Settings(home=Path(sys.argv[2])), out=lambda _msg: None)
"""


def spawn_reaper(settings: Settings, watch_pid: int | None = None) -> int:
    """Stop this state directory's stack when process ``watch_pid`` (default: this one) ends, however it ends.

    For throw-away stacks (tests, benchmarks): a killed test run must not leave servers behind. If
    the owner already stopped the stack, the reaper finds no PID files and just exits.
    """
    argv = [sys.executable, "-c", _REAPER_SCRIPT, str(watch_pid or os.getpid()), str(settings.state_dir)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return proc.pid


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


def start_components(settings: Settings, names: Iterable[str], out: Callable[[str], None] = print) -> None:
    """Start only the named Airflow components (e.g. the api-server for keepers' answers in tests)."""
    wanted = set(names)
    check_ports(settings)
    with _stack_lock(settings):
        reap_leftovers(settings, out, wanted)
        prepare_airflow(settings, out)
        for comp in airflow_components(settings):
            if comp.name in wanted:
                _ensure(settings, comp, out)
