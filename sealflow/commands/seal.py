"""``sealflow seal …`` — electronic seals (电子印章).

``sealflow seal inspect FILE [--json] [--picture OUT]`` prints what a seal (.esl) or a seal
signature (.dat, SignedValue.dat) holds; it does not verify (that is ``sealflow verify``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from sealflow.cli import UsageError

_PICTURE_SUFFIX = {"PNG": ".png", "JPG": ".jpg", "JPEG": ".jpg", "GIF": ".gif", "SVG": ".svg", "OFD": ".ofd"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("seal", help="electronic seals (电子印章)", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="seal_command", metavar="SUBCOMMAND", required=True)
    ins = sub.add_parser("inspect", help="print what a seal (.esl) or seal signature (.dat) holds")
    ins.add_argument("file", metavar="FILE", help="a DER SESeal (.esl) or SES_Signature (.dat)")
    ins.add_argument("--json", action="store_true", help="print JSON instead of text")
    ins.add_argument("--picture", metavar="OUT", help="also write the seal picture to OUT")
    ins.set_defaults(handler=run_inspect)


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_inspect(args: argparse.Namespace) -> int:
    from stamping.ses.codec import SesFormatError
    from stamping.ses.inspect import describe, format_text, picture_of, read_seal_file

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        der = read_seal_file(path)
        desc = describe(der)
    except SesFormatError as exc:
        raise UsageError(f"{path}: not a seal or seal signature: {exc}") from None
    print(json.dumps(desc, ensure_ascii=False, indent=2) if args.json else format_text(desc))
    if args.picture:
        kind, data = picture_of(der)
        out = Path(args.picture)
        if not out.parent.is_dir():
            raise UsageError(f"{out.parent}: no such folder for the picture")
        _write_atomic(out, data)
        if not args.json:
            print(f"picture ({kind}, {len(data)} bytes) written to {out}"
                  + ("" if out.suffix.lower() == _PICTURE_SUFFIX.get(kind.upper(), out.suffix.lower())
                     else f" (its type is {kind})"))
    return 0
