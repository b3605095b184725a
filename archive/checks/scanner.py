"""Malware scanning (病毒检测) behind an interface: ClamAV where installed, else "not performed".

A scan that did not run is never reported as clean: :class:`NoScanner` and a ClamAV without its
signature database both give ``not_performed`` with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ScanOutcome:
    status: str  # "pass" (scanned, clean) | "fail" (found something) | "not_performed"
    reason: str
    engine: str = ""


class MalwareScanner(Protocol):
    name: str

    def scan(self, paths: Sequence[Path]) -> dict[Path, ScanOutcome]: ...


class NoScanner:
    """No scanner configured: every file is reported as not scanned."""

    name = "none"

    def __init__(self, reason: str = "no malware scanner is installed") -> None:
        self.reason = reason

    def scan(self, paths: Sequence[Path]) -> dict[Path, ScanOutcome]:
        return {p: ScanOutcome("not_performed", self.reason) for p in paths}


class ClamAVScanner:
    """ClamAV through ``clamdscan`` (daemon, fast) or ``clamscan`` — one call per batch of files."""

    name = "clamav"

    def __init__(self, executable: str, timeout: float = 600.0) -> None:
        self.executable = executable
        self.timeout = timeout

    @classmethod
    def find(cls) -> ClamAVScanner | None:
        for exe in ("clamdscan", "clamscan"):
            path = shutil.which(exe)
            if path:
                return cls(path)
        return None

    def _command(self, paths: Sequence[Path]) -> list[str]:
        args = [self.executable, "--no-summary", "--infected"]
        if Path(self.executable).name == "clamdscan":
            args.append("--fdpass")  # the daemon may not read our files by itself
        return [*args, "--", *(str(p) for p in paths)]

    def scan(self, paths: Sequence[Path]) -> dict[Path, ScanOutcome]:
        if not paths:
            return {}
        try:
            proc = subprocess.run(self._command(paths), capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {p: ScanOutcome("not_performed", f"ClamAV did not run: {exc}", self.name) for p in paths}
        # clamscan: 0 clean, 1 virus found, 2 error (e.g. no signature database).
        if proc.returncode not in (0, 1):
            why = (proc.stderr.strip().splitlines() or ["unknown error"])[-1][:300]
            return {p: ScanOutcome("not_performed", f"ClamAV failed (exit {proc.returncode}): {why}", self.name)
                    for p in paths}
        found: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            if line.endswith(" FOUND") and ": " in line:
                name, _, sig = line[: -len(" FOUND")].rpartition(": ")
                found[name] = sig
        if proc.returncode == 1 and not found:
            return {p: ScanOutcome("not_performed", "ClamAV reported a finding it did not name; treat as not scanned",
                                   self.name) for p in paths}
        out = {}
        for p in paths:
            sig = found.get(str(p))
            out[p] = (ScanOutcome("fail", f"ClamAV found {sig}", self.name) if sig
                      else ScanOutcome("pass", "ClamAV scanned, nothing found", self.name))
        return out


def default_scanner() -> MalwareScanner:
    return ClamAVScanner.find() or NoScanner()
