"""An in-memory S3 client with Object Lock, for archive tests that need no embedded stack.

It answers the calls :class:`archive.store.ObjectStore` makes the way SeaweedFS does (see that module's
docstring): versioned keys, ``If-None-Match: *`` refused with ``PreconditionFailed``, Content-MD5 and
SHA-256 checked on arrival, locked versions that cannot be deleted, ETag = MD5 of a single-part upload.
So the real ``ObjectStore`` — not a stand-in for it — runs against it; only the network is missing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


@dataclass
class _Version:
    version_id: str
    body: bytes
    metadata: dict[str, str]
    lock_mode: str
    retain_until: datetime | None
    sha256_b64: str
    marker: bool = False  # a delete marker: hides the versions below it, deletes nothing

    @property
    def etag(self) -> str:
        return hashlib.md5(self.body, usedforsecurity=False).hexdigest()


@dataclass
class _Bucket:
    lock: bool
    versioning: str = ""
    keys: dict[str, list[_Version]] = field(default_factory=dict)  # oldest version first


class MemoryS3:
    """The subset of a boto3 S3 client that the archive uses, with boto3's parameter names (Bucket,
    Key, ...). Thread-safe (the upload threads share it)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- buckets ------------------------------------------------------------------------------
    def head_bucket(self, Bucket: str) -> dict:
        if Bucket not in self._buckets:
            raise _error("404", "HeadBucket")
        return {}

    def create_bucket(self, Bucket: str, ObjectLockEnabledForBucket: bool = False) -> dict:
        self._buckets.setdefault(Bucket, _Bucket(lock=ObjectLockEnabledForBucket,
                                                 versioning="Enabled" if ObjectLockEnabledForBucket else ""))
        return {}

    def get_bucket_versioning(self, Bucket: str) -> dict:
        return {"Status": self._bucket(Bucket).versioning}

    def put_bucket_versioning(self, Bucket: str, VersioningConfiguration: dict) -> dict:
        self._bucket(Bucket).versioning = VersioningConfiguration["Status"]
        return {}

    def get_object_lock_configuration(self, Bucket: str) -> dict:
        if not self._bucket(Bucket).lock:
            raise _error("ObjectLockConfigurationNotFoundError", "GetObjectLockConfiguration")
        return {"ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled"}}

    def _bucket(self, name: str) -> _Bucket:
        if name not in self._buckets:
            raise _error("NoSuchBucket", "Bucket")
        return self._buckets[name]

    # -- objects ------------------------------------------------------------------------------
    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentMD5: str = "",
                   ChecksumSHA256: str = "", IfNoneMatch: str = "", Metadata: dict | None = None,
                   ObjectLockMode: str = "", ObjectLockRetainUntilDate: datetime | None = None,
                   ContentType: str = "") -> dict:
        del ContentType
        body = bytes(Body)
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if (ContentMD5 and ContentMD5 != md5) or (ChecksumSHA256 and ChecksumSHA256 != sha):
            raise _error("BadDigest", "PutObject")
        with self._lock:
            bucket = self._bucket(Bucket)
            versions = bucket.keys.setdefault(Key, [])
            if IfNoneMatch == "*" and versions:
                raise _error("PreconditionFailed", "PutObject")
            version = _Version(f"v{next(self._ids):06d}", body, dict(Metadata or {}), ObjectLockMode,
                               ObjectLockRetainUntilDate, sha)
            versions.append(version)
        return {"VersionId": version.version_id, "ETag": f'"{version.etag}"'}

    def _version(self, bucket: str, key: str, version_id: str | None, operation: str) -> _Version:
        versions = self._bucket(bucket).keys.get(key) or []
        for v in reversed(versions):
            if version_id is None or v.version_id == version_id:
                if not v.marker:
                    return v
                break
        raise _error("404" if operation == "HeadObject" else "NoSuchKey", operation)

    def head_object(self, *, Bucket: str, Key: str, VersionId: str | None = None,
                    ChecksumMode: str = "") -> dict:
        del ChecksumMode
        v = self._version(Bucket, Key, VersionId, "HeadObject")
        head = {"ContentLength": len(v.body), "ChecksumSHA256": v.sha256_b64, "VersionId": v.version_id,
                "ETag": f'"{v.etag}"', "Metadata": dict(v.metadata)}
        if v.lock_mode:
            head |= {"ObjectLockMode": v.lock_mode, "ObjectLockRetainUntilDate": v.retain_until}
        return head

    def get_object(self, *, Bucket: str, Key: str, VersionId: str | None = None) -> dict:
        return {"Body": io.BytesIO(self._version(Bucket, Key, VersionId, "GetObject").body)}

    def delete_object(self, *, Bucket: str, Key: str, VersionId: str | None = None) -> dict:
        with self._lock:
            versions = self._bucket(Bucket).keys.get(Key)
            if not versions:
                return {}
            if not VersionId:  # a versioned bucket adds a delete marker
                versions.append(_Version(f"v{next(self._ids):06d}", b"", {}, "", None, "", marker=True))
                return {"DeleteMarker": True}
            target = next((v for v in versions if v.version_id == VersionId), None)
            if target is None:
                return {}
            if target.lock_mode and target.retain_until and target.retain_until > datetime.now(UTC):
                raise _error("AccessDenied", "DeleteObject")
            versions.remove(target)
            if not versions:
                del self._bucket(Bucket).keys[Key]
        return {}

    def list_object_versions(self, *, Bucket: str, Prefix: str = "") -> dict:
        keys = self._bucket(Bucket).keys
        return {"Versions": [{"Key": k, "VersionId": v.version_id} for k in sorted(keys) if k.startswith(Prefix)
                             for v in reversed(keys[k]) if not v.marker]}

    def get_paginator(self, name: str) -> _ListPaginator:
        assert name == "list_objects_v2", name
        return _ListPaginator(self)

    def generate_presigned_url(self, operation: str, Params: dict, ExpiresIn: int) -> str:
        version = f"&versionId={Params['VersionId']}" if Params.get("VersionId") else ""
        return f"memory://{Params['Bucket']}/{Params['Key']}?op={operation}&expires={ExpiresIn}{version}"

    def current(self, bucket: str) -> dict[str, _Version]:
        return {k: vs[-1] for k, vs in self._bucket(bucket).keys.items() if vs and not vs[-1].marker}


class _ListPaginator:
    def __init__(self, client: MemoryS3) -> None:
        self.client = client

    def paginate(self, *, Bucket: str, Prefix: str = "", StartAfter: str = ""):
        current = self.client.current(Bucket)
        contents = [{"Key": k, "Size": len(v.body), "ETag": f'"{v.etag}"'} for k, v in sorted(current.items())
                    if k.startswith(Prefix) and k > StartAfter]
        yield {"Contents": contents}
