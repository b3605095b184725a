"""The append-only audit log (审计日志) of seal making, change, revocation and use.

Each entry holds actor, action, seal (es_id), reason, time and a JSON payload. Its ``digest`` is
the SM3 of the canonical JSON of all those fields (with its seq), and its ``chain`` is
SM3(previous chain || digest), starting from 32 zero bytes. Every ``checkpoint_every`` entries
(and on demand) the audit key signs ``(seq, chain)`` with SM2, so that even a writer who
recomputes every digest and chain after an edit is caught at the next signed checkpoint.

Entries are written in the caller's session, i.e. in the same transaction as the change they
record: a rolled-back change leaves no entry. Two appenders racing for the same ``seq`` collide
on the primary key; the loser retries with the next number (a savepoint on PostgreSQL; SQLite
serialises writers, and a stale snapshot there fails the whole transaction, which the caller
retries).

Checkpoints are mandatory and anchored (docs/audit.md): a checkpoint is signed at every multiple of
``checkpoint_every`` (a missing one fails :func:`verify_audit`, naming the entries it should
cover), entries left uncovered longer than the checkpoint interval fail too, and every checkpoint
is queued in the same transaction for filing with the national platform (kind
``audit.checkpoint``) and later written to the archive bucket under Object Lock
(:mod:`stamping.audit.anchors`). Verification compares the database with those anchors, so that
a rewrite of the database, even one re-signed with the audit key, differs from a copy it cannot
reach.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from filing.outbox import enqueue
from gmpki.gm.sm3 import sm3
from kernel.canonical import NotCanonical, canonical_json
from stamping.audit.models import AuditCheckpoint, AuditEntry

if TYPE_CHECKING:
    from gmpki.gm.sm2 import SM2PublicKey
    from gmpki.keys.signer import Signer

GENESIS = "00" * 32
CHECKPOINT_DOMAIN = b"sealflow-audit-checkpoint/1"
ANCHOR_KIND = "audit.checkpoint"  # the filing record kind of an anchored checkpoint
_APPEND_TRIES = 20


class AuditError(ValueError):
    """An entry that cannot be written (payload not canonical JSON, …)."""


class AuditConflict(AuditError):
    """Another transaction took the next seq and this one cannot step past it by itself (SQLite has
    no usable savepoint here): roll the whole transaction back and run it again."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_text(value: datetime) -> str:
    """The canonical text of an entry time (UTC, microseconds): what the digest covers."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_digest(seq: int, actor: str, action: str, es_id: str | None, reason: str, at: datetime,
                 payload: dict[str, Any]) -> str:
    """Hex SM3 of the canonical JSON of one entry."""
    body = {"seq": seq, "actor": actor, "action": action, "es_id": es_id, "reason": reason,
            "at": time_text(at), "payload": payload}
    try:
        return sm3(canonical_json(body)).hex()
    except NotCanonical as exc:
        raise AuditError(f"audit payload for {action} is not canonical JSON ({exc}); use strings and integers") from exc


def chain_next(prev_chain: str, digest: str) -> str:
    return sm3(bytes.fromhex(prev_chain) + bytes.fromhex(digest)).hex()


def checkpoint_message(seq: int, chain: str) -> bytes:
    """The bytes the audit key signs for a checkpoint."""
    return b"%s\n%d\n%s" % (CHECKPOINT_DOMAIN, seq, chain.encode("ascii"))


class AuditLog:
    """Appends entries and signs checkpoints. ``signer`` gives the audit key's Signer (called lazily,
    once); without it no checkpoints are signed."""

    def __init__(self, signer: Callable[[], Signer] | None = None, checkpoint_every: int = 100,
                 key_id: str = "audit-log") -> None:
        self._signer_factory = signer
        self._signer: Signer | None = None
        self.checkpoint_every = max(1, checkpoint_every)
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"AuditLog(key_id={self.key_id!r}, checkpoint_every={self.checkpoint_every})"

    def _audit_signer(self) -> Signer | None:
        if self._signer is None and self._signer_factory is not None:
            self._signer = self._signer_factory()
        return self._signer

    def append(self, session: Session, *, actor: str, action: str, es_id: str | None = None, reason: str = "",
               payload: dict[str, Any] | None = None, at: datetime | None = None) -> AuditEntry:
        """Add one entry in the caller's transaction and return it (with its seq and chain)."""
        return self.append_many(session, [{"actor": actor, "action": action, "es_id": es_id, "reason": reason,
                                           "payload": payload, "at": at}])[0]

    def append_many(self, session: Session, items: list[dict[str, Any]]) -> list[AuditEntry]:
        """Add several entries (dicts of ``append``'s keyword arguments) in order, reading the head
        once: one round trip per batch of uses instead of one per document."""
        now = datetime.now(UTC)
        rows = [{"actor": i["actor"], "action": i["action"], "es_id": i.get("es_id"), "reason": i.get("reason") or "",
                 "payload": dict(i.get("payload") or {}), "at": _utc(i.get("at") or now)} for i in items]
        if not rows:
            return []
        savepoints = session.get_bind().dialect.name != "sqlite"
        for _ in range(_APPEND_TRIES):
            last = session.execute(
                select(AuditEntry.seq, AuditEntry.chain).order_by(AuditEntry.seq.desc()).limit(1)
            ).first()
            seq, chain = (last.seq, last.chain) if last else (0, GENESIS)
            entries = []
            for row in rows:
                seq += 1
                digest = entry_digest(seq, row["actor"], row["action"], row["es_id"], row["reason"], row["at"],
                                      row["payload"])
                chain = chain_next(chain, digest)
                entries.append(AuditEntry(seq=seq, digest=digest, chain=chain, **row))
            if not savepoints:
                session.add_all(entries)
                try:
                    session.flush()
                except IntegrityError as exc:
                    raise AuditConflict(f"audit seq {entries[0].seq} was taken by a concurrent transaction; "
                                        "retry") from exc
                break
            try:
                with session.begin_nested():
                    session.add_all(entries)
            except IntegrityError:
                continue  # another transaction took these seqs: read the new head and try again after it
            break
        else:
            raise AuditConflict(f"could not append to the audit log after {_APPEND_TRIES} tries (heavy contention)")
        for entry in entries:
            if entry.seq % self.checkpoint_every == 0:
                self._sign(session, entry.seq, entry.chain, entry.at)
        return entries

    def checkpoint(self, session: Session, at: datetime | None = None) -> AuditCheckpoint | None:
        """Sign the newest entry now (on demand); None when the log is empty or already covered."""
        last = session.execute(
            select(AuditEntry.seq, AuditEntry.chain).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        if last is None or session.get(AuditCheckpoint, last.seq) is not None:
            return None
        return self._sign(session, last.seq, last.chain, _utc(at or datetime.now(UTC)))

    def _sign(self, session: Session, seq: int, chain: str, at: datetime) -> AuditCheckpoint | None:
        signer = self._audit_signer()
        if signer is None:
            return None
        point = AuditCheckpoint(seq=seq, chain=chain, at=at, key_id=self.key_id,
                                signature=signer.sign(checkpoint_message(seq, chain)))
        session.add(point)
        session.flush()
        # Filed in the same transaction: a committed checkpoint always has its platform anchor queued.
        enqueue(session, ANCHOR_KIND, self.key_id, checkpoint_body(point), now=at)
        return point


def checkpoint_body(point: AuditCheckpoint) -> dict[str, Any]:
    """What is anchored outside the database for one checkpoint (filing payload and bucket object)."""
    return {"seq": point.seq, "chain": point.chain, "at": time_text(point.at), "key_id": point.key_id,
            "signature": base64.b64encode(point.signature).decode("ascii")}


@dataclass(frozen=True)
class Anchor:
    """A checkpoint head as a copy outside the database holds it; ``source`` says where (for messages)."""

    seq: int
    chain: str
    signature: bytes
    source: str


@dataclass
class AnchorSet:
    """Everything one anchor store (the archive bucket, the national platform) holds for the log, and
    what it found wrong while reading (an anchor the database has no copy of, …)."""

    name: str
    anchors: list[Anchor] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AuditPolicy:
    """The rules verification holds the log to: a signed checkpoint at every multiple of
    ``checkpoint_every`` entries, and no entry (nor checkpoint) older than ``interval`` left
    uncovered (un-anchored)."""

    checkpoint_every: int
    interval: timedelta


@dataclass
class AuditReport:
    """What ``verify_audit`` found: ok, the first bad seq (None when ok) and why."""

    ok: bool
    entries: int
    checkpoints: int
    last_seq: int
    first_bad_seq: int | None = None
    reason: str = ""
    covered_to: int = 0  # the newest signed checkpoint that verified
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "checkpoints": self.checkpoints, "last_seq": self.last_seq,
                "first_bad_seq": self.first_bad_seq, "reason": self.reason, "covered_to": self.covered_to,
                "notes": list(self.notes)}


