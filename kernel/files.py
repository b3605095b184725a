"""Writing files so that no reader ever sees half of one.

Decision: one atomic writer in the installation — :func:`gmpki.private_files.write_private`, at the
bottom of the house because the key store writes secrets and may import nothing of ours. This module
gives the layers above it under its general name, with the two differences of files that are not key
material: missing folders are made as usual (a report's folder belongs to the office, not only to us),
and the write is not fsynced (a batch writes every document; each can be made again from the inbox).
"""

from __future__ import annotations

from pathlib import Path

from gmpki.private_files import exclusive_lock, write_private

__all__ = ["exclusive_lock", "write_atomic"]  # exclusive_lock: the one cross-process lock of a file


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write to a temp file in the same folder, then rename over ``path``: all or nothing.

    The file is private (0600) unless ``mode`` says otherwise — a report meant for the office's group
    passes 0o640; the mode is set explicitly, so the process's umask neither widens nor narrows it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, data, mode=mode, durable=False)
