"""``sealflow filing setup|status|drain|retry|reconcile`` — filing (备案) with the national platform.

* ``setup`` — create the sending system's key (DemoCA certificate) and pin the platform certificate;
* ``status [--json]`` — the outbox by state (pending, sent, failed, dead) and the dead letters' reasons;
* ``drain [--max N]`` — send what is due now (the ``file_records`` DAG does this on its schedule);
* ``retry RECORD_ID... | --dead | --failed`` — make records due again;
* ``reconcile [--apply] [--json]`` — our receipts against the platform's listing (对账); exit 1 on
  differences. ``--apply`` marks delivered what the platform holds but the outbox does not show as sent
  (after a restore), with the platform's original signed receipts: nothing is filed twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kernel.settings import Settings, get_settings
from sealflow.exits import CheckFailed, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("filing", help="filing with the national platform (备案)", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="filing_command", metavar="ACTION", required=True)

    setup = sub.add_parser("setup", help="create the sending key and pin the platform certificate")
    setup.add_argument("--ca", type=Path, help="DemoCA directory (default: <home>/ca)")
    setup.add_argument("--platform-cert", type=Path, help="the platform's certificate as received from its "
                                                          "operator (PEM or DER); pinned, never fetched")
    setup.set_defaults(handler=run_setup)

    status = sub.add_parser("status", help="the outbox by state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)

    drain = sub.add_parser("drain", help="send every record due now")
    drain.add_argument("--max", type=int, default=None, help="stop after this many records")
    drain.add_argument("--url", help="platform endpoint")
    drain.add_argument("--json", action="store_true")
    drain.set_defaults(handler=run_drain)

    retry = sub.add_parser("retry", help="make failed or dead-lettered records due again")
    retry.add_argument("record_ids", nargs="*", metavar="RECORD_ID")
    retry.add_argument("--dead", action="store_true", help="every dead-lettered record")
    retry.add_argument("--failed", action="store_true", help="every failed record")
    retry.set_defaults(handler=run_retry)

    reconcile = sub.add_parser("reconcile", help="compare our receipts with the platform's listing")
    reconcile.add_argument("--url", help="platform endpoint")
    reconcile.add_argument("--apply", action="store_true",
                           help="mark delivered what the platform already holds (after a restore), with its "
                                "original signed receipt, so that nothing is filed twice")
    reconcile.add_argument("--json", action="store_true")
    reconcile.set_defaults(handler=run_reconcile)


def _factory(settings: Settings):
    from sealflow import root

    return root.sessions(settings)


def platform_client(settings: Settings, url: str | None):
    from filing.identity import FilingNotConfigured, make_client

    try:
        return make_client(settings, url)
    except FilingNotConfigured as exc:
        raise UsageError(str(exc)) from exc


def run_setup(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from filing.identity import FilingNotConfigured, pin_platform_certificate, platform_cert_path, setup_system_identity

    settings = settings or get_settings()
    try:
        setup_system_identity(settings, args.ca)
        pin_platform_certificate(settings, args.platform_cert)
    except FilingNotConfigured as exc:
        raise UsageError(str(exc)) from exc
    print(f"filing key {settings.filing_key_id!r} ready; platform certificate pinned at {platform_cert_path(settings)}")
    return 0


def run_status(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from filing.reconcile import status

    factory = _factory(settings or get_settings())
    with factory() as session:
        report = status(session)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    counts = report["counts"]
    print("  ".join(f"{state}: {counts[state]}" for state in ("pending", "sent", "failed", "dead")))
    print(f"due now: {report['due_now']}  held back by a dead letter: {report['held_by_dead_letter']}")
    if report["oldest_unsent_created_at"]:
        print(f"oldest unsent record queued at {report['oldest_unsent_created_at']}")
    for dead in report["dead"]:
        print(f"dead {dead['record_id']} {dead['kind']} {dead['subject']}: {dead['reason']}")
    return 0


def run_drain(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from filing.dispatcher import drain

    settings = settings or get_settings()
    factory = _factory(settings)
    with platform_client(settings, args.url) as client:
        result = drain(factory, client, max_records=args.max)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(f"claimed {result.claimed}: sent {result.sent}, failed {result.failed}, dead {result.dead}")
    return 0


def run_retry(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from filing.dispatcher import retry
    from filing.outbox import DEAD, FAILED
    from kernel.db import transaction

    if bool(args.record_ids) == (args.dead or args.failed):
        raise UsageError("give RECORD_IDs, or --dead and/or --failed")
    states = tuple(s for s, on in ((DEAD, args.dead), (FAILED, args.failed)) if on)
    with transaction(_factory(settings or get_settings())) as session:
        count = retry(session, list(args.record_ids) or None, states)
    if args.record_ids and count != len(set(args.record_ids)):
        print(f"{count} of {len(set(args.record_ids))} records made due (the others are sent or unknown)")
    else:
        print(f"{count} records made due again")
    return 0


def run_reconcile(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from filing.client import PlatformUnavailable
    from filing.reconcile import reconcile

    settings = settings or get_settings()
    factory = _factory(settings)
    settled = None
    with platform_client(settings, args.url) as client:
        try:
            with factory() as session:
                result = reconcile(session, client.listing())
            if args.apply and result.not_marked_sent:
                from filing.dispatcher import settle

                settled = settle(factory, client, result.not_marked_sent)
                with factory() as session:
                    result = reconcile(session, client.listing())
        except PlatformUnavailable as exc:
            raise CheckFailed(f"platform listing unavailable: {exc}") from exc
    if args.json:
        print(json.dumps({**result.as_dict(), "settled": settled.as_dict() if settled else None},
                         ensure_ascii=False, indent=2))
    else:
        print(f"ours sent: {result.ours_sent}  platform lists: {result.platform_listed}")
        for name in ("missing_at_platform", "not_marked_sent", "unknown_to_us"):
            for record_id in getattr(result, name):
                print(f"{name.replace('_', ' ')}: {record_id}")
        for item in result.mismatched:
            print(f"mismatch {item['record_id']}: ours {item['ours']} platform {item['platform']}")
        if settled is not None:
            print(f"marked delivered with the platform's original receipts: {settled.sent} "
                  f"(failed {settled.failed}, dead {settled.dead})")
        elif result.not_marked_sent:
            print("run `sealflow filing reconcile --apply` to mark those delivered (nothing is filed twice)")
        if result.unknown_to_us:
            print(f"{len(result.unknown_to_us)} record(s) at the platform were never queued by this database: "
                  "after a restore, these are filings of work done after the backup")
    if not result.ok:
        raise CheckFailed("reconciliation found differences")
    return 0