def _ranges(seqs: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3..5, 9"``: entry ids as an operator reads them."""
    out: list[str] = []
    run: list[int] = []
    for seq in sorted(set(seqs)):
        if run and seq != run[-1] + 1:
            out.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(seq)
    if run:
        out.append(f"{run[0]}..{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def verify_audit(session: Session, audit_public_key: SM2PublicKey | None, *, policy: AuditPolicy | None = None,
                 anchors: list[AnchorSet] | None = None, now: datetime | None = None) -> AuditReport:
    """Check every entry's digest, the chain, the seq order and every signed checkpoint; with a
    ``policy``, that checkpoints are where they must be; with ``anchors``, that the database agrees
    with every copy of the log's head kept outside it.

    Edited entries fail their digest; deleted ones leave a gap in seq (or, at the end, a signed
    checkpoint past the last entry); inserted or reordered ones break the chain; a rewrite that
    recomputes digests and chains differs from the next signed checkpoint; one that also drops or
    re-signs the checkpoints lacks a mandatory checkpoint or differs from an anchor. The first bad
    seq is named, and the reason names the entry ids.
    """
    points = {p.seq: p for p in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))}
    total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    report = AuditReport(ok=True, entries=total, checkpoints=len(points), last_seq=0)
    anchor_seqs = {a.seq for group in anchors or () for a in group.anchors}

    def fail(seq: int | None, reason: str) -> AuditReport:
        report.ok, report.first_bad_seq, report.reason = False, seq, reason
        return report

    chain, expected = GENESIS, 1
    chains_at: dict[int, str] = {}
    times: dict[int, datetime] = {}
    rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)).scalars()
    for entry in rows:
        if entry.seq != expected:
            return fail(expected, f"entry {expected} is missing: the log jumps from {expected - 1} to {entry.seq} "
                                  "(deleted entries)")
        try:
            digest = entry_digest(entry.seq, entry.actor, entry.action, entry.es_id, entry.reason, entry.at,
                                  entry.payload)
        except AuditError as exc:
            return fail(entry.seq, f"entry {entry.seq} cannot be read: {exc}")
        if digest != entry.digest:
            return fail(entry.seq, f"entry {entry.seq} was edited: its content does not match its SM3 digest")
        chain = chain_next(chain, digest)
        if chain != entry.chain:
            return fail(entry.seq, f"entry {entry.seq} does not chain to entry {entry.seq - 1} "
                                   "(entries inserted, deleted or reordered before it)")
        if entry.seq in points or entry.seq in anchor_seqs:
            chains_at[entry.seq] = chain
        times[entry.seq] = _utc(entry.at)
        expected += 1
    report.last_seq = expected - 1
    previous_good = 0
    for seq, point in points.items():
        if audit_public_key is not None and not audit_public_key.verify(point.signature,
                                                                        checkpoint_message(seq, point.chain)):
            return fail(previous_good + 1, f"checkpoint at entry {seq} has a bad signature (forged or altered "
                                           "checkpoint, or a different audit key)")
        if seq > report.last_seq:
            return fail(report.last_seq + 1, f"a signed checkpoint covers entry {seq} but the log ends at "
                                             f"{report.last_seq}: entries {report.last_seq + 1}..{seq} were deleted")
        if chains_at.get(seq) != point.chain:
            return fail(previous_good + 1, f"entries {previous_good + 1}..{seq} were rewritten: the chain differs "
                                           f"from the signed checkpoint at entry {seq}")
        previous_good = seq
    report.covered_to = previous_good
    if anchors is not None and not _check_anchors(report, anchors, points, chains_at, audit_public_key, fail):
        return report
    if policy is not None and not _check_policy(report, policy, points, times, anchors,
                                                _utc(now or datetime.now(UTC)), fail):
        return report
    if audit_public_key is None:
        report.notes.append("checkpoint signatures not checked: no audit public key given")
    if anchors is None:
        report.notes.append("not compared with the anchors outside the database (archive bucket, national "
                            "platform): a rewrite re-signed with the audit key would pass")
    if report.last_seq > previous_good:
        report.notes.append(f"entries {previous_good + 1}..{report.last_seq} are chained but not yet covered by a "
                            "signed checkpoint (run `sealflow audit checkpoint`)")
    return report


