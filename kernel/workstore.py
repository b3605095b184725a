"""The work store: where a batch's files live between tasks (received files, sealed files, provenance
notes, manifest, reports) — S3 in every deployment, so that two Celery workers on two machines see
the same files and a task's local disk is only scratch that may vanish.

Decisions:
- A narrow port (:class:`WorkStore`): bytes by key, and a *name* for an object (``s3://bucket/key``)
  that the database columns and messages carry. Domain code (``stamping/``, ``archive/``) receives a
  store; it never builds an S3 client.
- Two implementations, both real: :class:`S3WorkStore` (one boto3 client from ``kernel.objectstore``,
  reused for every call, bucket = ``settings.work_bucket``) is what the composition root always wires —
  the embedded stack through its SeaweedFS, so there is one code path; :class:`FolderWorkStore` keeps
  objects as files under a folder (atomic writes) and serves unit tests, nothing in production.
- No HEAD before a GET: :meth:`WorkStore.get_or_none` is one GET that answers ``None`` for a missing
  key. A PUT of one object is atomic in S3 (and ``write_atomic`` in a folder), which is what the
  "provenance note first, then the sealed file" order of ``stamping.batch.process`` relies on.
- A missing object is :class:`ObjectMissing`, a ``FileNotFoundError`` (errno ENOENT): for the batch
  steps it is the storage's fault, like a lost file on disk was, so the task is retried, not the
  document failed. Any other S3 failure is left as botocore raised it (``process.is_infrastructure``
  knows botocore's exceptions).
- Input from ``s3://bucket/prefix/`` (any bucket the credentials can read) is copied into a local
  scratch folder by :meth:`WorkStore.fetch_prefix`, so the batch's manifest and file checks run on it
  exactly as on a local folder (one check path). A key that would land outside the folder (``..``, an
  absolute or empty component) is never written; an object over the size cap is not downloaded — a
  sparse file of its size stands for it, so the size check refuses it by name.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from kernel.files import write_atomic

# Threads that move a batch's objects (uploads at ingest, downloads at archiving): S3 calls wait on the
# network, not the CPU; boto3's default pool holds 10 connections, so more threads would queue for one.
TRANSFER_THREADS = 8
# At most this many objects are read from an s3:// batch prefix (a manifest lists far fewer; a prefix
# holding more is a mistake, not a batch).
MAX_SOURCE_OBJECTS = 200_000


class ObjectMissing(FileNotFoundError):
    """No object under that key (the work store lost it, or it was never written)."""

    def __init__(self, name: str) -> None:
        super().__init__(errno.ENOENT, "no such object in the work store", name)


@runtime_checkable
class WorkStore(Protocol):
    """Bytes by key in the work bucket (keys are ``/``-separated, e.g. ``batches/<id>/sealed/<sm3>.pdf``)."""

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` atomically (a reader sees the old object or the new, never a part)."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; :class:`ObjectMissing` when there is none."""
        ...

    def get_or_none(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none — one request, no HEAD first."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object (nothing happens when there is none)."""
        ...

    def delete_many(self, keys: list[str]) -> None:
        """Remove several objects (none missing is an error), in parallel where the store gains from it."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key starting with ``prefix``, in key order."""
        ...

    def name(self, key: str) -> str:
        """The object's name for the database and messages (``s3://bucket/key``)."""
        ...

    def key_of(self, name: str) -> str:
        """The key of a name made by :meth:`name`; ValueError for a name of another store."""
        ...

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Write several objects, in parallel where the store gains from it."""
        ...

    def fetch_prefix(self, location: str, into: Path, *, max_object_bytes: int) -> int:
        """Copy the objects under ``s3://bucket/prefix/`` into the folder ``into`` (see the module
        docstring for what is never written); returns how many objects were listed."""
        ...


@contextmanager
def prefetch(store: WorkStore, keys: list[str | None], window: int = TRANSFER_THREADS
             ) -> Iterator[Callable[[int], bytes | None]]:
    """Read ``keys`` ahead of use, ``window`` objects at a time, from a small thread pool: a step that works
    through a chunk's documents in order waits for the store once, not once per document (a GET's
    latency is far longer than its CPU). ``get(i)`` returns the bytes of ``keys[i]`` (None for a None key)
    or raises what reading it raised; at most ``window`` objects are held in memory."""
    pool = ThreadPoolExecutor(max_workers=max(1, window))
    pending: dict[int, Future] = {}

    def ask(i: int) -> None:
        if i < len(keys) and keys[i] is not None:
            pending[i] = pool.submit(store.get, keys[i])

    def get(i: int) -> bytes | None:
        ask(i + window)
        future = pending.pop(i, None)
        return None if future is None else future.result()

    for i in range(window):
        ask(i)
    try:
        yield get
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def split_s3(location: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` → (bucket, prefix with a trailing ``/`` unless empty)."""
    parsed = urlparse(location)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"{location!r} is not an s3://bucket/prefix location")
    prefix = parsed.path.lstrip("/")
    return parsed.netloc, (prefix.rstrip("/") + "/") if prefix else ""


def safe_relative(key: str, prefix: str) -> PurePosixPath | None:
    """Where an object of a prefix goes inside a local folder; None for a key that must not be written
    (a folder marker, ``..``, ``.``, an empty or absolute component)."""
    relative = key[len(prefix):]
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts) or "\x00" in relative:
        return None
    return PurePosixPath(*parts)


