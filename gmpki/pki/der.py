"""DER by hand, and the CMS look-ups every SignedData reader needs: one copy for the whole tree.

Three writers build DER around bytes that must stay verbatim (a signed SESeal, a TSTInfo, signed
attributes): the RFC 3161 time-stamp authority (:mod:`gmpki.pki.timestamp`), the SES_Signature
maker (``stamping.ses.make``) and the PDF CMS (``stamping.pdf.cms``). They splice bytes instead of
building asn1crypto trees because the pipeline signs thousands of documents per batch and an
asn1crypto tree costs about a millisecond. The length rules of DER are easy to get subtly wrong, so
they live here once, in the lowest layer, where every writer may import them.

The readers (the time-stamp token check, the PDF and the OFD signature checks) walk DER by hand the
same way (:func:`read_tlv`), find the certificate a
SignerInfo names and both show a certificate's holder by name; those two look-ups live here too,
cached because a batch sees the same few certificates on every document.
"""

from __future__ import annotations

from functools import lru_cache

from asn1crypto import cms, core, x509

__all__ = ["attribute", "der_length", "display_name", "oid_der", "read_tlv", "signer_certificate", "tlv"]

# What asn1crypto raises on bytes that are not the structure asked for.
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


def der_length(n: int) -> bytes:
    """The DER length octets of a value ``n`` bytes long (short form below 128, long form above)."""
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: the single-byte ``tag``, the length of ``content``, then ``content`` verbatim."""
    return bytes((tag,)) + der_length(len(content)) + content


def read_tlv(data: bytes, pos: int, error: type[Exception] = ValueError) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at ``pos``; raises ``error`` (the
    caller's own exception type, so its callers see one kind) on a truncated element or a length form
    DER does not allow (indefinite, or more than four length octets)."""
    if pos + 2 > len(data):
        raise error("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        k = first & 0x7F
        if not 0 < k <= 4 or pos + k > len(data):
            raise error("bad DER length")
        length, pos = int.from_bytes(data[pos:pos + k], "big"), pos + k
    if pos + length > len(data):
        raise error("truncated DER")
    return tag, pos, pos + length


@lru_cache(maxsize=128)
def oid_der(dotted: str) -> bytes:
    """DER of an OBJECT IDENTIFIER; cached: a writer encodes the same few OIDs on every document."""
    return core.ObjectIdentifier(dotted).dump()


def attribute(oid: str, value_der: bytes) -> bytes:
    """A CMS Attribute (RFC 5652 §5.3): SEQUENCE { attrType, SET OF one already-encoded value }."""
    return tlv(0x30, oid_der(oid) + tlv(0x31, value_der))


@lru_cache(maxsize=256)
def _cert_ids(cert_der: bytes) -> tuple[bytes, int, bytes | None]:
    """(issuer DER, serial, SKI) of a certificate; cached: every document carries the same signer."""
    cert = x509.Certificate.load(cert_der)
    return cert.issuer.dump(), cert.serial_number, cert.key_identifier


@lru_cache(maxsize=256)
def signer_certificate(sid_der: bytes, certs: tuple[bytes, ...]) -> bytes | None:
    """The certificate among ``certs`` that a SignerIdentifier (DER) names — by issuer and serial or by
    subject key identifier — or None when none of them is it."""
    sid = cms.SignerIdentifier.load(sid_der)
    for der in certs:
        issuer, serial, ski = _cert_ids(der)
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if serial == ias["serial_number"].native and issuer == ias["issuer"].dump():
                return der
        elif ski == sid.chosen.native:
            return der
    return None


@lru_cache(maxsize=256)
def display_name(cert_der: bytes) -> str:
    """The holder a person would name: the subject's CN, else its O, else "" (also for unreadable DER)."""
    try:
        subject = x509.Certificate.load(cert_der).subject.native
    except _PARSE_ERRORS:
        return ""
    return str(subject.get("common_name") or subject.get("organization_name") or "")
