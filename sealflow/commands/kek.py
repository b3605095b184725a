"""``sealflow kek split|recover`` — escrow of the key-encryption key (密钥托管) among custodians.

* ``split --shares N --threshold K --out DIR`` — write N share files (0600, one per custodian) into a new
  or empty DIR; any K of them rebuild the KEK;
* ``recover [SHARE_FILE ...] [--to FILE]`` — rebuild the KEK from K share files (or share lines typed on
  standard input, one per line) and write it 0600 to FILE (default: the home's KEK file); an existing
  file is never overwritten.

Shares are never taken as command-line arguments: arguments are visible to every user in ``ps``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gmpki.keys.escrow import EscrowError, Share, combine, split
from kernel.files import write_atomic
from kernel.keys import kek_material
from kernel.settings import Settings, get_settings
from sealflow.exits import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("kek", help="escrow of the key-encryption key (密钥托管)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="kek_command", metavar="ACTION", required=True)
    s = sub.add_parser("split", help="split the KEK into custodians' shares")
    s.add_argument("--shares", type=int, required=True, help="how many custodians (n)")
    s.add_argument("--threshold", type=int, required=True, help="how many shares rebuild the KEK (k)")
    s.add_argument("--out", type=Path, required=True, help="a new or empty folder for the share files")
    s.set_defaults(handler=run_split)
    r = sub.add_parser("recover", help="rebuild the KEK from k shares")
    r.add_argument("share_files", nargs="*", type=Path, help="share files; none: read share lines from stdin")
    r.add_argument("--to", type=Path, help="where to write the KEK (default: the home's KEK file)")
    r.set_defaults(handler=run_recover)


def run_split(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty folder; give a new folder for the shares")
    try:
        shares = split(kek_material(settings), args.shares, args.threshold)
    except EscrowError as exc:
        raise UsageError(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for share in shares:
        write_atomic(out / f"kek-share-{share.x}-of-{len(shares)}.txt", (share.encode() + "\n").encode())
    print(f"wrote {len(shares)} shares to {out} (0600 each); any {args.threshold} rebuild the KEK "
          f"(fingerprint {shares[0].fingerprint}). Give one file to each custodian, then delete the folder.")
    return 0


def _read_shares(files: list[Path]) -> list[Share]:
    lines: list[tuple[str, str]] = []
    if files:
        for path in files:
            if not path.is_file():
                raise UsageError(f"{path}: no such share file")
            lines += [(str(path), line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        lines = [("stdin", line) for line in sys.stdin.read().splitlines() if line.strip()]
    shares = []
    for source, line in lines:
        try:
            shares.append(Share.decode(line))
        except EscrowError as exc:
            raise UsageError(f"{source}: {exc}") from None
    return shares


def run_recover(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    target: Path = args.to or settings.resolved_kek_file
    if target.exists():
        raise UsageError(f"{target} exists; a KEK is never overwritten — move it away or give --to")
    try:
        kek = combine(_read_shares(args.share_files))
    except EscrowError as exc:
        raise UsageError(f"cannot rebuild the KEK: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(target, kek.hex().encode())
    print(f"KEK rebuilt and written to {target} (0600)")
    return 0
