"""GM cryptography and PKI (国密与公钥基础设施): SM2/SM3/SM4, certificates, a demo CA, trust stores,
RFC 3161 time stamps, the software key store, signers and KEK escrow.

The bottom layer of the house: it imports nothing of SealFlow's, only the standard library and the
crypto libraries, and takes plain arguments (a key directory and a KEK, a trust-anchor list) — never the
installation's ``Settings``. That is what lets the domains, the foundation and the tools share one
implementation of the cryptography without any of them pulling the others in.
"""
