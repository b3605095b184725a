"""A batch's way through SealFlow, as plain functions the DAG (or the CLI) calls.

Every step is idempotent and keyed by the batch id and the document's file name: a rerun of a
step, or of the whole run, finds finished work in the database and moves on, so no document is
ever stamped twice. Only references (batch id, chunk numbers, counts) leave these functions.

Where a batch's files live: in the work store (``kernel.workstore``, the work bucket in S3), under
``batches/<batch_id>/`` (the layout is ``stamping.batch.keys``) — received files, sealed files,
provenance notes, manifest and reports. Every step reads what it needs from there, so the steps of one
batch may run on different machines; a task's local disk is only scratch (an ``s3://`` source is
downloaded into a temporary folder to be checked, and that folder is removed when ingest ends). The
database columns ``Batch.work_dir`` and ``BatchDocument.output_path`` hold the store's names
(``s3://bucket/batches/<id>/...``).

Two kinds of failure, kept apart on purpose: a *document* that cannot be sealed (no anchor text,
a broken PDF) is marked ``failed`` with its reason and the batch goes on; a failing *machine*
(disk full, permission denied, I/O error, object store or database unreachable, an object the work store
lost) is never the
document's fault, so :class:`InfrastructureError` is raised after the work already done is
committed — the task fails, Airflow retries it, and the untouched documents stay ``accepted``
for that retry. A batch whose accepted documents are not all verified or failed is *incomplete*
(:class:`BatchIncomplete`): its report says which documents wait and which chunk to clear.

A third kind: the seal's registry refuses its use when the stamping step unlocks the key, though the
use was approved (the identity register no longer confirms the seal's unit or people, the seal was
revoked, the key is locked). That is a decision, not a machine fault — retrying changes nothing — so
every document of the batch still waiting becomes ``refused`` with the registry's reason
(:class:`SealUseRefused`), instead of waiting ``accepted`` until the retries run out.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from gmpki.gm.sm3 import sm3
from gmpki.keys.signer import RecordingSigner, Signer
from kernel.db import transaction
from kernel.workstore import WorkStore, prefetch
from stamping.batch import keys
from stamping.batch.manifest import (
    MAX_DOCUMENT_BYTES,
    MAX_MANIFEST_BYTES,
    ManifestError,
    NotADocument,
    Rejection,
    check_manifest,
    open_document,
    read_manifest,
)
from stamping.batch.models import Batch, BatchDocument
from stamping.batch.report import PENDING_STATES, state_counts, write_report
from stamping.placement import Placement
from stamping.verdict.result import DocumentResult, SealStatusLookup, Verdict
from stamping.verify.report import verdict_reasons

log = logging.getLogger(__name__)

MANIFEST_NAMES = ("manifest.csv", "manifest.json")


class BatchError(Exception):
    """The batch as a whole cannot go on; the message names the batch and the reason."""


class InfrastructureError(BatchError):
    """The machine failed (disk, permissions, I/O, object store, database), not the document: retry the task."""


class BatchIncomplete(BatchError):
    """Some accepted documents are neither verified nor failed: a chunk did not finish."""


class SealUseRefused(BatchError):
    """The registry refused the seal's use at stamping time; the batch's waiting documents are refused."""


# errno values that say "the machine", never "the document". Any other OSError with an errno is
# treated the same way (see is_infrastructure); this set only documents the ones seen in practice.
INFRASTRUCTURE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EPERM, errno.EACCES, errno.EIO,
                                   errno.EROFS, errno.EMFILE, errno.ENFILE, errno.ENOMEM})
# Libraries whose exceptions mean a service is unreachable or failing (S3, HTTP, the database).
_SERVICE_MODULES = ("botocore", "boto3", "s3transfer", "urllib3", "sqlalchemy.exc", "psycopg2")


def is_infrastructure(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failing machine or service rather than a bad document.

    An ``OSError`` carrying an errno is the operating system talking (ENOSPC, EIO, EPERM...); parsers
    that subclass ``OSError`` for bad content (Pillow's UnidentifiedImageError) carry none.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InfrastructureError | MemoryError):
            return True
        if isinstance(current, OSError) and current.errno is not None:
            return True
        if type(current).__module__.startswith(_SERVICE_MODULES):
            return True
        current = current.__cause__ or current.__context__
    return False


def describe_error(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    return f"{type(exc).__name__}{f' ({name})' if name else ''}: {exc}"


class UseRecorder(Protocol):
    """Writes one audit entry per use of a seal (per document) in the caller's transaction;
    ``documents``: (file, SM3 hex of the sealed file, SM3 hex of the signature value or "")."""

    def __call__(self, session: Session, *, es_id: str, actor: str, batch_id: str,
                 documents: list[tuple[str, ...]]) -> None: ...



SignerProvider = Callable[[str], tuple[Signer, bytes]]  # es_id → (signer, SESeal DER)
# (document, SESeal DER, signer, placement, the document's path for messages, batch options) → sealed bytes
Stamper = Callable[[bytes, bytes, Signer, Placement, str, dict], bytes]
Verifier = Callable[[bytes, str], DocumentResult]


@dataclass
class BatchTools:
    """What the steps need from the rest of SealFlow; built once per task by the caller."""

    session_factory: sessionmaker[Session]
    store: WorkStore  # the work bucket (S3; a folder in unit tests): every file of a batch lives there
    stampers: dict[str, Stamper] = field(default_factory=dict)  # "pdf"/"ofd" → stamp function
    verifiers: dict[str, Verifier] = field(default_factory=dict)
    signer_provider: SignerProvider | None = None
    record_uses: UseRecorder | None = None
    status_lookup: SealStatusLookup | None = None
    # Entered around 验章 of a chunk: the registry reads each seal's status history once per chunk.
    status_snapshot: Callable[[], AbstractContextManager] | None = None
    # Where the office reads batch reports (``SEALFLOW_REPORTS_DIR``); None: only in the work store.
    reports_dir: Path | None = None
    # Where a task's scratch folders are made (None: the system's temporary folder); each is removed
    # when its step ends — nothing a later task needs is ever left there.
    scratch_root: Path | None = None


def _since(started: float) -> float:
    """Seconds spent in a step (what the pipeline benchmark sets against the task's duration)."""
    return round(time.perf_counter() - started, 4)


def _now() -> datetime:
    return datetime.now(UTC)


def find_manifest(folder: Path, shown: str = "") -> Path:
    for name in MANIFEST_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise BatchError(f"{shown or folder}: no manifest.csv or manifest.json in the batch folder")


@contextmanager
def scratch(tools: BatchTools, purpose: str) -> Iterator[Path]:
    """A private temporary folder for one step, removed when the step ends (even when it fails)."""
    if tools.scratch_root is not None:
        tools.scratch_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"sealflow-{purpose}-", dir=tools.scratch_root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# From this many documents a batch is cut into at least two chunks, so both of a small machine's cores stamp.
SPLIT_FROM = 200


def chunk_length(total: int, largest: int) -> int:
    """Documents per chunk: as few chunks as ``largest`` allows (each chunk is a task, with a task's start-up
    cost), but at least two from :data:`SPLIT_FROM` documents, and chunks of equal length."""
    chunks = max(1, -(-total // max(1, largest)))
    if total >= SPLIT_FROM:
        chunks = max(chunks, 2)
    return max(1, -(-total // chunks))


# Received files are uploaded in windows of this many bytes (in parallel inside a window), so a batch of
# 10,000 large documents never sits in memory at once.
UPLOAD_WINDOW_BYTES = 64 * 1024 * 1024


def ingest(tools: BatchTools, *, batch_id: str, source: Path | str, es_id: str, requester: str,
           placement: Placement, options: dict | None = None, chunk_size: int = 1000) -> dict:
    """Check the manifest and files of a batch folder (or ``s3://bucket/prefix/``) and register its documents.

    Accepted documents are uploaded to the work store and assigned to chunks; the others are
    quarantined with their reasons. An ``s3://`` source is downloaded into a scratch folder first
    (objects over the size cap are not: see ``kernel.workstore``) and checked exactly like a folder;
    the scratch folder is removed afterwards. A second call for the same batch changes nothing.
    """
    with transaction(tools.session_factory) as session:
        existing = session.get(Batch, batch_id)
        if existing is not None and existing.status != "claimed":  # "claimed": a run holds the id, nothing read yet
            return state_counts(session, batch_id)
    if isinstance(source, str) and source.startswith("s3://"):
        with scratch(tools, "ingest") as folder:
            try:
                tools.store.fetch_prefix(source, folder, max_object_bytes=max(MAX_DOCUMENT_BYTES, MAX_MANIFEST_BYTES))
            except ValueError as exc:
                raise BatchError(f"batch {batch_id}: {exc}") from None
            return _ingest_folder(tools, batch_id, folder, source, es_id, requester, placement, options, chunk_size)
    return _ingest_folder(tools, batch_id, Path(source), str(source), es_id, requester, placement, options,
                          chunk_size)


def _ingest_folder(tools: BatchTools, batch_id: str, folder: Path, shown: str, es_id: str, requester: str,
                   placement: Placement, options: dict | None, chunk_size: int) -> dict:
    manifest_path = find_manifest(folder, shown)
    try:
        rows = read_manifest(manifest_path)
    except ManifestError as exc:
        raise BatchError(f"batch {batch_id}: {str(exc).replace(str(folder), shown)}") from None
    checked = check_manifest(rows, folder)
    docs: list[dict] = []
    accepted = 0
    per_chunk = chunk_length(len(checked.accepted), chunk_size)
    uploads = _Uploads(tools.store)
    for record in checked.accepted:
        try:  # the file was checked a moment ago; if it was swapped since, it is quarantined, not read
            with open_document(folder, record.file) as fh:
                data = fh.read(MAX_DOCUMENT_BYTES + 1)
        except NotADocument as exc:
            checked.rejected.append(Rejection(record.row, record.file, [str(exc)], said={
                "licence_number": record.licence_number, "holder_name": record.holder_name}))
            continue
        digest = sm3(data).hex()
        uploads.add(keys.input_key(batch_id, digest), data)  # the same bytes twice: stored once
        docs.append(_document_row(batch_id, record.file, record.row, format=record.format,
                                  chunk=accepted // per_chunk, record=record.to_dict(), state="accepted",
                                  input_sm3=digest))
        accepted += 1
    for rejection in checked.rejected:
        docs.append(_document_row(batch_id, rejection.file or f"(row {rejection.row})", rejection.row,
                                  state="quarantined", reasons=rejection.reasons, record=rejection.said))
    with open_document(manifest_path.parent, manifest_path.name) as fh:
        uploads.add(keys.batch_file_key(batch_id, manifest_path.name), fh.read(MAX_MANIFEST_BYTES + 1))
    uploads.flush()  # every received file is in the store before a document is registered as accepted
    with transaction(tools.session_factory) as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            batch = Batch(batch_id=batch_id, created_at=_now(), report={})
            session.add(batch)
        batch.source, batch.es_id, batch.requester = shown, es_id, requester
        batch.work_dir = tools.store.name(keys.batch_prefix(batch_id))
        batch.placement, batch.options, batch.status = placement.to_dict(), options or {}, "ingested"
        session.flush()
        if docs:  # one executemany: a 10,000-document batch as ORM objects costs seconds of unit-of-work
            session.execute(insert(BatchDocument), docs)
    with transaction(tools.session_factory) as session:
        return state_counts(session, batch_id)


class _Uploads:
    """Received files on their way to the store: deduplicated by key, written a window at a time."""

    def __init__(self, store: WorkStore) -> None:
        self.store = store
        self.pending: dict[str, bytes] = {}
        self.seen: set[str] = set()
        self.size = 0

    def add(self, key: str, data: bytes) -> None:
        if key in self.seen:
            return
        self.seen.add(key)
        self.pending[key] = data
        self.size += len(data)
        if self.size >= UPLOAD_WINDOW_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.put_many(list(self.pending.items()))
        self.pending, self.size = {}, 0


def _document_row(batch_id: str, file: str, row: int, *, state: str, format: str = "", chunk: int = -1,
                  record: dict | None = None, reasons: list[str] | None = None, input_sm3: str = "") -> dict:
    return {"batch_id": batch_id, "file": file, "row": row, "format": format, "chunk": chunk,
            "record": record or {}, "state": state, "reasons": reasons or [], "input_sm3": input_sm3,
            "output_path": "", "output_sm3": "", "verification": {}}


def chunks(tools: BatchTools, batch_id: str) -> list[int]:
    """The chunk numbers of the batch's accepted documents (what the DAG maps over)."""
    with tools.session_factory() as session:
        rows = session.scalars(
            select(BatchDocument.chunk).where(BatchDocument.batch_id == batch_id, BatchDocument.chunk >= 0)
            .distinct().order_by(BatchDocument.chunk)
        )
        return list(rows)


def _load_batch(session: Session, batch_id: str) -> Batch:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise BatchError(f"batch {batch_id} is not registered: run ingest first")
    return batch


def stamp_chunk(tools: BatchTools, batch_id: str, chunk: int, actor: str) -> dict:
    """Seal every accepted document of one chunk that is not sealed yet.

    A sealed file is written to the work store (one atomic PUT) before its state is committed; when a
    killed run left a sealed file whose state was not committed, that file is adopted (after it
    verifies) instead of being sealed a second time. The batch's sealed keys are listed once per chunk,
    so a document with nothing left over costs no look-up of its own.
    """
    if tools.signer_provider is None:
        raise BatchError("no signer provider configured")
    started = time.perf_counter()
    with tools.session_factory() as session:
        batch = _load_batch(session, batch_id)
        es_id, placement = batch.es_id, Placement.from_dict(batch.placement)
        options = dict(batch.options or {})
        todo = list(session.scalars(select(BatchDocument).where(
            BatchDocument.batch_id == batch_id, BatchDocument.chunk == chunk,
            BatchDocument.state == "accepted")))
    if not todo:
        return {"chunk": chunk, "stamped": 0, "failed": 0, "seconds": _since(started)}
    signer, seal_der = _unlock(tools, batch_id, es_id, chunk)
    signer = RecordingSigner(signer)  # the audit entry of each use names the signature made
    stamped: list[tuple[int, str, str, str, str]] = []
    failed: list[tuple[int, str]] = []
    broken: BaseException | None = None
    try:
        left_over = set(tools.store.keys(keys.sealed_prefix(batch_id)))  # sealed by a killed run, not committed
    except Exception as exc:
        if not is_infrastructure(exc):
            raise
        left_over, broken = set(), exc
    inputs = [keys.input_key(batch_id, doc.input_sm3) for doc in todo]
    with prefetch(tools.store, inputs if broken is None else []) as received:  # GETs ahead of the stamping
        for n, doc in enumerate(todo if broken is None else []):
            out = keys.sealed_key(doc)
            signer.last = None
            try:
                data, adopted_signature = _adopt_or_stamp(tools, doc, out, out in left_over, seal_der, signer,
                                                          placement, options, lambda n=n: received(n))
            except Exception as exc:
                if is_infrastructure(exc):  # the machine, not the document: stop, keep what is done, retry
                    broken = exc
                    break
                failed.append((doc.id, f"stamping failed: {type(exc).__name__}: {exc}"))
                continue
            signature_sm3 = sm3(signer.last).hex() if signer.last is not None else adopted_signature
            stamped.append((doc.id, doc.file, tools.store.name(out), sm3(data).hex(), signature_sm3))
    _commit_stamping(tools, batch_id, es_id, actor, stamped, failed)
    log.info("batch %s chunk %d: %d stamped, %d failed", batch_id, chunk, len(stamped), len(failed))
    if broken is not None:
        left = len(todo) - len(stamped) - len(failed)
        raise InfrastructureError(
            f"batch {batch_id} chunk {chunk}: {describe_error(broken)} — {len(stamped)} documents sealed and "
            f"kept, {left} left as accepted for the retry; fix the cause (the work store's S3, free space, "
            f"permissions) "
            f"and let Airflow retry, or clear stamp_chunk[{chunk}]") from broken
    return {"chunk": chunk, "stamped": len(stamped), "failed": len(failed), "seconds": _since(started)}


def _unlock(tools: BatchTools, batch_id: str, es_id: str, chunk: int) -> tuple[Signer, bytes]:
    """The seal's signer; a refusal by the registry refuses the batch's waiting documents (see the module
    docstring), a register that cannot be asked or a concurrent change is left to the task's retry."""
    from stamping.registry.errors import ConcurrentChange, IdentityRegisterUnavailable, RegistryError

    assert tools.signer_provider is not None
    try:
        return tools.signer_provider(es_id)
    except (IdentityRegisterUnavailable, ConcurrentChange) as exc:
        raise InfrastructureError(f"batch {batch_id} chunk {chunk}: {exc} — nothing sealed, the documents wait as "
                                  f"accepted for the retry") from exc
    except RegistryError as exc:
        reason = f"seal {es_id} not used: at stamping time {exc}"
        refused = refuse_waiting(tools, batch_id, reason)
        raise SealUseRefused(f"batch {batch_id}: {reason} — {refused} waiting document(s) refused, none sealed "
                             f"by this step; submit the batch again once the cause is fixed") from exc


def refuse_waiting(tools: BatchTools, batch_id: str, reason: str) -> int:
    """Refuse every document of the batch still waiting to be sealed (``accepted``) with ``reason``; when none
    of its documents was sealed, the batch is refused as a whole. Returns how many were refused."""
    with transaction(tools.session_factory) as session:
        refused = session.execute(update(BatchDocument).where(
            BatchDocument.batch_id == batch_id, BatchDocument.state == "accepted")
            .values(state="refused", reasons=[reason]).execution_options(synchronize_session=False)).rowcount
        sealed = session.scalar(select(BatchDocument.id).where(  # a sealed file, whatever 验章 said of it
            BatchDocument.batch_id == batch_id, BatchDocument.output_sm3 != "").limit(1))
        if sealed is None:
            session.execute(update(Batch).where(Batch.batch_id == batch_id).values(status="refused"))
    log.warning("batch %s: %d waiting document(s) refused: %s", batch_id, refused, reason)
    return refused


def _commit_stamping(tools: BatchTools, batch_id: str, es_id: str, actor: str,
                     stamped: list[tuple[int, str, str, str, str]], failed: list[tuple[int, str]]) -> None:
    """One transaction: the sealed documents' states, their seal.use entries, the failed ones."""
    if not stamped and not failed:
        return
    with transaction(tools.session_factory) as session:
        now = _now()
        # One executemany per kind of outcome (ORM bulk UPDATE by primary key), not a statement per document.
        if stamped:
            session.execute(update(BatchDocument), [
                {"id": doc_id, "state": "stamped", "output_path": out_path, "output_sm3": digest, "stamped_at": now}
                for doc_id, _file, out_path, digest, _sig in stamped])
        if failed:
            session.execute(update(BatchDocument), [
                {"id": doc_id, "state": "failed", "reasons": [reason]} for doc_id, reason in failed])
        if tools.record_uses is not None and stamped:
            tools.record_uses(session, es_id=es_id, actor=actor, batch_id=batch_id,
                              documents=[(f, d, sig) for _i, f, _o, d, sig in stamped])


def _note(tools: BatchTools, doc: BatchDocument) -> dict:
    """The provenance note binding this document's sealed file to its input ({} when there is none)."""
    raw = tools.store.get_or_none(keys.note_key(doc))
    try:
        note = json.loads(raw) if raw is not None else {}
    except ValueError:
        return {}
    return note if isinstance(note, dict) else {}


def _adoptable(doc: BatchDocument, existing: bytes, note: dict) -> bool:
    """A sealed file left by an interrupted run is adopted only if this batch made it from this
    document's input: its provenance note names the batch, the input's SM3 and the file's SM3."""
    return (note.get("batch_id") == doc.batch_id and note.get("input_sm3") == doc.input_sm3
            and note.get("row") == doc.row and note.get("output_sm3") == sm3(existing).hex())


def _adopt_or_stamp(tools: BatchTools, doc: BatchDocument, out: str, maybe_there: bool, seal_der: bytes,
                    signer: Signer, placement: Placement, options: dict,
                    received: Callable[[], bytes | None]) -> tuple[bytes, str]:
    """The sealed bytes, and for an adopted file the SM3 of the signature value this batch made (from
    its provenance note; "" for a file sealed now: the RecordingSigner has it). ``out`` is the sealed
    object's key; ``maybe_there``: the chunk's listing showed it (only then is it read); ``received``:
    the received copy, read ahead by the chunk."""
    store = tools.store
    existing = store.get_or_none(out) if maybe_there else None
    if existing is not None:
        note = _note(tools, doc)
        if _adoptable(doc, existing, note):
            result = tools.verifiers[doc.format](existing, doc.file)
            if result.intact and result.signatures:
                log.info("adopting %s sealed by an interrupted run", doc.file)
                signature = note.get("signature_sm3")
                return existing, signature if isinstance(signature, str) else ""
        store.delete(out)
    source = received()
    if source is None or sm3(source).hex() != doc.input_sm3:
        raise BatchError(f"{doc.file}: the received copy changed after ingest")
    sealed = tools.stampers[doc.format](source, seal_der, signer, placement, doc.file, options)
    # The note first, then the file (each one atomic PUT): a crash between the two leaves a note no
    # file matches (re-sealed by the retry), never a sealed file without its note.
    made = getattr(signer, "last", None)  # the RecordingSigner's signature: named by the audited use
    note = {"batch_id": doc.batch_id, "input_sm3": doc.input_sm3, "row": doc.row, "file": doc.file,
            "output_sm3": sm3(sealed).hex(), "signature_sm3": sm3(made).hex() if made else ""}
    store.put(keys.note_key(doc), json.dumps(note).encode())
    store.put(out, sealed)
    return sealed, ""


def verify_chunk(tools: BatchTools, batch_id: str, chunk: int) -> dict:
    """Independent 验章 of every stamped document of one chunk: verified, or failed with reasons."""
    started = time.perf_counter()
    with tools.session_factory() as session:
        todo = list(session.scalars(select(BatchDocument).where(
            BatchDocument.batch_id == batch_id, BatchDocument.chunk == chunk,
            BatchDocument.state == "stamped")))
    updates: list[dict] = []
    names = [_key_or_none(tools.store, doc.output_path) for doc in todo]
    with (tools.status_snapshot or nullcontext)(), prefetch(tools.store, names) as sealed:  # GETs read ahead
        for n, doc in enumerate(todo):
            try:
                updates.append(_verify_one(tools, doc, names[n], lambda n=n: sealed(n)))
            except Exception as exc:
                if not is_infrastructure(exc):
                    raise
                _commit_verification(tools, updates)  # keep what is verified; the rest waits for the retry
                raise InfrastructureError(
                    f"batch {batch_id} chunk {chunk}: {describe_error(exc)} while verifying {doc.file}; "
                    f"{len(updates)} documents verified and kept — Airflow retries verify_chunk[{chunk}]") from exc
    _commit_verification(tools, updates)
    ok = sum(1 for u in updates if u["state"] == "verified")
    return {"chunk": chunk, "verified": ok, "failed": len(updates) - ok, "seconds": _since(started)}


def _key_or_none(store: WorkStore, name: str) -> str | None:
    try:
        return store.key_of(name)
    except ValueError:
        return None


def _verify_one(tools: BatchTools, doc: BatchDocument, key: str | None, sealed: Callable[[], bytes | None]) -> dict:
    if key is None:  # a name of another store: nothing this step can read
        return {"id": doc.id, "state": "failed", "verification": {},
                "reasons": [f"sealed file not in the work store: {doc.output_path!r}"]}
    data = sealed()  # missing: ObjectMissing, the storage's fault — the task is retried
    assert data is not None
    if sm3(data).hex() != doc.output_sm3:
        return {"id": doc.id, "state": "failed", "reasons": ["sealed file changed after stamping"],
                "verification": {}}
    # The document's own name (as the stamper was given it): the result is kept, and the archive's 四性检测
    # matches its path with the file it archives (GD-1-11), not with the object's key.
    result = tools.verifiers[doc.format](data, doc.file)
    summary = result.to_json()
    if result.verdict == Verdict.VALID:  # batches accept only valid: warnings fail the document too
        return {"id": doc.id, "state": "verified", "reasons": [], "verification": summary}
    return {"id": doc.id, "state": "failed", "reasons": verdict_reasons(result), "verification": summary}


def _commit_verification(tools: BatchTools, updates: list[dict]) -> None:
    if updates:
        with transaction(tools.session_factory) as session:
            now = _now()
            session.execute(update(BatchDocument), [{**u, "verified_at": now} for u in updates])


def documents(session: Session, batch_id: str, states: Iterable[str] | None = None) -> list[BatchDocument]:
    query = select(BatchDocument).where(BatchDocument.batch_id == batch_id).order_by(BatchDocument.row)
    if states is not None:
        query = query.where(BatchDocument.state.in_(list(states)))
    return list(session.scalars(query))


def finish(tools: BatchTools, batch_id: str, status: str | None = None) -> dict:
    """Write the batch report (report.json, report.html in the work store: ``stamping.batch.report``) and mark
    the batch finished; the summary names the reports by their store names.

    A batch with documents still ``accepted`` or ``stamped`` (a chunk ran out of retries) gets the
    status ``incomplete``: the report is written all the same — each waiting document with the chunk
    to clear — and the summary's ``pending`` names those chunks; the caller decides to fail the run.
    """
    with transaction(tools.session_factory) as session:
        batch = _load_batch(session, batch_id)
        counts = state_counts(session, batch_id)
        pending = sorted(set(session.scalars(select(BatchDocument.chunk).where(
            BatchDocument.batch_id == batch_id, BatchDocument.state.in_(PENDING_STATES)))))
        final = status or ("refused" if batch.status == "refused" else "incomplete" if pending else "done")
        finished = _now()
        written = write_report(session, batch_id, status=final, finished_at=finished, counts=counts,
                               store=tools.store, reports_dir=tools.reports_dir)
        batch.status, batch.finished_at = final, finished
        batch.report = {"counts": counts, "json": written["json"], "html": written["html"]}
    return {"batch_id": batch_id, "status": final, "counts": counts, "pending_chunks": pending,
            "report_json": written["json"], "report_html": written["html"]}
