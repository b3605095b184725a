"""The ``sealflow`` command: a thin shell over the domain packages.

Each command group lives in ``sealflow/commands/<group>.py`` and exposes
``register(subparsers) -> None``; its handlers return an exit code.
Exit codes: 0 success, 1 a check failed (invalid document, broken chain...), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from sealflow.settings import get_settings

COMMAND_MODULES = (
    "stack",
    "demo",
    "ca",
    "seal",
    "audit",
    "stamp",
    "verify",
    "batch",
    "archive",
    "filing",
    "kek",
)


class UsageError(Exception):
    """Bad arguments or input named by the user: exit code 2."""


class CheckFailed(Exception):
    """A check the user asked for did not pass: exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealflow", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"sealflow.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sealflow.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=get_settings().log_level, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except UsageError as exc:
        print(f"sealflow: error: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"sealflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
