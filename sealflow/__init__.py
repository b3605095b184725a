"""SealFlow configuration, database plumbing, the ``sealflow`` CLI and the embedded stack."""
