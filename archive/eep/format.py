"""What the EEP writer and reader agree on: the namespace, the signature algorithm, the 签名规则
and 锁定规则 and the byte markers of the spans they sign, and :class:`EepError`.

Decision: the signed spans are named by byte markers (``<被签名对象`` … ``</被签名对象>``), because
the signatures cover the exact bytes as written in the file, not a canonical form of the XML.
"""

from __future__ import annotations

from archive.package import PackageError

NS = "http://www.saac.gov.cn/standards/ERM/encapsulation"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SIGN_RULE = ("SM2-with-SM3 (GB/T 35276, default user id) over the exact UTF-8 bytes of the 被签名对象 element "
             "as written in this file, from '<被签名对象' through '</被签名对象>'")
LOCK_RULE = ("SM2-with-SM3 over the exact UTF-8 bytes of the 电子签名 element it names, from '<电子签名' "
             "through '</电子签名>'")
SIGNED_START = "<被签名对象".encode()
SIGNED_END = "</被签名对象>".encode()
LOCKED_START = "<电子签名>".encode()
LOCKED_END = "</电子签名>".encode()


class EepError(PackageError):
    """An EEP that cannot be written or read."""
