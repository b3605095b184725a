"""``sealflow archive search|get|url|history|verify|eep|fixity`` — find, fetch and check archived certificates.

``verify`` works offline on a downloaded package with only ``--trust ROOT.pem``. A re-issued licence
(换发/补发) has several records: by 证照标识 or 证照编号, ``search``, ``get`` and ``url`` answer with its
current record (``search --all-versions`` lists the superseded ones too), a 档号 names one record,
and ``history`` lists them all with the links between them.
Exit codes as for ``sealflow verify``: 0 all good, 1 a check failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from kernel.settings import Settings, get_settings
from sealflow.commands.seal import print_table
from sealflow.exits import CheckFailed, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("archive", help="archived certificates (电子档案): search, get, url, verify",
                              description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="archive_command", metavar="ACTION", required=True)

    s = sub.add_parser("search", help="search the archive index")
    s.add_argument("--number", help="证照编号")
    s.add_argument("--id", dest="licence_id", help="证照标识")
    s.add_argument("--holder", help="持证主体 (name, substring)")
    s.add_argument("--holder-code", help="持证主体代码 (统一社会信用代码 / 公民身份号码)")
    s.add_argument("--code", help="档号")
    s.add_argument("--batch", help="batch id")
    s.add_argument("--since", help="archived on or after (YYYY-MM-DD)")
    s.add_argument("--until", help="archived on or before (YYYY-MM-DD)")
    s.add_argument("--limit", type=int, default=100)
    s.add_argument("--all-versions", action="store_true",
                   help="also the records a 换发/补发 superseded (default: each licence's current record)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(handler=run_search)

    h = sub.add_parser("history", help="every record of a licence: the original and each 换发/补发 superseding it")
    h.add_argument("key", help="档号, 证照标识 or 证照编号")
    h.add_argument("--json", action="store_true", help="print JSON")
    h.set_defaults(handler=run_history)

    g = sub.add_parser("get", help="download a package to a folder")
    g.add_argument("key", help="档号, 证照标识 or 证照编号")
    g.add_argument("-o", "--out", default=".",
                   help="the package goes into OUT/<档号>/, whose path is printed (default OUT: current folder)")
    g.set_defaults(handler=run_get)

    u = sub.add_parser("url", help="print a presigned URL of the package with what verifies it (a tar)")
    u.add_argument("key", help="档号, 证照标识 or 证照编号")
    u.add_argument("--expires", type=int, default=None, help="seconds (default: SEALFLOW_ARCHIVE_URL_EXPIRY)")
    u.set_defaults(handler=run_url)

    v = sub.add_parser("verify", help="verify a downloaded package offline")
    v.add_argument("folder", help="the package folder (the path `sealflow archive get` prints: OUT/<档号>), "
                                  "or the tar a `sealflow archive url` link serves")
    v.add_argument("--trust", action="append", default=[], metavar="ROOT.pem", required=True,
                   help="a trusted root certificate (PEM or DER); repeatable")
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=run_verify)

    e = sub.add_parser("eep", help="export a downloaded package as a signed DA/T 48 EEP (XML)")
    e.add_argument("folder", help="the package folder (the path `sealflow archive get` prints: OUT/<档号>)")
    e.add_argument("-o", "--out", required=True, help="the EEP file to write")
    e.set_defaults(handler=run_eep)

    f = sub.add_parser("fixity", help="re-read every stored package (both copies) and repair a bad copy")
    f.add_argument("--no-repair", action="store_true",
                   help="only report: do not rewrite a missing or damaged copy from the good one")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_fixity)


def _sessions(settings: Settings):
    from sealflow import root

    return root.sessions(settings)


def _store(settings: Settings, attempts: int = 3):
    from archive.store import ObjectStore

    return ObjectStore(settings, attempts=attempts)


def _day(value: str | None, name: str, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--{name}: {value!r} is not a date (YYYY-MM-DD)") from None
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


def _row_json(r) -> dict:
    return {"archival_code": r.archival_code, "licence_id": r.licence_id, "licence_number": r.licence_number,
            "licence_type": r.licence_type, "holder_name": r.holder_name, "holder_code": r.holder_code,
            "batch_id": r.batch_id, "archived_at": r.archived_at.isoformat(), "retention": r.retention,
            "retain_until": r.retain_until.isoformat(), "object_key": r.object_key, "package_sm3": r.package_sm3,
            "supersedes": r.supersedes or "", "superseded_by": r.superseded_by or "", "reissue": r.reissue,
            "reissue_reason": r.reissue_reason}


SEARCH_COLUMNS = ("档号 archival code", "证照编号 number", "持证主体 holder", "持证主体代码 holder code",
                  "归档 archived", "证照类型 type")


def run_search(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from archive.index import SearchQuery, search

    settings = settings or get_settings()
    q = SearchQuery(licence_number=args.number or "", licence_id=args.licence_id or "", holder_name=args.holder or "",
                    holder_code=args.holder_code or "", archival_code=args.code or "", batch_id=args.batch or "",
                    since=_day(args.since, "since"), until=_day(args.until, "until", end=True), limit=args.limit,
                    all_versions=args.all_versions)
    with _sessions(settings)() as s:
        rows = search(s, q)
    if args.json:
        sys.stdout.write(json.dumps([_row_json(r) for r in rows], ensure_ascii=False, indent=1) + "\n")
    else:
        if rows:  # a person's name (张磊) beside a company's: CJK characters count double on a terminal
            print_table([dict(zip(SEARCH_COLUMNS, (r.archival_code, r.licence_number, r.holder_name, r.holder_code,
                                                   f"{r.archived_at:%Y-%m-%d}", r.licence_type), strict=True))
                         for r in rows], SEARCH_COLUMNS)
        print(f"{len(rows)} record(s)")
    return 0


def run_history(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """The licence's records oldest first; the current one (not superseded) is marked."""
    from archive.index import history

    settings = settings or get_settings()
    with _sessions(settings)() as s:
        rows = history(s, args.key)
    if not rows:
        raise UsageError(f"{args.key}: no archived record with this 档号, 证照标识 or 证照编号")
    if args.json:
        sys.stdout.write(json.dumps([_row_json(r) for r in rows], ensure_ascii=False, indent=1) + "\n")
        return 0
    print(f"证照标识 {rows[0].licence_id}: {len(rows)} record(s), oldest first")
    for r in rows:
        state = f"superseded by {r.superseded_by}" if r.superseded_by else "current"
        why = f" — {r.reissue}: {r.reissue_reason}" if r.reissue else ""
        linked = f", supersedes {r.supersedes}" if r.supersedes else ""
        print(f"  {r.archival_code}  {r.archived_at:%Y-%m-%d}  batch {r.batch_id}  {state}{linked}{why}")
    return 0


