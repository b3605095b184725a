"""Keys: the ``Signer`` interface and the software key store (keys SM4-GCM encrypted at rest)."""
