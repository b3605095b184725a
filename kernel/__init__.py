"""The foundation every domain stands on: settings, the database and its migrations, atomic 0600 files,
canonical JSON, the object store client, and the installation's key store and service keys.

It holds what SealFlow *keeps* and where (``Settings`` is the only reader of the environment), and
knows nothing of seals, archives or filings: it imports only :mod:`gmpki` and third-party libraries, so
that the domains can import it and never the other way round.
"""
