"""The work store's contract (kernel.workstore), held by both implementations: the S3 one (over the
in-memory S3 of tests/archive/memory_s3.py, which answers as SeaweedFS does) and the folder one."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.workstore import (
    FolderWorkStore,
    ObjectMissing,
    S3WorkStore,
    WorkStore,
    prefetch,
    safe_relative,
    split_s3,
)
from tests.archive.memory_s3 import MemoryS3


@pytest.fixture(params=["s3", "folder"])
def store(request, tmp_path: Path) -> WorkStore:
    if request.param == "folder":
        return FolderWorkStore(tmp_path / "work")
    client = MemoryS3()
    client.create_bucket(Bucket="work")
    return S3WorkStore(client, "work")


def test_bytes_written_under_a_key_are_read_back_listed_named_and_deleted(store: WorkStore) -> None:
    assert isinstance(store, WorkStore)
    store.put_many([("batches/b/in/aa", b"one"), ("batches/b/in/bb", b"two"), ("batches/c/x", b"other")])
    store.put("batches/b/in/aa", b"one again")  # a rerun overwrites: the same key, the newest bytes
    assert store.get("batches/b/in/aa") == b"one again"
    assert list(store.keys("batches/b/")) == ["batches/b/in/aa", "batches/b/in/bb"]
    name = store.name("batches/b/in/bb")
    assert store.key_of(name) == "batches/b/in/bb"
    assert store.key_of(store.name("batches/b/")) == "batches/b/"
    store.delete("batches/b/in/bb")
    assert not store.exists("batches/b/in/bb") and store.exists("batches/b/in/aa")
    assert store.get_or_none("batches/b/in/bb") is None


def test_a_missing_object_is_a_storage_fault_not_a_bad_document(store: WorkStore) -> None:
    with pytest.raises(ObjectMissing) as caught:
        store.get("batches/b/sealed/none.pdf")
    assert caught.value.errno is not None  # an OSError with an errno: the batch steps retry, never fail a document
    store.delete("batches/b/sealed/none.pdf")  # deleting nothing is not an error


def test_a_name_of_another_store_is_refused() -> None:
    with pytest.raises(ValueError, match="not an object of the work bucket"):
        S3WorkStore(MemoryS3(), "work").key_of("s3://elsewhere/batches/b/x")
    with pytest.raises(ValueError, match="not an object of the work folder"):
        FolderWorkStore(Path("/srv/work")).key_of("file:///etc/passwd")


def test_only_keys_that_stay_inside_a_folder_are_written_locally() -> None:
    assert split_s3("s3://office/2026/b7") == ("office", "2026/b7/")
    assert split_s3("s3://office") == ("office", "")
    assert safe_relative("p/sub/a.pdf", "p/") is not None
    for key in ("p/../a.pdf", "p/./a.pdf", "p//a.pdf", "p/", "p/a\x00.pdf"):
        assert safe_relative(key, "p/") is None, key
    with pytest.raises(ValueError):
        split_s3("/local/folder")


def test_objects_read_ahead_come_back_in_order_and_a_missing_one_fails_only_where_it_is_used(
        store: WorkStore) -> None:
    keys: list[str | None] = [f"batches/b/in/{n:03d}" for n in range(20)]
    store.put_many([(k, k.encode()) for k in keys if k is not None])
    keys[3] = None
    keys[7] = "batches/b/in/lost"
    with prefetch(store, keys, window=4) as get:
        assert [get(n) for n in range(7)] == [k.encode() if k else None for k in keys[:7]]
        with pytest.raises(ObjectMissing):
            get(7)
        assert [get(n) for n in range(8, 20)] == [k.encode() for k in keys[8:] if k]
