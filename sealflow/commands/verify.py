"""``sealflow verify PATH... [--trust ROOT.pem ...] [--json] [--html OUT]`` — 验章 of OFD/PDF files.

Each document gets one verdict: valid, valid_with_warnings (intact and trusted, but a part a reader
draws is not covered, or later updates only add signatures) or not_valid. Exit 0 when every document
is valid, 1 when any is not_valid, 3 when none is not_valid but some are valid_with_warnings,
2 on usage errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kernel.files import write_atomic
from kernel.settings import Settings, get_settings
from sealflow.exits import UsageError

log = logging.getLogger(__name__)
DOC_SUFFIXES = (".ofd", ".pdf")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="verify sealed OFD/PDF documents (验章)",
                              description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders: their .ofd/.pdf files)")
    p.add_argument("--trust", action="append", default=[], metavar="ROOT.pem",
                   help="a trusted root certificate (PEM or DER); repeatable; default: SEALFLOW_TRUST_ROOTS")
    p.add_argument("--json", action="store_true", help="print one JSON array of results")
    p.add_argument("--html", metavar="OUT", help="write a self-contained HTML report to OUT")
    p.add_argument("--no-registry", action="store_true", help="do not look seals up in the SealFlow registry")
    p.set_defaults(handler=run)


def expand_paths(paths: list[str], suffixes: tuple[str, ...] = DOC_SUFFIXES) -> list[Path]:
    """Files as given; folders expand (recursively, sorted) to their files with these suffixes."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise UsageError(f"{raw}: no {'/'.join(suffixes)} files in this folder")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise UsageError(f"{raw}: no such file or folder")
    return out


def load_trust(paths: list[str], settings: Settings):
    roots = paths or list(settings.trust_roots)
    if not roots:
        return None
    from gmpki.pki.trust import TrustStore

    for r in roots:
        if not Path(r).is_file():
            raise UsageError(f"{r}: trusted root certificate not found")
    try:
        return TrustStore.from_paths(roots)
    except (ValueError, OSError) as exc:
        raise UsageError(f"cannot read trusted roots: {exc}") from None


def registry_lookup(settings: Settings):
    """The registry's status lookup when a SealFlow database is configured, else None (its
    audited-use lookup is ``lookup.__self__.use_recorded``)."""
    if not settings.database_url and not (settings.state_dir / "sealflow.db").exists():
        return None
    from sealflow import root

    try:
        return root.registry(settings, migrated=False).status_at
    except Exception as exc:  # the registry is optional for 验章: say so and go on without it
        log.warning("seal registry not available (%s); seal status is not checked", exc)
        return None


EXIT_VALID, EXIT_NOT_VALID, EXIT_WARNINGS = 0, 1, 3


def _label(r) -> str:
    from stamping.verdict.result import Verdict

    if r.verdict == Verdict.VALID:
        return "VALID"
    if r.verdict == Verdict.VALID_WITH_WARNINGS:
        return "VALID-WITH-WARNINGS"
    return "INTACT-UNTRUSTED" if r.intact and not r.error else "INVALID"


def _print_text(results) -> None:
    for r in results:
        print(f"{_label(r):19} {r.path} ({r.format}, {len(r.signatures)} signature(s), verdict {r.verdict})")
        if r.error:
            print(f"    error: {r.error}")
        for w in r.warnings:
            print(f"    ⚠ {w}")
        for i, s in enumerate(r.signatures, 1):
            timing = next((c for c in s.checks if c.name == "signing_time"), None)
            basis = "" if timing is None else (" (proven by a time-stamp)" if "proven by" in timing.reason
                                               else " (claimed, not proven)")
            print(f"    [{i}] {s.seal_name or '?'} ({s.es_id or '?'}) by {s.signer or '?'} "
                  f"at {s.signed_at or '?'}{basis}")
            for c in s.checks:
                if not c.ok:
                    print(f"        {'⚠' if c.kind == 'warning' else '✘'} {c.name}: {c.reason}")


def exit_code(results) -> int:
    """0 only when every document is valid; 1 when any is not_valid; 3 for warnings only."""
    from stamping.verdict.result import Verdict

    verdicts = {r.verdict for r in results}
    if Verdict.NOT_VALID in verdicts:
        return EXIT_NOT_VALID
    return EXIT_WARNINGS if Verdict.VALID_WITH_WARNINGS in verdicts else EXIT_VALID


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    from stamping.verify.dispatch import verify_file
    from stamping.verify.report import dumps, render_html

    settings = settings or get_settings()
    files = expand_paths(args.paths)
    trust = load_trust(args.trust, settings)
    lookup = None if args.no_registry else registry_lookup(settings)
    uses = getattr(getattr(lookup, "__self__", None), "use_recorded", None)
    results = [verify_file(f, trust, lookup, use_lookup=uses) for f in files]
    if args.html:
        write_atomic(Path(args.html), render_html(results).encode("utf-8"))
    if args.json:
        sys.stdout.write(dumps(results) + "\n")
    else:
        _print_text(results)
    return exit_code(results)
