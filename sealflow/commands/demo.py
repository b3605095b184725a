"""``sealflow demo``: start the embedded stack, run the jobs end to end, print where to look.

The demo is a list of steps (:data:`STEPS`); each step gets the shared :class:`DemoContext`, does
its work and adds lines to the summary. Later steps (the batch pipeline) are appended to the list.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.settings import Settings, get_settings, local_url


@dataclass
class DemoContext:
    settings: Settings
    summary: list[tuple[str, str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def note(self, label: str, value: str) -> None:
        self.summary.append((label, value))


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[DemoContext], None]


def _fail(message: str) -> None:
    from sealflow.exits import CheckFailed

    raise CheckFailed(message)


def step_stack(ctx: DemoContext) -> None:
    from sealflow.stack import StackError, up

    try:
        state = up(ctx.settings, out=lambda msg: print(f"    {msg}"))
    except StackError as exc:
        _fail(str(exc))
    ctx.data["stack"] = state
    ctx.note("object store", f"{state['s3_endpoint']} (buckets {state['buckets']['work']}, "
                             f"{state['buckets']['archive']} with Object Lock)")
    platform = state["components"]["platform"]
    ctx.note("platform simulator", state["platform_url"] if platform["state"] == "running" else platform["state"])
    ctx.note("identity register", state["identity_url"])


def run_dag_step(ctx: DemoContext, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one DAG with ``dag.test()`` in the stack's Airflow env; its output goes to a log file."""
    from sealflow.stack import logs_dir, run_dag_test

    log_path = logs_dir(ctx.settings) / f"demo-{dag_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = run_dag_test(ctx.settings, dag_id, conf)
    log_path.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result = {}
    if done.returncode != 0 or result.get("state") != "success":
        _fail(f"DAG {dag_id} did not succeed ({result or 'no result'}); full output in {log_path}")
    result["seconds"] = round(time.monotonic() - started, 1)
    result["log"] = str(log_path)
    print(f"    {dag_id}: {result['state']} in {result['seconds']} s (run {result['run_id']})")
    return result


def step_smoke(ctx: DemoContext) -> None:
    from kernel.objectstore import s3_client

    result = run_dag_step(ctx, "sealflow_smoke")
    key = "smoke/" + result["run_id"].replace(":", "_").replace("+", "_") + ".json"
    bucket = ctx.settings.work_bucket
    head = s3_client(ctx.settings).head_object(Bucket=bucket, Key=key)
    ctx.note("smoke DAG object", f"s3://{bucket}/{key} ({head['ContentLength']} bytes) at "
                                 f"{ctx.settings.resolved_s3_endpoint}")
    ctx.note("smoke DAG output", result["log"])


def _batch_steps() -> list[Step]:
    from sealflow.demo_batch import step_archive_and_file, step_batch, step_seal

    return [
        Step("make the demo seals (apply → reviews → make) and enrol the official seal for batches", step_seal),
        Step("run stamp_batch under the scheduler; the keeper approves with the texted code", step_batch),
        Step("archive_batch and file_records follow on their own (Assets): archive, then file", step_archive_and_file),
    ]


STEPS: list[Step] = [
    Step("start the embedded stack (SeaweedFS, Airflow home, platform, TSA and identity simulators)", step_stack),
    Step("run the smoke DAG (writes an object to the work bucket)", step_smoke),
    *_batch_steps(),
]


def command_line_note() -> list[tuple[str, str]]:
    """How the person who ran ``make demo`` gets ``sealflow`` on their PATH: it lives in the virtual
    environment the demo made, which their shell does not know about yet."""
    activate = Path(sys.executable).parent / "activate"
    if not activate.is_file():
        return []
    return [("command line", f". {activate}  (puts sealflow on your PATH; then: sealflow --help)")]


def summary_text(ctx: DemoContext) -> str:
    from sealflow.stack import DEMO_KEEPER, airflow_login, logs_dir

    user, password = airflow_login(ctx.settings)
    keeper, keeper_password = airflow_login(ctx.settings, DEMO_KEEPER)
    notes = [
        *ctx.summary,
        ("state directory", str(ctx.settings.state_dir)),
        ("stack logs", str(logs_dir(ctx.settings))),
        ("Airflow task logs", str(ctx.settings.airflow_home / "logs")),
        ("Airflow UI", f"{local_url(ctx.settings.airflow_port)}  login {user} / {password}  (running now; after "
                       f"a stack down: make ui, or sealflow stack up --ui)"),
        ("seal keeper (用章审批)", f"login {keeper} / {keeper_password}: approval requests are assigned to the "
                                   f"keeper alone; codes in {ctx.settings.resolved_sms_outbox / (keeper + '.txt')}"),
        ("stop everything", "make stack-down  (or: sealflow stack down)"),
        *command_line_note(),
    ]
    width = max(len(label) for label, _ in notes)
    return "\n".join(["", "SealFlow demo — summary", *(f"  {label:<{width}}  {value}" for label, value in notes)])


def run_demo(settings: Settings, steps: list[Step] | None = None) -> DemoContext:
    ctx = DemoContext(settings)
    chosen = STEPS if steps is None else steps
    for number, step in enumerate(chosen, 1):
        print(f"[{number}/{len(chosen)}] {step.title}", flush=True)
        step.run(ctx)
    return ctx


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="start the embedded stack, run the jobs, print where to look")
    parser.set_defaults(handler=_demo)


def _demo(_args: argparse.Namespace) -> int:
    started = time.monotonic()
    ctx = run_demo(get_settings())
    print(summary_text(ctx))
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s")
    if ctx.data.get("stamp_yourself"):
        print("\n" + "\n".join(ctx.data["stamp_yourself"]))
    return 0


__all__ = ["STEPS", "DemoContext", "Step", "run_dag_step", "run_demo"]
