"""Where a batch's objects live in the work store (``kernel.workstore``): one layout, read by every step.

``batches/<batch_id>/`` holds::

    manifest.csv | manifest.json       the manifest as received
    in/<input_sm3>                     each received file, once per distinct content
    sealed/<input_sm3>-<row>.<pdf|ofd> the sealed file of the manifest's row
    made/<input_sm3>-<row>.json        its provenance note (never archived)
    report.json, report.html           the batch report

Decisions: keys are made of what the database already holds for a document (batch id, input SM3, manifest
row, format), so every step finds an object without listing, and a rerun writes the same key (idempotent).
The sealed key carries the row as well as the input digest because two rows of one batch may send the
same bytes (a benchmark's certificates share a layout): one sealed file never serves two records.
"""

from __future__ import annotations

from typing import Protocol

REPORT_NAMES = ("report.json", "report.html")


class _Document(Protocol):
    batch_id: str
    input_sm3: str
    row: int
    format: str


def batch_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}/"


def input_key(batch_id: str, input_sm3: str) -> str:
    return f"batches/{batch_id}/in/{input_sm3}"


def sealed_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}/sealed/"


def sealed_key(doc: _Document) -> str:
    return f"{sealed_prefix(doc.batch_id)}{doc.input_sm3}-{doc.row}.{doc.format}"


def note_key(doc: _Document) -> str:
    return f"batches/{doc.batch_id}/made/{doc.input_sm3}-{doc.row}.json"


def batch_file_key(batch_id: str, name: str) -> str:
    """The manifest and the reports: ``batches/<batch_id>/<name>``."""
    return f"{batch_prefix(batch_id)}{name}"
