"""The contract every world must pass (subclass ``WorldContract`` and set ``spec``).

In the style of zarr-python's StoreTests: one reusable suite; each world's test file
subclasses it with a small spec. Checks: registry and info, lazy engine import, shapes
and dtypes, determinism (across calls and batch composition), every latent the world
reads is visible in its output, and temporal edits take effect at their frame.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from crlgen.pipeline._scm import CompiledSCM
from crlgen.pipeline._tasks import world_batch
from crlgen.scenes.base import RenderOutput, WorldBatch
from crlgen.pipeline import check_spec
from crlgen.scenes.registry import WORLDS, build_world


class WorldContract:
    spec = None  # a small DatasetSpec (class attribute set by subclasses)
    engine_modules: tuple[str, ...] = ("bpy", "pybullet")
    n = 3

    # ----- helpers -------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def world(cls):
        w = build_world(cls.spec, threads=1)
        yield w
        w.close()

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls):
        return CompiledSCM(cls.spec)

    @pytest.fixture(scope="class")
    @classmethod
    def batch(cls, model) -> WorldBatch:
        return world_batch(model, model.sample(0, cls.n))

    @pytest.fixture(scope="class")
    @classmethod
    def output(cls, world, batch) -> RenderOutput:
        return world.render(batch)

    def _lead(self) -> tuple[int, ...]:
        cams = len(self.spec.render.cameras())
        return (self.spec.video.n_frames, cams) if self.spec.video else (cams,)

    # ----- the contract --------------------------------------------------------------------
    def test_registered_and_described(self, world):
        info = type(world).info
        assert WORLDS[info.name].endswith(type(world).__name__)
        assert info.kind == ("video" if self.spec.video else "image")
        assert info.latents and info.description
        assert check_spec(self.spec) is self.spec

    def test_module_import_does_not_load_engines(self):
        module = WORLDS[self.spec.world].split(":")[0]
        code = f"import sys, {module}; print(','.join(m for m in {self.engine_modules!r} if m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert out == ""

    def test_shapes_and_dtypes(self, output):
        h, w = self.spec.render.height, self.spec.render.width
        lead = (self.n, *self._lead())
        assert output.pixels.shape == (*lead, h, w, 3) and output.pixels.dtype == np.uint8
        if "depth" in self.spec.render.annotations:
            assert output.depth.shape == (*lead, h, w) and output.depth.dtype == np.float32
            assert np.isfinite(output.depth).all() and (output.depth >= 0).all()
        if "segmentation" in self.spec.render.annotations:
            assert output.segmentation.shape == (*lead, h, w) and output.segmentation.dtype == np.uint8
            assert (output.segmentation > 0).any() and np.unique(output.segmentation).size >= 2  # instances told apart
        if self.spec.video:
            assert output.states.shape[:2] == (self.n, self.spec.video.n_frames)
            assert output.states.dtype == np.float64 and np.isfinite(output.states).all()
        assert output.pixels.std() > 1.0  # not a blank image

    def test_deterministic_across_calls_and_batches(self, world, model, output):
        again = world.render(world_batch(model, model.sample(0, self.n)))
        assert np.array_equal(again.pixels, output.pixels)
        alone = world.render(world_batch(model, model.sample(self.n - 1, self.n)))
        assert np.array_equal(alone.pixels[0], output.pixels[-1])
        if self.spec.video:
            assert np.array_equal(alone.states[0], output.states[-1])

    def test_every_latent_the_world_reads_is_visible(self, world, batch):
        info = type(world).info
        base = {k: v[:1].copy() for k, v in batch.latents.items()}
        one = WorldBatch(batch.index[:1], base, batch.seeds[:1], ())
        ref = world.render(one)
        graph = self.spec.graph
        wanted = [n for n in graph.names if any(_matches(n, t) for t in info.latents)]
        assert wanted
        for name in wanted:
            lo, hi = _span(graph.node(name).variable, base[name][0])
            lat = {k: v.copy() for k, v in base.items()}
            lat[name] = np.array([hi if abs(base[name][0] - lo) < abs(base[name][0] - hi) else lo])
            out = world.render(WorldBatch(one.index, lat, one.seeds, ()))
            changed = not np.array_equal(out.pixels, ref.pixels) or (
                out.states is not None and not np.array_equal(out.states, ref.states))
            assert changed, f"changing {name} from {base[name][0]:g} to {lat[name][0]:g} changed nothing"



class VideoWorldContract(WorldContract):
    """Video worlds also honour temporal edits: frames before the edit are untouched."""

    def test_temporal_edits_take_effect_at_their_frame(self, world, batch):
        from crlgen.scenes.base import BatchEdit

        assert batch.edits, "a video world's contract spec must declare a temporal edit"

        e = batch.edits[0]
        t = max(1, self.spec.video.n_frames // 2)
        one = lambda edits: WorldBatch(batch.index[:1], {k: v[:1] for k, v in batch.latents.items()}, batch.seeds[:1], edits)  # noqa: E731
        edited = world.render(one((BatchEdit(e.target, e.op, np.array([t]), np.array([-1]), np.array([e.value[0] or 1.0])),)))
        plain = world.render(one(()))
        assert np.array_equal(edited.states[0, :t], plain.states[0, :t])
        assert not np.array_equal(edited.states[0, t:], plain.states[0, t:])


def _matches(name: str, template: str) -> bool:
    import re

    return re.fullmatch(re.escape(template).replace(r"\[i\]", r"\[\d+\]"), name) is not None


def _span(var, value: float) -> tuple[float, float]:
    lo, hi = var.bounds()
    if var.type in ("integer", "categorical", "boolean") and np.isfinite(lo) and np.isfinite(hi):
        return float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi):
        if var.noise is not None and all(np.isfinite(var.noise.support())):
            lo, hi = var.noise.support()
        else:
            lo, hi = value * 0.5, value * 1.5 + 1e-3
    return lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo)
