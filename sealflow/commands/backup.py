"""``sealflow backup create|list|verify|restore`` — backups of what SealFlow cannot re-create (备份与恢复).

* ``create [--to TARGET]`` — one consistent, encrypted, signed snapshot (the database, the key store, the
  CA, custody, PIN files of service keys, the pinned platform certificate); incremental after the first;
* ``list [--from TARGET]`` — the backups there, newest last;
* ``verify [--from TARGET] [--id ID] [--trust ROOT.pem] [--no-decrypt]`` — offline: the manifest's
  signature, the backup key's certificate, every object's SM3, and (with the home's KEK) every content;
* ``restore --from TARGET [--id ID] [--trust ROOT.pem] [--no-check]`` — into an EMPTY home (SEALFLOW_HOME)
  and, with SEALFLOW_DATABASE_URL, an empty database; checks the restored audit chain, then the restored
  state against the world (as ``check``);
* ``check`` — a restored home against the world: both archive copies (repairing a bad one), the index
  against the archive, the audit chain against its external anchors, the outbox against the platform's
  receipts (marking delivered what it holds); everything done after the backup is reported as such.

TARGET is a folder or ``s3://bucket/prefix`` (default: SEALFLOW_BACKUP_TARGET). The KEK is never in a
backup: a restore needs the KEK file in place first (rebuild it with ``sealflow kek recover``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kernel.settings import Settings, get_settings
from sealflow.exits import CheckFailed, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("backup", help="backups and restore (备份与恢复)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="backup_command", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="take a backup now")
    c.add_argument("--to", dest="target", help="a folder or s3://bucket/prefix (default SEALFLOW_BACKUP_TARGET)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=run_create)
    for name, helptext, handler in (("list", "the backups at a target", run_list),
                                    ("verify", "check a backup offline", run_verify),
                                    ("restore", "restore a backup into an empty home", run_restore)):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--from", dest="target", help="a folder or s3://bucket/prefix (default SEALFLOW_BACKUP_TARGET)")
        if name != "list":
            s.add_argument("--id", dest="backup_id", help="which backup (default: the newest)")
            s.add_argument("--trust", type=Path, action="append", default=[],
                           help="root certificate(s) the backup key must chain to")
        if name == "verify":
            s.add_argument("--no-decrypt", action="store_true", help="check ciphertexts only (no KEK needed)")
        if name == "restore":
            s.add_argument("--no-check", action="store_true",
                           help="restore only; check against the world later with `sealflow backup check` "
                                "(e.g. when the embedded stack can only start in the restored home)")
        s.add_argument("--json", action="store_true")
        s.set_defaults(handler=handler)
    from sealflow.commands import drill

    drill.register(sub)
    k = sub.add_parser("check", help="check a restored home against the world (archive, audit anchors, filing)")
    k.add_argument("--json", action="store_true")
    k.set_defaults(handler=run_check)


def _destination(settings: Settings, target: str | None):
    from backup.service import destination
    from backup.snapshot import BackupError

    try:
        return destination(settings, target)
    except BackupError as exc:
        raise UsageError(str(exc)) from None


def _keys(settings: Settings):
    from backup.service import backup_keys
    from backup.snapshot import BackupError

    try:
        return backup_keys(settings)
    except BackupError as exc:
        raise UsageError(str(exc)) from None


def _trust(paths: list[Path]):
    from gmpki.pki.trust import TrustStore

    for path in paths:
        if not path.is_file():
            raise UsageError(f"{path}: no such certificate file")
    return TrustStore.from_paths(paths) if paths else None


def run_create(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from backup.service import take_backup
    from backup.snapshot import BackupError

    settings = settings or get_settings()
    _destination(settings, args.target)  # a wrong target is a usage error before anything is read
    try:
        result = take_backup(settings, args.target)
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    summary = {"backup_id": result.backup_id, "base": result.base, "objects_written": result.objects_written,
               "bytes_written": result.bytes_written, "target": args.target or settings.backup_target,
               "tables": {k: v["rows"] for k, v in result.manifest["tables"].items()}}
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        kind = f"incremental on {result.base}" if result.base else "full"
        print(f"backup {result.backup_id} ({kind}) at {summary['target']}: {result.objects_written} new objects, "
              f"{result.bytes_written} bytes")
    return 0


def run_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from backup.restore import backup_ids

    settings = settings or get_settings()
    ids = backup_ids(_destination(settings, args.target))
    print(json.dumps(ids) if args.json else ("\n".join(ids) or "no backups"))
    return 0


def run_verify(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from backup.restore import verify_backup
    from backup.snapshot import BackupError

    settings = settings or get_settings()
    keys = None if args.no_decrypt else _keys(settings)
    try:
        check = verify_backup(_destination(settings, args.target), args.backup_id, _trust(args.trust), keys)
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"backup_id": check.backup_id, "ok": check.ok, "objects": check.objects,
                          "decrypted": check.decrypted, "problems": check.problems, "notes": check.notes},
                         ensure_ascii=False))
    else:
        for note in check.notes:
            print(f"  note: {note}")
        for problem in check.problems:
            print(f"  problem: {problem}")
    if not check.ok:
        raise CheckFailed(f"backup {check.backup_id} is NOT intact ({len(check.problems)} problems)")
    if not args.json:
        print(f"OK: backup {check.backup_id}: signature, {check.objects} objects"
              + (f", {check.decrypted} decrypted" if keys else ""))
    return 0


def run_restore(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from backup.restore import restore_backup
    from backup.snapshot import BackupError
    from gmpki.gm.sm2 import SM2PublicKey
    from kernel.db import database, migrate
    from kernel.keys import key_store
    from stamping.audit import verify_audit

    settings = settings or get_settings()
    dest = _destination(settings, args.target)
    keys = _keys(settings)  # the KEK file may sit in the (otherwise empty) home: move it aside meanwhile
    kek_in_home = settings.resolved_kek_file.parent.resolve() == settings.state_dir.resolve()
    kek_text = settings.resolved_kek_file.read_text() if kek_in_home and settings.resolved_kek_file.exists() else None
    if kek_text is not None:
        settings.resolved_kek_file.unlink()
    try:
        check = restore_backup(dest, keys, settings.state_dir, settings.database_url or None, migrate,
                               args.backup_id, _trust(args.trust))
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if kek_text is not None:
            from kernel.files import write_atomic

            write_atomic(settings.resolved_kek_file, kek_text.encode())
    store = key_store(settings)
    cert = store.certificate(settings.audit_key_id) if store.exists(settings.audit_key_id) else None
    with database(settings.resolved_database_url, migrated=False) as sessions, sessions() as session:
        audit = verify_audit(session, SM2PublicKey.from_certificate(cert) if cert else None)
    from datetime import UTC, datetime

    from kernel.files import write_atomic
    from sealflow.commands.restore_checks import restored_from_file

    write_atomic(restored_from_file(settings), json.dumps({
        "backup_id": check.backup_id, "backup_created_at": check.manifest.get("created_at"),
        "restored_at": datetime.now(UTC).isoformat()}).encode())
    result: dict = {"backup_id": check.backup_id, "restored": True, "audit_ok": audit.ok,
                    "audit_entries": audit.entries}
    if not args.json:
        print(f"restored backup {check.backup_id} into {settings.state_dir}; audit chain "
              f"{'OK' if audit.ok else 'NOT intact: ' + str(audit.reason)} ({audit.entries} entries)")
    if not audit.ok:
        raise CheckFailed("the restored audit chain does not verify")
    if args.no_check:
        result["world_checked"] = False
        print(json.dumps(result, ensure_ascii=False) if args.json else
              "not yet checked against the world: start the stack (`sealflow stack up`), then run "
              "`sealflow backup check` before starting the pipeline")
        return 0
    return _report_check(settings, args.json, result)


def run_check(args: argparse.Namespace, settings: Settings | None = None) -> int:
    return _report_check(settings or get_settings(), args.json, {})


def _report_check(settings: Settings, as_json: bool, head: dict) -> int:
    from sealflow.commands.restore_checks import check_restored

    try:
        report = check_restored(settings)
    except Exception as exc:  # a store or the platform does not answer: the check is not done, say so
        raise CheckFailed(f"the restored home could not be checked against the world ({type(exc).__name__}: "
                          f"{exc}); start the stack (`sealflow stack up`) and run `sealflow backup check`") from None
    report = {**head, "world_checked": True, **report}
    if as_json:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        _print_check(report)
    if not report["ok"]:
        raise CheckFailed("the restored state does not agree with the world (see above)")
    return 0


def _print_check(r: dict) -> None:
    a, au, f, after = r["archive"], r["audit"], r["filing"], r["after_backup"]
    origin = r.get("restored_from") or {}
    if origin:
        print(f"restored from backup {origin.get('backup_id')} taken {origin.get('backup_created_at')}")
    print(f"archive: {a['records_checked']} package(s) checked, {a['copies_repaired']} cop(ies) repaired from "
          f"the other store, {'OK' if a['ok'] else 'PROBLEMS'}")
    for p in a["problems"] + a["copies_unrepaired"]:
        print(f"    ✘ {p.get('key')}: {p.get('problem')} — {p.get('reason')}")
    print(f"audit chain: {au['entries']} entries, {au['anchors_checked']} anchors up to the restored head: "
          f"{'OK' if au['ok'] else 'NOT intact: ' + str(au['reason'])}")
    differences = {k: f[k] for k in ("missing_at_platform", "mismatched", "not_marked_sent")}
    print(f"filing: {f['marked_delivered']} record(s) marked delivered with the platform's receipts; "
          f"{'OK' if f['ok'] else 'differences: ' + json.dumps(differences)}")
    print(f"after the backup: {len(after['documents'])} document(s) archived, {len(after['filings'])} filing(s), "
          f"audit anchored {after['audit']['entries_after_backup_at_least']} entr(ies) beyond the restored head")
    for d in after["documents"]:
        print(f"    sealed and archived after the backup: {d['archival_code']} {d['licence_id']} "
              f"(batch {d['batch_id']}, {d['archived_at']}) — held in the index as 'found'")
