"""The world contract's memory test (scenes/testing.py) fails a steady leak and passes a one-off allocation.

A real world (physics/falling_simple at 16 px, 24 frames) is wrapped so that each render keeps extra
memory: a leak per sample, or one block on one call. The blocks are fresh anonymous memory maps touched
page by page, so each is resident memory the process did not hold before: a numpy array of the same size
came from free heap space in an xdist worker that earlier tests had left with a large heap, and did not
raise the resident size at all.
"""

from __future__ import annotations

import mmap

import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.testing import WorldContract

SPEC = load_spec("physics/falling_simple").replace(samples=6, video={"fps": 20, "frames": 24},
                                                   render={"size": 16, "views": 1, "engine": "tiny"})


class _Contract(WorldContract):  # not collected: only its memory test is called, on the wrapped worlds below
    spec = SPEC
    memory_samples = 24  # the allowance per half: 30 MB per 1000 samples * 12 + 1 MB = 1.36 MB


class _Keeping:
    """``world`` whose ``render`` also keeps ``per_sample_mb`` per sample rendered, and ``once_mb`` on call ``at_call``."""

    def __init__(self, world, per_sample_mb: float = 0.0, once_mb: float = 0.0, at_call: int = 4) -> None:
        self._world, self._per, self._once, self._at = world, per_sample_mb, once_mb, at_call
        self.kept: list[mmap.mmap] = []
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._world, name)

    def render(self, batch):
        self.calls += 1
        mb = self._per * len(batch) + (self._once if self.calls == self._at else 0.0)
        if mb:
            block = mmap.mmap(-1, int(mb * 1e6))
            for at in range(0, len(block), mmap.PAGESIZE):  # touch every page: resident now
                block[at] = 1
            self.kept.append(block)
        return self._world.render(batch)


@pytest.fixture(scope="module")
def world():
    w = build_world(SPEC, threads=1)
    yield w
    w.close()


def test_a_steady_leak_fails(world):
    leaky = _Keeping(world, per_sample_mb=0.25)  # 3 MB in each half of 24 samples
    with pytest.raises(AssertionError, match=r"resident memory grew in both halves: [0-9.]+ MB over samples 0-12"):
        _Contract().test_memory_stays_flat(leaky)


def test_a_one_off_allocation_passes(world):
    once = _Keeping(world, once_mb=4.0, at_call=4)  # the 2nd measured render (2 warm-up calls come first)
    _Contract().test_memory_stays_flat(once)
    assert once.calls == 2 + 6 and sum(len(k) for k in once.kept) == 4_000_000


def test_no_leak_passes(world):
    _Contract().test_memory_stays_flat(_Keeping(world))
