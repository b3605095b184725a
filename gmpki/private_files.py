"""Private files for key material: folders made 0700 from their first moment, files written 0600 and
atomically (a temporary in the same folder, fsynced, renamed over the target), and the exclusive lock
that serialises read-modify-write of such files across processes.

It lives at the bottom of the house because the key store, the demo CA and the escrow write secrets and
may import nothing of SealFlow's; the foundation's ``kernel.files`` builds on the same two functions, so
the installation has one way to write a private file.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and every missing parent with mode 0700 (``mkdir(parents=True)`` would make
    the parents 0755 whatever ``mode`` says): the state directory is private from its first moment."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue


def write_private(path: Path, data: bytes, *, exclusive: bool = False, mode: int = 0o600,
                  durable: bool = True) -> None:
    """Write ``data`` to ``path`` 0600, all or nothing — the one atomic writer of the installation
    (``kernel.files.write_atomic`` is this, for files that are not key material).

    ``exclusive``: refuse (FileExistsError) when ``path`` exists — for secrets made once (a KEK file, a
    generated PIN) that must never be replaced. ``mode``: another mode, set explicitly so that the umask
    neither widens nor narrows it (a public certificate, a report for the office's group). ``durable``:
    fsync before the rename, so that key material survives a crash; off for files that can be made again."""
    path = Path(path)
    make_private_dirs(path.parent)
    if exclusive and path.exists():
        raise FileExistsError(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode != 0o600:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process made it meanwhile; never overwrites
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (made empty if missing) for the block: one process of
    the machine at a time; the system releases it if the process dies. The folder must exist."""
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
