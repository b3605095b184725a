"""``sealflow stamp --seal ES_ID --pin-env VAR [--placement SPEC] IN OUT`` — seal OFD/PDF files (签章).

IN and OUT are files, or folders (every .ofd/.pdf under IN is sealed into the same relative path
under OUT) with a progress bar and a summary. The PIN is read from the environment variable named
by --pin-env, never from the command line (it would show in ``ps`` and shell history).
Placement SPEC (see stamping.placement): ``anchor:（盖章）[,dx=MM,dy=MM][,page=N]``
(the default: the seal centred on the （盖章） line), or ``page=N,x=MM,y=MM`` (seal centre,
mm from the page's top-left corner); add ``--cross-page`` for a 骑缝章 across the right edge of every page.
Exit 0 when every file was sealed, 1 when any failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kernel.files import write_atomic
from kernel.settings import Settings, get_settings
from sealflow.commands.verify import DOC_SUFFIXES
from sealflow.exits import UsageError

DEFAULT_ANCHOR = "（盖章）"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stamp", help="seal OFD/PDF documents (签章)", description=__doc__.splitlines()[0])
    p.add_argument("--seal", required=True, metavar="ES_ID", help="the seal's code (印章编码)")
    p.add_argument("--pin-env", required=True, metavar="VAR", help="environment variable holding the PIN")
    p.add_argument("--placement", default=f"anchor:{DEFAULT_ANCHOR}", metavar="SPEC",
                   help="anchor:TEXT[,dx=MM,dy=MM][,page=N] or page=N,x=MM,y=MM (seal centre, mm from top-left)")
    p.add_argument("--cross-page", action="store_true", help="骑缝章: split the seal across the right edge")
    p.add_argument("--actor", default=None, help="checked, not trusted: refused unless it is who you "
                                                  "authenticate as (the mapped OS user, or SEALFLOW_USER and "
                                                  "SEALFLOW_USER_CREDENTIAL)")
    p.add_argument("--reason", default="sealflow stamp", help="reason recorded in the audit log")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.set_defaults(handler=run)


def parse_placement(spec: str, cross_page: bool = False):
    from stamping.placement import Placement, PlacementError

    try:
        return Placement.parse(spec, cross_page=cross_page)
    except PlacementError as exc:
        raise UsageError(str(exc)) from None


def stamp_bytes(data: bytes, path: str, seal_der: bytes, signer, placement, signed_at=None,
                timestamper=None) -> tuple[bytes, str]:
    """Seal one document (OFD or PDF, told by content and name: the container checks 验章 runs too);
    returns (sealed bytes, format)."""
    from stamping.container import identify

    fmt = identify(data, path)
    if fmt == "ofd":
        from stamping.ofd.stamp import stamp_ofd

        return stamp_ofd(data, seal_der, signer, placement, signed_at, path=path, timestamper=timestamper), fmt
    if fmt == "pdf":
        from stamping.pdf import stamp_pdf

        return stamp_pdf(data, seal_der, signer, placement, signed_at, path=path, timestamper=timestamper), fmt
    raise ValueError(f"{path}: not an OFD or PDF file")


def plan(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise UsageError(f"{dst}: IN is a folder, so OUT must be a folder")
        files = sorted(f for f in src.rglob("*") if f.is_file() and f.suffix.lower() in DOC_SUFFIXES)
        if not files:
            raise UsageError(f"{src}: no .ofd/.pdf files in this folder")
        return [(f, dst / f.relative_to(src)) for f in files]
    if not src.is_file():
        raise UsageError(f"{src}: no such file or folder")
    if dst.is_dir():
        dst = dst / src.name
    return [(src, dst)]


class Progress:
    """A one-line progress bar on stderr when it is a terminal, else nothing until the summary."""

    def __init__(self, total: int, stream=None) -> None:
        stream = stream or sys.stderr  # looked up now: a default bound at import goes stale under test capture
        self.total, self.done, self.stream = total, 0, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.perf_counter()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.tty:
            return
        width = 30
        filled = int(width * self.done / max(self.total, 1))
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {label[-40:]:40}")
        self.stream.flush()
        if self.done == self.total:
            self.stream.write("\n")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _registry(settings: Settings):
    from sealflow import root  # using a seal checks its people against the registers (root does)

    return root.registry(settings, migrated=False)


def _seal_signer(registry, es_id: str, pin: str, actor: str):
    import inspect

    params = inspect.signature(registry.seal_signer).parameters
    if "actor" in params:
        return registry.seal_signer(es_id, pin, actor=actor)
    return registry.seal_signer(es_id, pin)


def run(args: argparse.Namespace, settings: Settings | None = None, registry=None) -> int:
    from gmpki.gm.sm3 import sm3

    settings = settings or get_settings()
    pin = os.environ.get(args.pin_env)  # the CLI is the boundary that takes the PIN from its caller
    if not pin:
        raise UsageError(f"environment variable {args.pin_env} is not set or empty")
    placement = parse_placement(args.placement, args.cross_page)
    jobs = plan(Path(args.input), Path(args.output))
    registry = registry or _registry(settings)
    from sealflow.commands.seal import authenticated_user
    from stamping.registry import RegistryError

    try:  # who stamps is who authenticates (OS login mapping or SEALFLOW_USER + credential); --actor is checked
        actor = authenticated_user(registry, args.actor)
    except RegistryError as exc:
        print(f"sealflow stamp: {exc}", file=sys.stderr)
        return 1
    try:
        signer, seal_der = _seal_signer(registry, args.seal, pin, actor)
    except Exception as exc:  # wrong PIN, locked key, unknown or inactive seal: the message says which
        print(f"sealflow stamp: cannot use seal {args.seal}: {exc}", file=sys.stderr)
        return 1
    from gmpki.keys.signer import RecordingSigner
    from gmpki.pki.tsa_client import TsaClient

    signer = RecordingSigner(signer)
    tsa = TsaClient(settings.resolved_tsa_url)  # every seal carries the TSA's token (可信时间戳)
    progress = Progress(len(jobs))
    failures: list[str] = []
    for src, dst in jobs:
        try:
            out, _fmt = stamp_bytes(src.read_bytes(), str(src), seal_der, signer, placement,
                                    datetime.now(UTC), tsa)
            # Audit first: a use that was recorded but not written is safe; the reverse is not.
            registry.record_use(args.seal, actor, f"{dst} sm3:{sm3(out).hex()}", None, args.reason,
                                signature_value=signer.last)
            write_atomic(dst, out)
        except Exception as exc:  # one bad document must not stop a folder run; it is reported
            failures.append(f"{src}: {exc}")
        progress.step(src.name)
    ok = len(jobs) - len(failures)
    rate = ok / progress.elapsed if progress.elapsed > 0 else 0.0
    print(f"stamped {ok}/{len(jobs)} document(s) with seal {args.seal} in {progress.elapsed:.2f}s "
          f"({rate:.1f}/s); failed {len(failures)}")
    for line in failures:
        print(f"  failed: {line}", file=sys.stderr)
    return 0 if not failures else 1
