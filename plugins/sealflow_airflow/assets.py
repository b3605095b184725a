"""The Assets that chain SealFlow's DAGs, declared once: ``stamp_batch`` updates the stamped batches,
``archive_batch`` runs on them and updates the archived batches, ``file_records`` runs on both.

One declaration, imported by the DAG files and the task glue alike, so that a producer and its
consumers can never name two different URIs (the URIs are fixed: deployed schedules refer to them).
"""

from __future__ import annotations

from airflow.sdk import Asset

STAMPED_BATCHES = Asset("sealflow://batches/stamped")
ARCHIVED_BATCHES = Asset("sealflow://batches/archived")
