"""OFD (GB/T 33190) packages: safe reading, sample certificates, stamping (签章) and 验章.

``stamp_ofd``, ``verify_ofd`` and ``make_sample_certificate_ofd`` are importable from here; they
load lazily so that reading an OFD does not pull in the crypto stack.
"""

from typing import Any

from stamping.ofd.package import OfdError, OfdPackage
from stamping.ofd.reader import OfdDocument, open_ofd

__all__ = ["OfdDocument", "OfdError", "OfdPackage", "make_sample_certificate_ofd", "open_ofd", "stamp_ofd",
           "verify_ofd"]

_LAZY = {"stamp_ofd": "stamping.ofd.stamp", "verify_ofd": "stamping.ofd.verify",
         "make_sample_certificate_ofd": "stamping.ofd.writer"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stamping.ofd' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
