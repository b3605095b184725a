"""The embedded time-stamp authority program (``python -m stamping.tsa.server``).

Only the server lives here; tokens themselves (issue, read, verify) are PKI and live in
:mod:`gmpki.pki.timestamp`, the HTTP client in :mod:`gmpki.pki.tsa_client`.
"""
