"""四性检测 (DA/T 70): the catalogue as data, the check functions, scanners and the report."""

from archive.checks.catalogue import CATALOGUE, CatalogueItem, items_for
from archive.checks.items import FAIL, NA, NOT_PERFORMED, PASS, BatchFacts, RecordContext
from archive.checks.report import CheckReport, run_checks
from archive.checks.scanner import ClamAVScanner, MalwareScanner, NoScanner, ScanOutcome, default_scanner

__all__ = [
    "CATALOGUE", "FAIL", "NA", "NOT_PERFORMED", "PASS", "BatchFacts", "CatalogueItem", "CheckReport",
    "ClamAVScanner", "MalwareScanner", "NoScanner", "RecordContext", "ScanOutcome", "default_scanner",
    "items_for", "run_checks",
]
