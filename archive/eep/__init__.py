"""DA/T 48-2009 EEP (基于XML的电子文件封装包) export and import, both streaming.

Writing uses lxml ``etree.xmlfile``: files are Base64-encoded chunk by chunk, never held whole in
memory. Reading feeds the file in chunks to an lxml parser with a *target* (SAX-like events, no
tree), decoding Base64 to disk as it arrives — so large documents need neither memory nor lxml's
``huge_tree``. Entities are not resolved and nothing is fetched from the network.

Signature (电子签名): SM2-with-SM3 (签名算法标识 ``1.2.156.10197.1.501``) by the archiving unit over
the exact bytes of the ``被签名对象`` element as written in the file, from ``<被签名对象`` through
``</被签名对象>`` (stated in 签名规则). A reader recomputes it from the raw bytes.

One module per side; this package re-exports their public names (``from archive.eep import
write_eep, read_eep, …``):

==========  ================================================================
``format``  namespace, algorithm, signature rules and markers, :class:`EepError`
``writer``  :func:`write_eep`
``reader``  :func:`read_eep`, :func:`validate_eep`, :class:`EepContent`
==========  ================================================================
"""

from __future__ import annotations

from archive.eep.format import (
    LOCK_RULE,
    LOCKED_END,
    LOCKED_START,
    NS,
    SIGN_RULE,
    SIGNED_END,
    SIGNED_START,
    SM2_WITH_SM3,
    EepError,
)
from archive.eep.reader import MAX_EEP_BYTES, EepContent, EepDocument, read_eep, validate_eep
from archive.eep.writer import CHUNK, ENCODING_DESCRIPTION, FORMAT_DESCRIPTION, write_eep

__all__ = [
    "CHUNK",
    "ENCODING_DESCRIPTION",
    "FORMAT_DESCRIPTION",
    "LOCKED_END",
    "LOCKED_START",
    "LOCK_RULE",
    "MAX_EEP_BYTES",
    "NS",
    "SIGNED_END",
    "SIGNED_START",
    "SIGN_RULE",
    "SM2_WITH_SM3",
    "EepContent",
    "EepDocument",
    "EepError",
    "read_eep",
    "validate_eep",
    "write_eep",
]
