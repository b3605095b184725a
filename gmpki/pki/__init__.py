"""PKI with SM2: certificate issuing, chain validation against trusted roots, a local demo CA."""

from gmpki.gm.oids import register_with_asn1crypto

register_with_asn1crypto()
