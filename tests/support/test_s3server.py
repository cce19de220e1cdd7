"""Tests for the local S3 test server (tests/support/s3server.py)."""

from __future__ import annotations

import os

import numpy as np
import s3fs
import zarr
import zarr.storage

from support.s3server import LocalS3


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def test_zarr_v3_sharded_roundtrip(s3: LocalS3) -> None:
    url = s3.url("t.zarr")
    data = np.arange(24 * 20, dtype="float32").reshape(24, 20)

    # NB: zarr 3.1.5's open_array(mode="w") rejects ``shards=``; use create_array.
    store = zarr.storage.FsspecStore.from_url(url, storage_options=s3.storage_options)
    arr = zarr.create_array(
        store=store,
        shape=data.shape,
        chunks=(4, 5),
        shards=(8, 10),
        dtype=data.dtype,
        overwrite=True,
    )
    arr[:] = data

    store2 = zarr.storage.FsspecStore.from_url(
        url, storage_options=s3.storage_options, read_only=True
    )
    back = zarr.open_array(store=store2, mode="r")
    assert back.metadata.zarr_format == 3
    assert back.shards == (8, 10)
    assert back.chunks == (4, 5)
    np.testing.assert_array_equal(back[:], data)

    # The objects really are in the bucket (independent client, sync API).
    fs = s3fs.S3FileSystem(**s3.storage_options, skip_instance_cache=True)
    names = {p.rsplit("/", 1)[-1] for p in fs.ls(f"{s3.bucket}/t.zarr")}
    assert "zarr.json" in names
    # 24x20 array / (8,10) shards -> 3x2 shard objects under c/
    assert len(fs.find(f"{s3.bucket}/t.zarr/c")) == 6


def test_zarr_open_array_mode_w_roundtrip(s3: LocalS3) -> None:
    url = s3.url("open.zarr")
    data = np.arange(30, dtype="int16").reshape(5, 6)
    store = zarr.storage.FsspecStore.from_url(url, storage_options=s3.storage_options)
    arr = zarr.open_array(
        store=store, mode="w", shape=data.shape, chunks=(2, 3), dtype=data.dtype
    )
    arr[:] = data
    back = zarr.open_array(
        store=zarr.storage.FsspecStore.from_url(
            url, storage_options=s3.storage_options, read_only=True
        ),
        mode="r",
    )
    np.testing.assert_array_equal(back[:], data)


def test_plain_s3fs_and_env(s3: LocalS3) -> None:
    fs = s3fs.S3FileSystem(**s3.storage_options, skip_instance_cache=True)
    fs.pipe(f"{s3.bucket}/plain/hello.txt", b"hello")
    assert fs.cat(f"{s3.bucket}/plain/hello.txt") == b"hello"
    assert s3.env["AWS_ENDPOINT_URL"] == s3.endpoint_url
    assert s3.env["AWS_ACCESS_KEY_ID"] == s3.key
    assert s3.endpoint_url.startswith("http://127.0.0.1:")


def test_wrong_secret_is_rejected(s3: LocalS3) -> None:
    opts = dict(s3.storage_options, secret="not-the-secret")
    fs = s3fs.S3FileSystem(**opts, skip_instance_cache=True)
    try:
        fs.ls(s3.bucket, refresh=True)
    except (PermissionError, OSError):
        return
    raise AssertionError("server accepted a wrong secret")


def test_stop_kills_process_and_cleans_up() -> None:
    with LocalS3(bucket="lifecycle") as server:
        pid = server.pid
        tmpdir = server.tmpdir
        assert pid is not None and _pid_alive(pid)
        assert tmpdir is not None and tmpdir.is_dir()
        fs = s3fs.S3FileSystem(**server.storage_options, skip_instance_cache=True)
        assert fs.exists("lifecycle")
    assert server.pid == pid
    assert not _pid_alive(pid)
    assert not tmpdir.exists()
    # stop() is idempotent
    server.stop()
