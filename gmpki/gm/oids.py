"""Object identifiers of the GM/T algorithms (GM/T 0006) and GB/T 35275 content types."""

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3 = "1.2.156.10197.1.401"
SM2_CURVE = "1.2.156.10197.1.301"
SM2_SIGN = "1.2.156.10197.1.301.1"
SM4 = "1.2.156.10197.1.104"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
GBT35275_DATA = "1.2.156.10197.6.1.4.2.1"
GBT35275_SIGNED_DATA = "1.2.156.10197.6.1.4.2.2"


def _rebuild_reverse_map(cls) -> None:
    # asn1crypto builds _reverse_map once per class (_setup); left at None after a change to _map,
    # ObjectIdentifier.set() then fails with "NoneType is not iterable" for every later value.
    reverse: dict = {}
    for key, value in cls._map.items():
        reverse.setdefault(value, key)  # an alias (a second OID for one name) never displaces the first
    cls._reverse_map = reverse


def register_with_asn1crypto() -> None:
    """Teach asn1crypto the GM names so certificates and keys on SM2 decode by name (idempotent)."""
    from asn1crypto import algos, cms, keys

    if SM2_CURVE not in keys.NamedCurve._map:
        keys.NamedCurve.register("sm2p256v1", SM2_CURVE, 32)
    algos.SignedDigestAlgorithmId._map.setdefault(SM2_WITH_SM3, "sm2_sm3")
    _rebuild_reverse_map(algos.SignedDigestAlgorithmId)
    algos.DigestAlgorithmId._map.setdefault(SM3, "sm3")
    _rebuild_reverse_map(algos.DigestAlgorithmId)
    cms.ContentType._map.setdefault(GBT35275_DATA, "gbt35275_data")
    cms.ContentType._map.setdefault(GBT35275_SIGNED_DATA, "gbt35275_signed_data")
    _rebuild_reverse_map(cms.ContentType)
