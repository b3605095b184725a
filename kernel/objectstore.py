"""S3 clients for SealFlow's object store (the embedded SeaweedFS, MinIO or a cloud S3).

Only the endpoint, credentials and buckets change between the embedded stack and production;
they all come from :class:`~kernel.settings.Settings` (or, inside Airflow, the ``sealflow_s3``
connection — see ``plugins/sealflow_airflow/hooks.py``).
"""

from __future__ import annotations

from typing import Any

from kernel.settings import Settings

# boto3 >= 1.36 sends CRC checksums by default; some S3-compatible stores mishandle them, so we
# only send/validate checksums when an operation requires them (Object Lock puts do: Content-MD5).
CHECKSUM_ENV = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
}

# Bodies up to this size are sent without ``Expect: 100-continue`` (see :func:`send_small_bodies_at_once`).
EXPECT_CONTINUE_FROM = 1024 * 1024


def client_config(**extra: Any) -> Any:  # botocore.config.Config
    from botocore.config import Config

    options: dict[str, Any] = {
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "s3": {"addressing_style": "path"},
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 60,
    }
    options.update(extra)
    return Config(**options)


def make_s3_client(endpoint_url: str | None, access_key: str | None, secret_key: str | None,
                   region: str = "us-east-1", **config: Any) -> Any:  # a botocore S3 client
    """A boto3 S3 client with path-style addressing and checksums only when required."""
    import boto3

    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        region_name=region,
        config=client_config(**config),
    )
    send_small_bodies_at_once(client)
    return client


def send_small_bodies_at_once(client: Any) -> None:
    """PUTs of bodies up to :data:`EXPECT_CONTINUE_FROM` bytes go without ``Expect: 100-continue``.

    botocore asks for it on every PUT whose body is file-like, and it makes a ``bytes`` body file-like:
    each upload then sends its headers, waits for the store's interim ``100 Continue`` and only then
    its body — one more exchange per object. The header saves sending a large body the store would
    refuse (a failed precondition, a bad signature); for an archive package (~50 KB) the exchange costs
    more than the body. SeaweedFS 4.48 accepts both and still refuses an ``If-None-Match: *`` clash with
    412. Measured there (locked PUTs of ~50 KB, A/B windows in one process): SeaweedFS CPU 0.09–0.19 ms
    less per PUT of ~2.6 ms, ours unchanged within noise. Larger or unsized bodies keep the header.
    """
    from botocore.utils import determine_content_length

    def drop_expect(request: Any, **_kwargs: Any) -> None:
        if "Expect" in request.headers:
            size = determine_content_length(request.body)
            if size is not None and size <= EXPECT_CONTINUE_FROM:
                del request.headers["Expect"]

    # Before signing, when the request is built: botocore adds the header in an earlier event
    # ('before-call'), and the SigV4 signature never covers it.
    for operation in ("PutObject", "UploadPart"):
        client.meta.events.register(f"before-sign.s3.{operation}", drop_expect)


def s3_client(settings: Settings, **config: Any) -> Any:  # a botocore S3 client
    """The S3 client for ``settings`` (endpoint = the embedded SeaweedFS unless ``s3_endpoint`` is set)."""
    return make_s3_client(settings.resolved_s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                          settings.s3_region, **config)


def replica_client(settings: Settings, **config: Any) -> Any:  # a botocore S3 client
    """The S3 client of the archive replica (the embedded second SeaweedFS unless ``replica_s3_endpoint``
    is set); its keys default to the primary store's."""
    return make_s3_client(settings.resolved_replica_endpoint, settings.replica_s3_access_key or settings.s3_access_key,
                          settings.replica_s3_secret_key or settings.s3_secret_key, settings.s3_region, **config)


def ensure_replica_bucket(client: Any, settings: Settings) -> None:
    """Create the replica's archive bucket (Object Lock + versioning) if missing (idempotent)."""
    bucket = settings.resolved_replica_bucket
    if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def ensure_buckets(client: Any, settings: Settings) -> None:
    """Create the work bucket and the archive bucket (Object Lock + versioning) if missing (idempotent)."""
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if settings.archive_bucket not in existing:
        client.create_bucket(Bucket=settings.archive_bucket, ObjectLockEnabledForBucket=True)
    # Object Lock implies versioning; setting it again is harmless and repairs a bucket made without it.
    client.put_bucket_versioning(Bucket=settings.archive_bucket, VersioningConfiguration={"Status": "Enabled"})
    if settings.work_bucket not in existing:
        client.create_bucket(Bucket=settings.work_bucket)
