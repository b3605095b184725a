"""The console's name for the Chinese reason texts, which live in the domain (``stamping.reasons``)
so that the batch report and ``sealflow verify --html`` say the same as the console."""

from stamping.reasons import CHECK_ZH, FALLBACK, VERDICT_ZH, chinese

__all__ = ["CHECK_ZH", "FALLBACK", "VERDICT_ZH", "chinese"]
