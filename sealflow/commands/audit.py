"""``sealflow audit verify|show|checkpoint`` — the tamper-evident audit log (审计).

* ``verify [--public-key FILE] [--offline] [--json]`` — every entry's SM3 digest, the chain, the
  seq order, every SM2-signed checkpoint, the mandatory checkpoints (one every
  SEALFLOW_AUDIT_CHECKPOINT_EVERY entries, nothing uncovered or un-anchored longer than
  SEALFLOW_AUDIT_CHECKPOINT_INTERVAL seconds) and the anchors outside the database (archive
  bucket, national platform; ``--offline`` skips them and says so); exit 1 naming the entries;
* ``show [--es-id ESID] [--action A] [--limit N] [--json]`` — the newest entries;
* ``checkpoint`` — sign the newest entry now and anchor it (checkpoints are also made every
  SEALFLOW_AUDIT_CHECKPOINT_EVERY entries and by the hourly seal_maintenance job);
* ``anchor`` — write every checkpoint not yet anchored to the archive bucket and queue its filing.

See docs/audit.md for what each check stops.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kernel.settings import Settings, get_settings
from sealflow.commands.seal import print_table, registry
from sealflow.exits import CheckFailed, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="the tamper-evident audit log (审计)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check the whole log; name the first bad entry")
    v.add_argument("--public-key", type=Path, help="the audit key's public key (PEM/DER SubjectPublicKeyInfo or "
                                                   "certificate); default: from the key store")
    v.add_argument("--offline", action="store_true",
                   help="do not compare with the anchors in the archive bucket and at the national platform "
                        "(weaker: a rewrite re-signed with the audit key passes)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=run_verify)
    s = sub.add_parser("show", help="the newest entries")
    s.add_argument("--es-id")
    s.add_argument("--action", help="e.g. seal.make, seal.use, seal.revoke")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(handler=run_show)
    c = sub.add_parser("checkpoint", help="sign the newest entry now and anchor it")
    c.add_argument("--offline", action="store_true", help="sign only; anchor later with `sealflow audit anchor`")
    c.set_defaults(handler=run_checkpoint)
    a = sub.add_parser("anchor", help="anchor every checkpoint outside the database")
    a.set_defaults(handler=run_anchor)


def _public_key(path: Path):
    from asn1crypto import pem

    from gmpki.gm.sm2 import SM2PublicKey

    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return SM2PublicKey.from_spki(data)
    except Exception:  # not an SPKI: try a certificate
        try:
            return SM2PublicKey.from_certificate(pem.unarmor(data)[2] if pem.detect(data) else data)
        except Exception as exc:
            raise UsageError(f"{path}: neither an SM2 public key nor a certificate ({exc})") from None


def _anchor_sets(settings: Settings, session) -> list:
    """The anchors in the archive bucket and at the national platform; an unreachable store is an
    error (verification without them is ``--offline``, said out loud)."""
    from archive.audit_anchors import bucket_anchors
    from filing.client import PlatformError
    from stamping.audit.anchors import platform_anchors

    try:
        bucket = bucket_anchors(settings).read()
    except Exception as exc:  # botocore/StoreError: say which store and what to do
        raise CheckFailed(f"cannot read the audit anchors in the archive bucket {settings.archive_bucket!r} "
                          f"({type(exc).__name__}: {exc}); start the stack (`sealflow stack up`) or run "
                          "`sealflow audit verify --offline` for the weaker database-only check") from None
    from sealflow.commands.filing import platform_client

    try:
        with platform_client(settings, None) as client:
            platform = platform_anchors(session, client, settings.audit_key_id)
    except PlatformError as exc:
        raise CheckFailed(f"cannot read the audit anchors at the national platform ({exc}); check "
                          "`sealflow filing status` or run `sealflow audit verify --offline`") from None
    return [bucket, platform]


def run_verify(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from datetime import timedelta

    from stamping.audit import verify_audit
    from stamping.audit.log import AuditPolicy

    settings = settings or get_settings()
    reg = registry(settings)
    key = _public_key(args.public_key) if args.public_key else reg.audit_public_key()
    policy = AuditPolicy(settings.audit_checkpoint_every, timedelta(seconds=settings.audit_checkpoint_interval))
    with reg.sessions() as session:
        anchors = None if args.offline else _anchor_sets(settings, session)
        report = verify_audit(session, key, policy=policy, anchors=anchors)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"audit log: {report.entries} entries, {report.checkpoints} signed checkpoints")
        for note in report.notes:
            print(f"  note: {note}")
    if not report.ok:
        if args.json:
            return 1
        where = f"first bad entry {report.first_bad_seq}: " if report.first_bad_seq is not None else ""
        raise CheckFailed(f"audit log is NOT intact: {where}{report.reason}")
    if not args.json:
        print(f"OK: entries 1..{report.last_seq} intact; signed up to entry {report.covered_to}"
              + (" (database only: --offline)" if args.offline else "; matches the anchors"))
    return 0


def run_show(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from sqlalchemy import select

    from stamping.audit.log import time_text
    from stamping.audit.models import AuditEntry

    settings = settings or get_settings()
    reg = registry(settings)
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(max(1, args.limit))
    if args.es_id:
        stmt = stmt.where(AuditEntry.es_id == args.es_id)
    if args.action:
        stmt = stmt.where(AuditEntry.action == args.action)
    with reg.sessions() as session:
        rows = [{"seq": e.seq, "at": time_text(e.at), "actor": e.actor, "action": e.action, "es_id": e.es_id,
                 "reason": e.reason, "payload": e.payload, "digest": e.digest, "chain": e.chain}
                for e in session.scalars(stmt)][::-1]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("no audit entries")
    else:
        print_table([{**r, "at": r["at"][:19], "reason": (r["reason"] or "")[:40]} for r in rows],
                    ("seq", "at", "actor", "action", "es_id", "reason"))
    return 0


def run_checkpoint(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from kernel.db import transaction

    settings = settings or get_settings()
    reg = registry(settings)
    with transaction(reg.sessions) as session:
        point = reg.audit.checkpoint(session)
    print(f"checkpoint signed at entry {point.seq}" if point else "nothing to sign: the newest entry is covered")
    return 0 if args.offline else run_anchor(args, settings)


def run_anchor(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from archive.audit_anchors import bucket_anchors
    from kernel.db import transaction
    from stamping.audit.anchors import enqueue_missing

    settings = settings or get_settings()
    reg = registry(settings)
    with transaction(reg.sessions) as session:
        queued = enqueue_missing(session, settings.audit_key_id)
    try:
        with reg.sessions() as session:
            written = bucket_anchors(settings).publish(session)
    except Exception as exc:  # botocore/StoreError
        raise CheckFailed(f"cannot write the audit anchors to the archive bucket {settings.archive_bucket!r} "
                          f"({type(exc).__name__}: {exc}); start the stack (`sealflow stack up`) and run "
                          "`sealflow audit anchor` again") from None
    print(f"anchored {len(written)} checkpoint(s) in the archive bucket; {len(queued)} more queued for filing "
          "(sent by `sealflow filing drain`)")
    return 0