def _check_anchors(report: AuditReport, groups: list[AnchorSet], points: dict[int, AuditCheckpoint],
                   chains_at: dict[int, str], key: SM2PublicKey | None, fail: Callable[..., AuditReport]) -> bool:
    """Every anchor must match the database: its entry exists with the same chain value and its
    checkpoint row is still there. False (after ``fail``) at the first that does not."""
    for group in groups:
        if group.problems:
            fail(None, f"{group.name}: " + "; ".join(group.problems))
            return False
        for anchor in sorted(group.anchors, key=lambda a: a.seq):
            if key is not None and not key.verify(anchor.signature, checkpoint_message(anchor.seq, anchor.chain)):
                fail(anchor.seq, f"the anchor of entry {anchor.seq} in {anchor.source} is not signed by the audit key "
                                 "(forged anchor, or a different audit key)")
                return False
            if anchor.seq > report.last_seq:
                fail(report.last_seq + 1, f"entries {report.last_seq + 1}..{anchor.seq} were deleted: {anchor.source} "
                                          f"anchors a checkpoint at entry {anchor.seq} but the log ends at "
                                          f"{report.last_seq}")
                return False
            if chains_at.get(anchor.seq) != anchor.chain:
                before = max((a.seq for a in group.anchors if a.seq < anchor.seq), default=0)
                fail(before + 1, f"entries {before + 1}..{anchor.seq} were rewritten: the chain at entry {anchor.seq} "
                                 f"differs from the checkpoint anchored in {anchor.source}")
                return False
            if anchor.seq not in points:
                fail(anchor.seq, f"the signed checkpoint at entry {anchor.seq} was deleted from the database (it is "
                                 f"anchored in {anchor.source})")
                return False
    return True


