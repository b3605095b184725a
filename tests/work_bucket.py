"""Reading what the pipeline left in the work bucket (``kernel.workstore``) from a test: a sealed file or a
report is named ``s3://<work bucket>/batches/<id>/...`` in the database, never a local path."""

from __future__ import annotations

from kernel.objectstore import s3_client
from kernel.settings import Settings
from kernel.workstore import S3WorkStore


def work_store(settings: Settings) -> S3WorkStore:
    """The stack's work bucket, as the tasks' composition root wires it."""
    return S3WorkStore(s3_client(settings), settings.work_bucket)


def read_object(settings: Settings, name: str) -> bytes:
    """The bytes of the object ``name`` (``BatchDocument.output_path``, a report's name)."""
    store = work_store(settings)
    return store.get(store.key_of(name))
