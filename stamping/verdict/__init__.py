"""What verifying a sealed document found (Verdict, DocumentResult, SignatureResult) and the checks the
OFD and PDF verifiers share (the seal's own signature, its status at signing time, cached trust).

It sits below ``stamping.ofd`` and ``stamping.pdf``, which use it, and below ``stamping.verify``, which
chooses between them — so that none of the three imports another back.
"""
