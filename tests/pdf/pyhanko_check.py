"""pyHanko as the reference validator for our PDFs, taught SM2 through a SignatureValidator."""

from __future__ import annotations

import io

from asn1crypto import algos, cms, x509
from cryptography.exceptions import InvalidSignature
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.sig_validate import SignatureValidator

from gmpki.gm.oids import GBT35275_DATA, GBT35275_SIGNED_DATA, SM2_WITH_SM3, SM3
from gmpki.gm.sm2 import SM2PublicKey


def _rebuild(cls) -> None:
    """asn1crypto builds _reverse_map once per class; None after a change breaks ObjectIdentifier.set()."""
    reverse: dict = {}
    for key, value in cls._map.items():
        reverse.setdefault(value, key)  # an alias (a second OID for one name) never displaces the first
    cls._reverse_map = reverse


def _register_gm_oids() -> None:
    """Names asn1crypto needs for pyHanko to walk our CMS. GB/T 35275 'data' is mapped to the name
    'data' (an alias: pyHanko only validates detached signatures whose content type is 'data')."""
    if SM3 not in algos.DigestAlgorithmId._map:
        algos.DigestAlgorithmId._map[SM3] = "sm3"
        _rebuild(algos.DigestAlgorithmId)
    if SM2_WITH_SM3 not in algos.SignedDigestAlgorithmId._map:
        algos.SignedDigestAlgorithmId._map[SM2_WITH_SM3] = "sm2_sm3"
        _rebuild(algos.SignedDigestAlgorithmId)
    name = cms.ContentType._map.setdefault(GBT35275_SIGNED_DATA, "gbt35275_signed_data")
    cms.ContentInfo._oid_specs.setdefault(name, cms.SignedData)
    cms.ContentType._map[GBT35275_DATA] = "data"
    _rebuild(cms.ContentType)


class SM2Validator(SignatureValidator):
    def validate_signature(self, signature, signed_data, public_key_info, signature_algorithm, context=None):
        if signature_algorithm["algorithm"].dotted != SM2_WITH_SM3:
            raise InvalidSignature(f"not SM2-with-SM3: {signature_algorithm['algorithm'].dotted}")
        if not SM2PublicKey.from_spki(public_key_info.dump()).verify(signature, signed_data):
            raise InvalidSignature("SM2 signature does not verify")


def pyhanko_statuses(data: bytes, root_der: bytes, intermediates: list[bytes] = ()) -> list:
    _register_gm_oids()
    reader = PdfFileReader(io.BytesIO(data))
    out = []
    for sig in reader.embedded_signatures:
        vc = ValidationContext(trust_roots=[x509.Certificate.load(root_der)],
                               other_certs=[x509.Certificate.load(c) for c in intermediates],
                               signature_validator=SM2Validator())
        out.append(validate_pdf_signature(sig, vc))
    return out
