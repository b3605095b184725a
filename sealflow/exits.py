"""The two failures a ``sealflow`` command reports on purpose, and the exit code each maps to.

Commands raise them; ``sealflow.cli.main`` turns them into one line on stderr and the exit code. They
live apart from ``sealflow.cli`` so that the command modules (which the CLI imports to register them)
never import the CLI back.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or input named by the user: exit code 2."""


class CheckFailed(Exception):
    """A check the user asked for did not pass: exit code 1."""
