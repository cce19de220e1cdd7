"""The planner's storage layout: shards per task, inner chunks that read well."""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec, make_plan
from crlgen.pipeline._plan import INNER_CHUNK_BYTES, _samples_per_chunk


@pytest.mark.parametrize("shard, sample_bytes, want", [
    (16, 49_152, 16),     # 16 four-view 64 px images fit in 1 MiB: one chunk per shard
    (40, 49_152, 20),     # at most 21 fit: the largest divisor of 40 that does
    (12, 49_152, 12),
    (7, 400_000, 1),      # two would fit, but 7 is prime: one per chunk
    (5, 4 * 1024 * 1024, 1),  # a sample bigger than the target: one per chunk
])
def test_inner_chunks_hold_whole_samples_dividing_the_shard(shard, sample_bytes, want):
    k = _samples_per_chunk(shard, sample_bytes)
    assert k == want and shard % k == 0 and (k == 1 or k * sample_bytes <= INNER_CHUNK_BYTES)


def test_still_images_are_chunked_by_several_samples_and_videos_by_frame():
    spring = make_plan(load_spec("static/spring").replace(samples=64, shard_size=16))
    images = spring.array("images")
    assert images.shards == (16, 4, 64, 64, 3) and images.chunks == (16, 4, 64, 64, 3)
    falling = make_plan(load_spec("physics/falling_simple").replace(samples=8, shard_size=4))
    frames = falling.array("frames")
    assert frames.chunks[:2] == (1, 1) and frames.shards[0] == 4  # one frame of one sample per chunk


def test_a_span_of_neighbouring_samples_reads_as_the_rows_asked_for(tmp_path):
    """read_rows returns exactly array[rows] in the order asked, whether rows are scattered or dense."""
    import zarr

    from crlgen.pipeline._reading import read_rows

    data = np.arange(40 * 6, dtype=np.uint8).reshape(40, 6)
    for chunks in ((1, 6), (8, 6)):
        a = zarr.create_array(str(tmp_path / f"a{chunks[0]}.zarr"), shape=data.shape, dtype=data.dtype, chunks=chunks,
                              shards=(8, 6))
        a[:] = data
        shards = [(k, k + 8) for k in range(0, 40, 8)]
        rows = np.array([33, 2, 7, 8, 15, 0, 39, 17])
        assert np.array_equal(read_rows(a, rows, shards), data[rows])
        assert read_rows(a, np.array([], dtype=np.int64), shards).shape == (0, 6)
