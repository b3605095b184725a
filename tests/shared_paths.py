"""Where the read-only ``shared/`` folder (interop files, reference schemas) is: beside the checkout,
where ``SEALFLOW_SHARED_DIR`` points, or at /work/shared."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [Path(p) for p in (os.environ.get("SEALFLOW_SHARED_DIR", ""),) if p] + [
    REPO_ROOT.parent / "shared", Path("/work/shared")]
SHARED_DIR = next((p for p in _CANDIDATES if (p / "interop").is_dir()), REPO_ROOT.parent / "shared")
INTEROP_DIR = SHARED_DIR / "interop"
EEP_XSD = SHARED_DIR / "reference" / "eep" / "DA-T-48-2009.xsd"