def _place(into: Path, relative: PurePosixPath) -> Path | None:
    """The local path for ``relative``, its folders made; None when a file already stands where a folder
    must go (``a.pdf`` and ``a.pdf/b.pdf`` in one prefix): that object is left out, the check names it."""
    target = into.joinpath(*relative.parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        return None
    return None if target.exists() else target


def _stand_in(target: Path, size: int) -> None:
    """A sparse file of ``size`` bytes for an object too large to download: the size check refuses it."""
    with open(target, "wb") as fh:
        fh.truncate(size)


class _MissingIsAnError:
    """``get`` of both stores: ``get_or_none``'s one request, a missing object raised as :class:`ObjectMissing`."""

    def get(self, key: str) -> bytes:
        data = self.get_or_none(key)  # type: ignore[attr-defined]
        if data is None:
            raise ObjectMissing(self.name(key))  # type: ignore[attr-defined]
        return data


class S3WorkStore(_MissingIsAnError):
    """The work store in an S3 bucket, through one boto3 client (its connection pool is reused)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_or_none(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_many(self, keys: list[str]) -> None:
        _in_parallel(self.delete, keys)

    def keys(self, prefix: str) -> Iterator[str]:
        yield from _list_keys(self.client, self.bucket, prefix)

    def name(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def key_of(self, name: str) -> str:
        head = f"s3://{self.bucket}/"
        if not name.startswith(head):
            raise ValueError(f"{name!r} is not an object of the work bucket {self.bucket}")
        return name[len(head):]

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        _in_parallel(lambda item: self.put(*item), items)

    def fetch_prefix(self, location: str, into: Path, *, max_object_bytes: int) -> int:
        bucket, prefix = split_s3(location)
        wanted: list[tuple[str, Path]] = []
        listed = 0
        for key, size in _list_sizes(self.client, bucket, prefix):
            listed += 1
            if listed > MAX_SOURCE_OBJECTS:
                raise ValueError(f"{location} holds more than {MAX_SOURCE_OBJECTS} objects: not a batch")
            relative = safe_relative(key, prefix)
            target = _place(into, relative) if relative is not None else None
            if target is None:
                continue
            if size > max_object_bytes:
                _stand_in(target, size)
            else:
                wanted.append((key, target))

        def download(item: tuple[str, Path]) -> None:
            key, target = item
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            data = body.read(max_object_bytes + 1)  # grown since listed: still no more than the cap + 1
            body.close()
            target.write_bytes(data)

        with ThreadPoolExecutor(max_workers=max(1, min(TRANSFER_THREADS, len(wanted)))) as pool:
            for _ in pool.map(download, wanted):
                pass
        return listed


def _in_parallel(call: Callable[[Any], None], items: list) -> None:
    """``call`` on every item, from a small thread pool when there are several (S3 calls wait on the network);
    the first failure is raised once all have been tried or cancelled."""
    if len(items) < 2:
        for item in items:
            call(item)
        return
    with ThreadPoolExecutor(max_workers=min(TRANSFER_THREADS, len(items))) as pool:
        for _ in pool.map(call, items):  # re-raises the first failure
            pass


def _is_missing(exc: BaseException) -> bool:
    """Whether a botocore error says "no such key" (404), not a failing service."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _list_sizes(client: Any, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []) or []:
            yield item["Key"], int(item.get("Size", 0))


def _list_keys(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    for key, _size in _list_sizes(client, bucket, prefix):
        yield key


class FolderWorkStore(_MissingIsAnError):
    """The work store as files under ``root`` (unit tests; nothing in production wires it).

    ``sources``: the folder standing for an ``s3://`` bucket in :meth:`fetch_prefix` (bucket name →
    folder), so a test reads an "S3" batch prefix without a server.
    """

    def __init__(self, root: Path, sources: dict[str, Path] | None = None) -> None:
        self.root = Path(root)
        self.sources = dict(sources or {})

    def _path(self, key: str) -> Path:
        relative = safe_relative(key, "")
        if relative is None:
            raise ValueError(f"{key!r} is not a valid object key")
        return self.root.joinpath(*relative.parts)

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self._path(key), data)

    def get_or_none(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.delete(key)

    def keys(self, prefix: str) -> Iterator[str]:
        if not self.root.is_dir():
            return
        found = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and not p.name.endswith(".part"))
        yield from (k for k in found if k.startswith(prefix))

    def name(self, key: str) -> str:
        trail = "/" if key.endswith("/") else ""  # a prefix (a batch's folder) keeps its slash
        return self._path(key.rstrip("/")).absolute().as_uri() + trail

    def key_of(self, name: str) -> str:
        parsed = urlparse(name)
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else None
        root = self.root.absolute()
        if path is None or path == root or not path.is_relative_to(root):
            raise ValueError(f"{name!r} is not an object of the work folder {root}")
        return path.relative_to(root).as_posix() + ("/" if name.endswith("/") else "")

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        for key, data in items:
            self.put(key, data)

    def fetch_prefix(self, location: str, into: Path, *, max_object_bytes: int) -> int:
        bucket, prefix = split_s3(location)
        if bucket not in self.sources:
            raise ObjectMissing(location)
        base = self.sources[bucket]
        listed = 0
        for path in sorted(p for p in base.rglob("*") if p.is_file() and not p.is_symlink()):  # S3 has no links
            key = path.relative_to(base).as_posix()
            if not key.startswith(prefix):
                continue
            listed += 1
            relative = safe_relative(key, prefix)
            target = _place(into, relative) if relative is not None else None
            if target is None:
                continue
            size = os.lstat(path).st_size
            if size > max_object_bytes:
                _stand_in(target, size)
            else:
                target.write_bytes(path.read_bytes())
        return listed
