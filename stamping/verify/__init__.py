"""验章: verification results shared by the OFD and PDF verifiers, and their reports."""
