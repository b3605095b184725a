"""OFD (GB/T 33190) packages: safe reading, sample certificates, stamping (签章) and 验章."""

from stamping.ofd.package import OfdError, OfdPackage
from stamping.ofd.reader import OfdDocument, open_ofd

__all__ = ["OfdDocument", "OfdError", "OfdPackage", "open_ofd"]