def _check_policy(report: AuditReport, policy: AuditPolicy, points: dict[int, AuditCheckpoint],
                  times: dict[int, datetime], groups: list[AnchorSet] | None, now: datetime,
                  fail: Callable[..., AuditReport]) -> bool:
    """Mandatory checkpoints: one at every multiple of ``checkpoint_every``, nothing older than the
    interval left uncovered, and (with anchors) no checkpoint older than the interval un-anchored."""
    every = max(1, policy.checkpoint_every)
    # Signed at every multiple of ``every``: two checkpoints further apart (or a tail that long) mean
    # deleted checkpoints. Gaps, not multiples, so that raising the setting later stays valid.
    bounds = [0, *sorted(points), report.last_seq + 1]
    gaps = [(a + 1, b - 1) for a, b in pairwise(bounds) if b - a > every]
    if gaps:
        named = ", ".join(f"{a}..{b}" for a, b in gaps)
        fail(gaps[0][0], f"checkpoints are mandatory every {every} entries but entries {named} are not covered "
                         "by one (checkpoints deleted?): they are not protected by a signature")
        return False
    last_point = max(points, default=0)
    stale = [seq for seq in range(last_point + 1, report.last_seq + 1) if now - times[seq] > policy.interval]
    if stale:
        fail(stale[0], f"entries {_ranges(stale)} are older than the checkpoint interval ({policy.interval}) and "
                       "not covered by a signed checkpoint: run `sealflow audit checkpoint` (the seal_maintenance "
                       "job does it every hour); entries deleted from this tail could not be told")
        return False
    for group in groups or ():
        anchored = {a.seq for a in group.anchors}
        late = [seq for seq, p in points.items() if seq not in anchored and now - _utc(p.at) > policy.interval]
        if late:
            fail(late[0], f"the checkpoint(s) at entry {_ranges(late)} are older than the checkpoint interval "
                          f"({policy.interval}) and not anchored in {group.name}: run `sealflow audit anchor` "
                          "and `sealflow filing drain`")
            return False
    return True
