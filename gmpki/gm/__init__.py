"""GM/T cryptography (国密): SM2 signatures, SM3 hashing, SM4-GCM, and their OIDs.

SM2 goes through the system OpenSSL 3 libcrypto (a thin ctypes binding); SM3 through hashlib;
SM4 through pyca/cryptography.
"""
