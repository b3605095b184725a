"""Locked object storage for archives: S3 with Object Lock (COMPLIANCE), versioning and checksums.

Works against the embedded SeaweedFS and any S3 (MinIO, a cloud S3): only the endpoint, the keys
and the bucket differ. Facts checked against SeaweedFS 4.48: it verifies both ``Content-MD5`` and
``x-amz-checksum-sha256`` on upload (BadDigest otherwise), stores the SHA-256 checksum and returns it
on HEAD with ``ChecksumMode=ENABLED``, honours ``If-None-Match: *`` and refuses to delete a locked
version (AccessDenied); a retain-until date of 9999-12-31 is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from botocore.exceptions import ClientError

from kernel.settings import Settings

LOCK_MODE = "COMPLIANCE"


class StoreError(Exception):
    """An object-store operation failed; names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class ObjectConflict(StoreError):
    """The key already holds different content: archives are never overwritten."""


class ObjectMissing(StoreError):
    """No object under that key."""


class ObjectLocked(StoreError):
    """The store refused to delete or change a locked object version."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256_b64: str
    version_id: str
    etag: str
    metadata: dict[str, str]
    lock_mode: str
    retain_until: datetime | None


@dataclass(frozen=True)
class PutResult:
    key: str
    version_id: str
    created: bool  # False: an identical object was already there (idempotent no-op)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


class ObjectStore:
    """One bucket of an S3 store, with the calls archiving needs. Thread-safe (boto3 clients are)."""

    def __init__(self, settings: Settings, bucket: str | None = None, *, pool: int = 32, client=None,
                 attempts: int = 3) -> None:
        self.bucket = bucket or settings.archive_bucket
        from kernel.objectstore import s3_client

        # Checksums only where an operation requires them (the store's own client config); we
        # send explicit Content-MD5 and SHA-256 checksums ourselves. Enough pooled connections
        # for the upload threads. ``attempts``: fixity uses 1 — a damaged object makes SeaweedFS
        # spend ~25 s per read attempt, and the next scheduled pass retries anyway.
        self.client = client or s3_client(settings, max_pool_connections=pool,
                                          retries={"max_attempts": attempts, "mode": "standard"})

    def __repr__(self) -> str:  # never show the keys
        return f"ObjectStore(bucket={self.bucket!r})"

    # -- bucket -----------------------------------------------------------------------------
    def ensure_bucket(self, object_lock: bool = True) -> None:
        """Create the bucket (Object Lock implies versioning) if missing; check lock and versioning."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise StoreError(self.bucket, f"cannot reach bucket: {exc}") from exc
            try:
                self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=object_lock)
            except ClientError as exc2:
                if _code(exc2) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise StoreError(self.bucket, f"cannot create bucket: {exc2}") from exc2
        versioning = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if versioning != "Enabled":
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        if object_lock:
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError:
                enabled = False
            if not enabled:
                raise StoreError(self.bucket, "bucket exists without Object Lock; archives need a locked bucket")

    # -- objects ----------------------------------------------------------------------------
    def put(self, key: str, data: bytes | str | os.PathLike, *, retain_until: datetime | None = None,
            metadata: dict[str, str] | None = None, content_type: str = "application/octet-stream",
            verify: bool = True, sha256: str | None = None, md5: str | None = None) -> PutResult:
        """Upload once; an identical object already there is a no-op, a different one is refused.

        The store checks Content-MD5 and SHA-256 on arrival; after the upload a HEAD confirms the
        stored size and SHA-256 before the caller may publish the object anywhere. Callers storing
        many objects pass ``verify=False`` and check them together with :meth:`verify_listed`.
        ``sha256`` / ``md5`` (Base64) may be passed when already computed.
        """
        body = data if isinstance(data, bytes) else Path(data).read_bytes()
        digest = sha256 or sha256_b64(body)
        args: dict = {
            "Bucket": self.bucket, "Key": key, "Body": body, "ContentType": content_type,
            "ContentMD5": md5 or md5_b64(body), "ChecksumSHA256": digest, "IfNoneMatch": "*",
            "Metadata": metadata or {},
        }
        if retain_until is not None:
            args["ObjectLockMode"] = LOCK_MODE
            args["ObjectLockRetainUntilDate"] = retain_until
        try:
            resp = self.client.put_object(**args)
        except ClientError as exc:
            code = _code(exc)
            if code in {"PreconditionFailed", "412"}:
                existing = self.head(key)
                if existing.sha256_b64 == digest and existing.size == len(body):
                    return PutResult(key, existing.version_id, created=False)
                raise ObjectConflict(key, "a different object is already archived under this key") from exc
            if code == "BadDigest":
                raise StoreError(key, "the store received different bytes than sent (checksum mismatch)") from exc
            raise StoreError(key, f"upload failed: {code or exc}") from exc
        if not verify:
            return PutResult(key, str(resp.get("VersionId", "")), created=True)
        info = self.head(key)
        if info.size != len(body) or (info.sha256_b64 and info.sha256_b64 != digest):
            raise StoreError(key, "stored object does not match what was sent")
        return PutResult(key, resp.get("VersionId", info.version_id), created=True)

    def verify_listed(self, expected: dict[str, tuple[int, str]]) -> dict[str, str]:
        """Check stored objects against ``key → (size, md5 hex)`` by listing; returns key → problem.

        One LIST answers for up to 1,000 objects, instead of one HEAD each: keys are listed from
        just before the smallest expected key to the largest (archive keys of one run are
        contiguous: 件号 are consecutive and zero-padded). Single-part uploads have ETag = MD5.
        Keys not seen in the listing are checked by HEAD.
        """
        problems: dict[str, str] = {}
        seen: set[str] = set()
        if not expected:
            return problems
        keys = sorted(expected)
        first, last = keys[0], keys[-1]
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, StartAfter=first[:-1],
                                   Prefix=os.path.commonprefix([first, last]))  # noqa: RUF071 - string prefix wanted
        for page in pages:
            contents = page.get("Contents", [])
            for obj in contents:
                key = obj["Key"]
                if key in expected:
                    seen.add(key)
                    size, md5 = expected[key]
                    if int(obj["Size"]) != size or str(obj.get("ETag", "")).strip('"') != md5:
                        problems[key] = "stored object differs from what was sent"
            if contents and contents[-1]["Key"] >= last:
                break
        for key in keys:
            if key in seen:
                continue
            try:
                info = self.head(key)
            except ObjectMissing:
                problems[key] = "object missing after upload"
                continue
            if info.size != expected[key][0] or info.etag != expected[key][1]:
                problems[key] = "stored object differs from what was sent"
        return problems

    def restore_copy(self, key: str, data: bytes, *, retain_until: datetime | None, metadata: dict[str, str],
                     content_type: str = "application/octet-stream") -> str:
        """Put ``data`` as a new current version over a missing or damaged one (fixity's repair: the bad
        version, locked, stays where it is; it is only no longer the current one). Checked on arrival
        (Content-MD5, SHA-256) and by a HEAD after; returns the new version id."""
        args: dict = {"Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type,
                      "ContentMD5": md5_b64(data), "ChecksumSHA256": sha256_b64(data), "Metadata": metadata}
        if retain_until is not None:
            args["ObjectLockMode"] = LOCK_MODE
            args["ObjectLockRetainUntilDate"] = retain_until
        try:
            resp = self.client.put_object(**args)
        except ClientError as exc:
            raise StoreError(key, f"repair upload failed: {_code(exc) or exc}") from exc
        info = self.head(key)
        if info.size != len(data) or (info.sha256_b64 and info.sha256_b64 != sha256_b64(data)):
            raise StoreError(key, "repaired object does not match what was sent")
        return str(resp.get("VersionId", info.version_id))

    def put_unlocked(self, key: str, data: bytes, content_type: str = "application/json") -> str:
        """Overwritable objects (reports): no lock, no precondition. Returns the version id."""
        resp = self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                      ContentMD5=md5_b64(data), ChecksumSHA256=sha256_b64(data))
        return str(resp.get("VersionId", ""))

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo:
        args = {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        try:
            h = self.client.head_object(**args)
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectMissing(key, "no such object") from exc
            raise StoreError(key, f"head failed: {_code(exc) or exc}") from exc
        return ObjectInfo(
            key=key, size=int(h.get("ContentLength", 0)), sha256_b64=str(h.get("ChecksumSHA256", "")),
            version_id=str(h.get("VersionId", "")), etag=str(h.get("ETag", "")).strip('"'),
            metadata=dict(h.get("Metadata", {})), lock_mode=str(h.get("ObjectLockMode", "")),
            retain_until=h.get("ObjectLockRetainUntilDate"),
        )

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
        except ObjectMissing:
            return False
        return True

    def get(self, key: str, version_id: str | None = None) -> bytes:
        args = {"Bucket": self.bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        try:
            return self.client.get_object(**args)["Body"].read()
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise ObjectMissing(key, "no such object") from exc
            raise StoreError(key, f"download failed: {_code(exc) or exc}") from exc

    def presign(self, key: str, expires: int = 3600, version_id: str | None = None) -> str:
        """A presigned GET URL valid for ``expires`` seconds (S3 allows at most 7 days); with
        ``version_id`` it serves exactly that version, whatever is written over the key later."""
        if not 1 <= expires <= 7 * 24 * 3600:
            raise ValueError("expiry must be between 1 second and 7 days")
        params = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def delete(self, key: str, version_id: str | None = None) -> None:
        """Delete a version (or add a delete marker). A locked version raises :class:`ObjectLocked`."""
        args = {"Bucket": self.bucket, "Key": key}
        if version_id:
            args["VersionId"] = version_id
        try:
            self.client.delete_object(**args)
        except ClientError as exc:
            if _code(exc) in {"AccessDenied", "403"}:
                raise ObjectLocked(key, "the store refused: the object is under retention") from exc
            raise StoreError(key, f"delete failed: {_code(exc) or exc}") from exc

    def versions(self, key: str) -> list[str]:
        resp = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v["VersionId"] for v in resp.get("Versions", []) if v["Key"] == key]

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every current object under ``prefix`` (size and etag only; HEAD for the rest)."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], int(obj["Size"]), "", "", str(obj.get("ETag", "")).strip('"'),
                                 {}, "", None)
