"""The ``sealflow`` command: a thin shell over the domain packages.

Each command group lives in ``sealflow/commands/<group>.py`` and exposes
``register(subparsers) -> None``; its handlers return an exit code.
Exit codes: 0 success, 1 a check failed (invalid document, broken chain...) or an unexpected
error, 2 usage error, 141 the reader of our output went away (``sealflow ... | head``).

The command line is quiet and exact: libraries (alembic, httpx, botocore) log only warnings
unless ``--verbose``; an unexpected error is one line and a line saying what to do next (after a
refused connection: look whether the stack runs), its traceback only with ``--debug``; a closed
pipe ends the command silently. A command that works on a SealFlow home refuses to run when none
is found (``SEALFLOW_HOME``, the settings file, or the current folder's ``var/`` when it exists)
rather than create an empty ``./var`` and answer "0 records"; only the commands that set a home
up (``demo``, ``stack up``, ``stack init``) may create one, and offline checks (``verify``,
``archive verify``, ``seal inspect``) need none.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from kernel.settings import StateNotPrivate, check_state, config_file, get_settings, home_source
from sealflow.exits import CheckFailed, UsageError

__all__ = ["CheckFailed", "UsageError", "build_parser", "main"]  # the errors are raised by the commands

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
    "backup",
)


# (command, action) pairs by what they need of a SealFlow home; every other command needs one found.
# (the drill makes a throw-away home of its own)
CREATES_HOME = {("demo", None), ("stack", "up"), ("stack", "init"), ("backup", "drill")}
NEEDS_NO_HOME = {("verify", None), ("archive", "verify"), ("seal", "inspect")}
DESCRIPTION = ("SealFlow: stamp certificates (电子证照) with electronic seals, verify them (验章), archive and file "
               "them. Every command has --help.")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sealflow", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print the libraries' INFO logs (alembic, httpx...)")
    parser.add_argument("--debug", action="store_true", help="DEBUG logs, and a traceback on unexpected errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:  # every command module ships with the CLI: a broken one fails loudly
        importlib.import_module(f"sealflow.commands.{name}").register(subparsers)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    root = logging.getLogger()
    for handler in list(root.handlers):  # a second main() in one process (tests) sets up anew
        root.removeHandler(handler)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    root.setLevel(level)


def _action(args: argparse.Namespace) -> str | None:
    """The sub-command's action (``batch status`` → ``status``), whatever its parser calls the field."""
    for name in (f"{args.command}_command", f"{args.command}_action", "action"):
        if isinstance(getattr(args, name, None), str):
            return getattr(args, name)
    return None


def _check_home(args: argparse.Namespace) -> None:
    key = (args.command, _action(args))
    if key in NEEDS_NO_HOME or (args.command, None) in NEEDS_NO_HOME or key in CREATES_HOME:
        return
    if (args.command, None) in CREATES_HOME or home_source() is not None:
        return
    raise UsageError(
        "no SealFlow home found: set SEALFLOW_HOME=/path/to/home, or put SEALFLOW_HOME=/path/to/home "
        f"in {config_file()}, or run from the folder holding var/ (made by `sealflow demo` or `sealflow stack up`)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        _check_home(args)
        check_state(get_settings())  # state dir 0700, databases and secrets 0600; umask 077 from here on
        code = int(handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not in the interpreter's last flush
        return code
    except StateNotPrivate as exc:
        print(f"sealflow: refused: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"sealflow: error: {exc}", file=sys.stderr)
        return 2
    except CheckFailed as exc:
        print(f"sealflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_left()
    except Exception as exc:
        if args.debug:
            raise
        hint = ("nothing answers there: is the stack running? `sealflow stack status` names what is stopped, "
                "`sealflow stack up --ui` starts it; run it again with --debug for the details"
                if _refused(exc) else  # a stopped stack is no mystery: say so, and where to look
                "run it again with --debug for the details; with --verbose for the logs")
        print(f"sealflow: unexpected error: {type(exc).__name__}: {_one_line(exc)}\nsealflow: {hint}",
              file=sys.stderr)
        return 1


def _refused(exc: BaseException) -> bool:
    """Whether a connection was refused somewhere down the chain (httpx, botocore and urllib3 each
    wrap the socket's ConnectionRefusedError in errors of their own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:300] + "…"


def _reader_left() -> int:
    """Our reader closed the pipe: say nothing, and point stdout at /dev/null so the interpreter's
    last flush at exit does not print "Exception ignored ... BrokenPipeError" either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
