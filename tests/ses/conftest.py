"""Fixtures for the seal-data tests: interop files read once."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

SEAL_FILES = ["UserV1.esl", "UserV4.esl", "UserV5.esl"]
SIGNATURE_FILES = ["SignedValueV4.dat", "SignedValueV5.dat"]
# Signed OFD packages from other producers: their SignedValue.dat are SES_Signatures too.
OFD_FILES = ["v4signed.ofd", "signedFile.ofd", "SESV4SignDoc.ofd"]


@pytest.fixture(scope="session")
def interop_bytes(interop_dir: Path) -> dict[str, bytes]:
    """name → bytes for every .esl/.dat in the interop folder and every SignedValue.dat,
    Seal.esl and Signature.xml inside the signed OFD packages (as ``pkg.ofd:member``)."""
    out = {p.name: p.read_bytes() for p in sorted(interop_dir.iterdir()) if p.suffix in (".esl", ".dat")}
    for name in OFD_FILES:
        with zipfile.ZipFile(interop_dir / name) as zf:
            for member in zf.namelist():
                if member.endswith(("SignedValue.dat", "Seal.esl", "Signature.xml")):
                    out[f"{name}:{member}"] = zf.read(member)
    return out