def _find(settings: Settings, key: str):
    from archive.index import find_one

    with _sessions(settings)() as s:
        row = find_one(s, key)
    if row is None:
        raise UsageError(f"{key}: no archived record with this 档号, 证照标识 or 证照编号")
    if row.archival_code != key and row.supersedes:  # a licence asked for: say which version answers
        print(f"{key}: the current record {row.archival_code} ({row.reissue or 'a re-issue'}) superseding "
              f"{row.supersedes}; `sealflow archive history {key}` lists every version", file=sys.stderr)
    return row


def run_get(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from archive.package import PackageError
    from archive.retrieve import download_package

    settings = settings or get_settings()
    row = _find(settings, args.key)
    try:
        target = download_package(_store(settings), row, Path(args.out))
    except PackageError as exc:
        raise CheckFailed(str(exc)) from None
    print(target)
    return 0


def run_url(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """The URL (stdout) serves a tar of the package folder with its run's signed files, pinned to
    the stored version; its expiry and how to verify go to stderr."""
    from archive.retrieve import share_package

    settings = settings or get_settings()
    expires = args.expires if args.expires is not None else settings.archive_url_expiry
    if not 1 <= expires <= 7 * 24 * 3600:
        raise UsageError("--expires must be between 1 second and 7 days")
    row = _find(settings, args.key)
    share = share_package(_store(settings), row, expires)
    print(share.url)
    print(f"expires {share.expires_at:%Y-%m-%dT%H:%M:%SZ} ({expires} s); serves version {share.version_id} of "
          f"{share.key}; verify the downloaded tar with: sealflow archive verify FILE.tar --trust ROOT.pem",
          file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from archive.package import PackageError

    folder = Path(args.folder)
    if folder.is_file() and tarfile.is_tarfile(folder):
        with tempfile.TemporaryDirectory(prefix="sealflow-verify-") as tmp:
            from archive.retrieve import unpack_share

            try:
                unpacked = unpack_share(folder, Path(tmp))
            except PackageError as exc:
                raise UsageError(str(exc)) from None
            return _verify_folder(args, unpacked, shown=folder)  # the tar's name, not a deleted temporary path
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder or package tar")
    inside = _packages_inside(folder)
    if inside:  # `archive get -o DIR` writes DIR/<档号>/: the package is the folder it printed
        raise UsageError(_not_a_package(folder, inside, f"sealflow archive verify {inside[0]} --trust ROOT.pem"))
    return _verify_folder(args, folder)


def _packages_inside(folder: Path) -> list[Path]:
    """The package folders directly inside ``folder`` when it is not one itself."""
    from archive.package import MANIFEST_NAME

    if (folder / MANIFEST_NAME).exists():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file())


def _not_a_package(folder: Path, inside: list[Path], command: str) -> str:
    return (f"{folder} is not a package but the folder around {len(inside)} package(s); name the package "
            f"folder: {command}")


def _verify_folder(args: argparse.Namespace, folder: Path, shown: Path | None = None) -> int:
    from archive.offline import verify_package
    from archive.package import PackageError

    for t in args.trust:
        if not Path(t).is_file():
            raise UsageError(f"{t}: trusted root certificate not found")
    from gmpki.pki.trust import TrustStore

    try:
        trust = TrustStore.from_paths(args.trust)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read trusted roots: {exc}") from None
    try:
        result = verify_package(folder, trust)
    except PackageError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        sys.stdout.write(json.dumps({**result.to_json(), "folder": str(shown or folder)}, ensure_ascii=False,
                                    indent=1) + "\n")
    else:
        print(f"{'OK' if result.ok else 'FAILED':7} {result.archival_code} ({shown or folder})")
        if result.signer:
            print(f"    archived by: {result.signer}")
        if result.supersedes:
            print(f"    supersedes: {result.supersedes} (换发/补发)")
        for d in result.documents:
            print(f"    {d['file']}: {d['seals']} seal(s), {'valid' if d['valid'] else 'NOT valid'}")
        for p in result.problems:
            print(f"    ✘ {p.file}: {p.reason}")
    return 0 if result.ok else 1


def run_eep(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Signed by the archiving unit's key, opened by the same path as the archive_batch DAG: its
    service PIN is resolved by the installation, never typed, and a mismatch never counts a try."""
    from archive.eep import write_eep
    from archive.integration import archive_signer
    from archive.package import PackageError

    settings = settings or get_settings()
    folder = Path(args.folder)
    if not (folder / "metadata.json").is_file():
        inside = _packages_inside(folder) if folder.is_dir() else []
        raise UsageError(_not_a_package(folder, inside, f"sealflow archive eep {inside[0]} -o {args.out}") if inside
                         else f"{folder}: not a downloaded archival package (no metadata.json)")
    try:
        signer = archive_signer(settings)
    except Exception as exc:  # the key store names the problem (unknown key, wrong PIN, locked)
        raise UsageError(f"archiving unit key {settings.archive_key_id!r}: {exc}") from None
    try:
        out = write_eep(folder, Path(args.out), signer)
    except (PackageError, OSError, ValueError, KeyError) as exc:
        raise CheckFailed(f"{folder}: cannot export: {exc}") from None
    print(out)
    return 0


def run_fixity(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from archive.integration import fixity_with_repair

    settings = settings or get_settings()
    report = fixity_with_repair(settings, _sessions(settings), repair=not args.no_repair)
    if args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    else:
        print(f"checked {report['records_checked']} package(s): "
              f"{'all intact' if report['ok'] else report['problem_counts']}")
        for p in report["problems"]:
            print(f"    ✘ {p['archival_code']} {p['key']}: {p['problem']} — {p['reason']}")
        copies = report.get("copies")
        if copies:
            print(f"copies: {copies['objects_checked']} object(s) in both stores, {copies['bad_copies']} bad "
                  f"cop{'y' if copies['bad_copies'] == 1 else 'ies'}, {copies['repaired']} repaired (audited)")
            for p in copies["problems"]:
                mark = "repaired" if p["repaired"] else "✘"
                print(f"    {mark} {p['store']} {p['key']}: {p['problem']} — {p['reason']}")
        print(f"report: {report.get('report_key', '-')}")
    return 0 if report["ok"] else 1
