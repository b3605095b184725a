"""The identity registers' data file (身份核验登记文件): who the local identity simulator knows.

The embedded stack's simulator (``python -m stamping.registry.identity_simulator``) answers from this
file and re-reads it when it changes; the demo and the tests put their people and units in it with
:func:`register`. Kept apart from the simulator because that is a program of its own, which no domain
module imports. The file holds ID numbers: written whole, 0600, under a lock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from gmpki.private_files import make_private_dirs
from kernel.files import exclusive_lock, write_atomic


def _read(path: Path) -> dict[str, list[dict[str, str]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"persons": [], "units": []}
    return {"persons": list(data.get("persons", [])), "units": list(data.get("units", []))}


def load_registers(path: Path) -> dict[str, dict[str, str]]:
    """``{"persons": {id_number: name}, "units": {credit_code: name}}`` from the data file (empty when absent)."""
    data = _read(path)
    return {"persons": {p["id_number"].strip().upper(): p["name"] for p in data["persons"]},
            "units": {u["credit_code"].strip().upper(): u["name"] for u in data["units"]}}


def register(path: Path, persons: Iterable[tuple[str, str]] = (), units: Iterable[tuple[str, str]] = ()) -> None:
    """Put ``persons`` (name, 公民身份号码) and ``units`` (name, 统一社会信用代码) into the register file:
    a number already there gets the name given now. Written whole (0600, it holds ID numbers) under a
    lock, so two registrations at once both land; a running simulator picks the change up."""
    path = Path(path)
    make_private_dirs(path.parent)
    with exclusive_lock(path.with_name(f".{path.name}.lock")):
        data = _read(path)
        for kind, field, new in (("persons", "id_number", persons), ("units", "credit_code", units)):
            merged = {e[field].strip().upper(): e["name"] for e in data[kind]}
            merged.update({number.strip().upper(): name.strip() for name, number in new})
            data[kind] = [{"name": name, field: number} for number, name in sorted(merged.items())]
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))
