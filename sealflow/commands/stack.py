"""``sealflow stack up [--ui | --distributed] | down [--purge] | status [--json] | init | airflow-users``:
the stack on 127.0.0.1, and what a production install (compose) runs of it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from kernel.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("stack", help="start, stop or inspect the embedded stack (SeaweedFS, Airflow, "
                                                 "platform, TSA and identity simulators)")
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start what is not running (a second `up` does nothing)")
    up.add_argument("--ui", action="store_true", help="also run Airflow: api-server, scheduler, dag-processor, "
                                                      "triggerer (bound to 127.0.0.1)")
    up.add_argument("--distributed", action="store_true",
                    help="the production layout on this machine: Airflow on Celery with two workers, PostgreSQL "
                         "and Redis (SEALFLOW_CLUSTER_PG_DSN, SEALFLOW_CLUSTER_REDIS_URL), a SeaweedFS cluster "
                         "(docs/distributed.md)")
    up.set_defaults(handler=_up)
    down = actions.add_parser("down", help="stop exactly the processes `up` started (PID files)")
    down.add_argument("--purge", action="store_true",
                      help="distributed stack: also drop its PostgreSQL databases and Redis keys, forget its ports")
    down.set_defaults(handler=_down)
    status = actions.add_parser("status", help="each component with pid, port and health")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)
    init = actions.add_parser("init", help="prepare external services (production): migrate the SealFlow "
                                           "database, create the buckets")
    init.set_defaults(handler=_init)
    users = actions.add_parser("airflow-users", help="print the Airflow users (name:role,…: the registry's people "
                                                    "by role), making a password for each new one in the passwords "
                                                    "file; compose's API server runs it when it starts")
    users.set_defaults(handler=_airflow_users)


def _up(args: argparse.Namespace) -> int:
    from sealflow.exits import CheckFailed
    from sealflow.stack import StackError, airflow_login, up

    settings = get_settings()
    try:
        state = up(settings, ui=args.ui, distributed=args.distributed)
    except StackError as exc:
        raise CheckFailed(str(exc)) from exc
    print(f"S3 endpoint {state['s3_endpoint']} (buckets {state['buckets']['work']}, {state['buckets']['archive']})")
    if args.ui or args.distributed:
        user, password = airflow_login(settings)
        print(f"Airflow UI: {state['airflow_url']}  login: {user} / {password}")
    print(f"logs: {state['logs']}   stop with: sealflow stack down")
    if args.distributed:
        from sealflow.stack.cluster import env_file

        print(f"other sealflow commands on this stack: export SEALFLOW_CONFIG={env_file(settings)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from sealflow.stack import down
    from sealflow.stack.cluster_stores import purge

    down(get_settings())
    if args.purge:
        purge(get_settings())
    return 0


def format_status(state: dict[str, Any]) -> str:
    lines = [f"state dir {state['state_dir']}"]
    for name, comp in state["components"].items():
        if comp["state"] != "running":
            lines.append(f"  {name:<17} {comp['state']}")
            continue
        port = f"port {comp['port']}" if comp["port"] else ""
        health = "healthy" if comp["healthy"] else "NOT healthy"
        lines.append(f"  {name:<17} running  pid {comp['pid']:<8} {port:<11} {health}  log {comp['log']}")
    lines.append(f"S3 {state['s3_endpoint']}  platform {state['platform_url']}  Airflow {state['airflow_url']}")
    lines.append(f"identity register {state.get('identity_url', '')}")
    left = state.get("leftovers") or []
    if left:
        pids = ", ".join(f"{m['pid']} ({m['component']})" for m in left[:10])
        lines.append(f"LEFTOVER processes of crashed components: {pids} — stop them with `sealflow stack down`")
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    from sealflow.stack import status

    state = status(get_settings())
    print(json.dumps(state, indent=2) if args.json else format_status(state))
    return 0


def _init(_args: argparse.Namespace) -> int:
    from sealflow.exits import CheckFailed
    from sealflow.stack import StackError, init_services

    try:
        init_services(get_settings())
    except StackError as exc:
        raise CheckFailed(str(exc)) from exc
    return 0


def _airflow_users(_args: argparse.Namespace) -> int:
    """The value of the auth manager's users setting (``layout.AUTH_USERS_COMMAND``): what `up` gives its API
    server, for compose's to read when it starts. Passwords stay in the 0600 file, never printed."""
    from sealflow.stack.airflow_home import auth_users

    print(auth_users(get_settings()))
    return 0
