"""The audit log's anchors in the archive bucket: the one place that puts the registry's
:class:`~stamping.audit.anchors.BucketAnchors` on the archive's Object-Locked store.

It lives on the archive side because the archive owns the bucket and its client; the registry only
receives the anchors it should publish (``run_maintenance(..., anchors=...)``), so ``stamping`` never
imports ``archive``.
"""

from __future__ import annotations

from archive.replica import archive_store
from kernel.settings import Settings
from stamping.audit.anchors import BucketAnchors


def bucket_anchors(settings: Settings) -> BucketAnchors:
    """The audit anchors in the archive bucket of ``settings`` (the bucket must have Object Lock); written
    to the archive replica too, like every archived object."""
    store = archive_store(settings)
    store.ensure_bucket()
    return BucketAnchors(store, settings.audit_key_id)
