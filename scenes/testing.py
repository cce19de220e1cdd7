"""The world contract: one reusable pytest suite every world passes (like ``zarr.testing.StoreTests``).

Subclass :class:`WorldContract` in a test module and set ``spec`` to a small
:class:`~crlgen.schemas.DatasetSpec` of your world; pytest collects the inherited tests::

    from crlgen.pipeline import load_spec
    from crlgen.scenes.testing import WorldContract

    class TestMyWorld(WorldContract):
        spec = load_spec("my_domain/my_scene").replace(samples=6, render={"size": 16, "views": 2})

Capability flags (class attributes) say what to expect: ``exact`` (re-renders are bit for
bit; else each output's declared tolerance applies), ``memory_samples`` and
``memory_mb_per_1000`` (how many samples the memory test renders and the growth it
allows), ``topdown_extent`` (metres a top-down test camera spans), ``fixed_view`` (``position``
and ``look_at`` of the fixed test camera, m; default: where the spec's first static perspective
camera stands, looking the same way), ``geometry_size`` (pixels
of the renders whose camera geometry is checked), ``invisible`` (latent -> why the world cannot
show it in the contract spec's scene; the suite checks these stay invisible, so the list stays true). What a world supports
(edits, camera kinds and mounts, simulation) is read from the world itself.

The suite checks: registration and info (entry point, valid ranges for every latent read,
engines imported lazily), outputs exactly as declared, determinism of every output (across
calls, batch compositions and processes), no mutation of inputs and no use of global random
state, every latent read (optional ones too) changes the pixels, out-of-range latents are
refused (never clamped), temporal edits act at their frame, simulation equals what render
films, world checks run, ``feasible`` answers one bool per sample and accepts the samples a run
would hand over (drawn, like every batch the suite renders, with the run's feasibility redraws),
every declared camera kind renders with geometry that agrees with
the pixels (known points project into their object's mask, depth consistent), ``close`` is
idempotent, and memory stays flat over many samples.

Requires pytest (imported here, not by crlgen itself). Test support sits on top of the whole
package: this is the one module of ``crlgen.scenes`` that uses ``crlgen.pipeline`` (its sampler
makes the batches a world receives in a real run).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from typing import ClassVar

import numpy as np
import pytest

from .base import Rendered, World, WorldBatch
from .cameras import project
from .engines.blender import PREVIEW_ENGINES  # plain data: importing it loads no engine
from .registry import build_world, check_world, world_class, worlds

#: Engines no world module may import when it is imported.
ENGINE_MODULES = ("bpy", "pybullet", "carla", "OpenEXR")


def _batch(spec, start: int, stop: int, world: World | None = None) -> WorldBatch:
    """Samples ``start..stop-1`` as a run hands them to the world; with ``world`` (one that checks
    feasibility), infeasible samples redrawn as a run redraws them."""
    from ..pipeline._feasible import sample_feasible, world_batch  # the sampler is the pipeline's; the contract only reads it
    from ..pipeline._scm import CompiledSCM

    model = CompiledSCM(spec)
    return world_batch(model, sample_feasible(model, world, start, stop))


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _digest(outputs: dict[str, np.ndarray]) -> dict[str, str]:
    return {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in sorted(outputs.items())}


def _other_value(var, value: float, lo: float, hi: float) -> float:
    """A value inside [lo, hi] (both the spec's and the world's range) far from ``value``."""
    if var is not None and var.type in ("integer", "categorical", "boolean"):
        cands = [x for x in range(int(np.ceil(lo)), int(np.floor(hi)) + 1) if x != round(value)]
        return float(max(cands, key=lambda x: abs(x - value)))
    a, b = lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo)
    return b if abs(value - a) < abs(value - b) else a


class WorldContract:
    """The contract suite; subclasses set ``spec`` (a small spec of the world under test)."""

    spec: ClassVar = None
    n: ClassVar[int] = 3
    exact: ClassVar[bool] = True
    memory_samples: ClassVar[int] = 60
    memory_mb_per_1000: ClassVar[float] = 30.0
    topdown_extent: ClassVar[float] = 2.0
    fixed_view: ClassVar[dict | None] = None
    geometry_size: ClassVar[int] = 96
    invisible: ClassVar[dict[str, str]] = {}

    # ----- fixtures ------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def world(cls):
        w = build_world(cls.spec, threads=1)
        yield w
        w.close()

    @pytest.fixture(scope="class")
    @classmethod
    def batch(cls, world) -> WorldBatch:
        return _batch(cls.spec, 0, cls.n, world)

    @pytest.fixture(scope="class")
    @classmethod
    def rendered(cls, world, batch) -> Rendered:
        return world.render(batch)

    def _one(self, batch: WorldBatch, edits: bool = False) -> WorldBatch:
        one = batch.take(slice(0, 1))
        return one if edits else WorldBatch(one.index, one.latents, one.seeds, ())

    def _rgb(self, world: World) -> list[str]:
        return [o.name for o in world.outputs(self.spec) if o.per_sample and o.kind == "rgb"]

    def _same(self, world: World, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
        out = []
        for o in world.outputs(self.spec):
            if o.per_sample:
                cmp = o.compare if not self.exact else type(o.compare)()
                out += cmp.problems(o.name, a[o.name], b[o.name])
        return out

    # ----- registration and info -------------------------------------------------------------
    def test_registered_and_described(self, world):
        cls, info = type(world), type(world).info
        assert world_class(info.name) is cls and info.name in worlds()
        assert info.kind in ("image", "video") and info.latents and info.description
        assert check_world(self.spec) == []
        assert cls.resources(self.spec).ray_options()["num_cpus"] > 0
        assert set(info.preview_engines) <= set(info.engines)
        assert set(info.engines) & set(PREVIEW_ENGINES) <= set(info.preview_engines), \
            "a Blender preview engine is offered but not declared in preview_engines (datasets would not say so)"

    def test_every_latent_read_declares_a_valid_range(self, world):
        info = type(world).info
        missing = [t for t in info.latents + info.optional_latents if t not in info.ranges]
        assert missing == [], f"{info.name} reads {missing} without declaring their valid ranges"

    def test_module_import_does_not_load_engines(self, world):
        module = type(world).__module__
        code = f"import sys, {module}; print(','.join(m for m in {ENGINE_MODULES!r} if m in sys.modules))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        assert out == ""

    # ----- outputs -------------------------------------------------------------------------------
    def test_outputs_are_exactly_the_declared_ones(self, world, rendered):
        declared = {o.name: o for o in world.outputs(self.spec) if o.per_sample}
        assert set(rendered.outputs) == set(declared)
        for name, o in declared.items():
            arr = rendered.outputs[name]
            assert arr.shape == (self.n, *o.shape) and arr.dtype == np.dtype(o.dtype), name
            if arr.dtype.kind == "f":  # states may be NaN (an absent agent has no position), never inf
                ok = ~np.isinf(arr) if o.kind == "states" else np.isfinite(arr)
                assert ok.all(), f"{name} holds NaN/inf"
            if o.kind == "depth":
                assert (arr >= 0).all()
            if o.kind == "segmentation":
                ids = {int(k) for k in o.attrs["ids"]}
                assert set(np.unique(arr).tolist()) <= ids and np.unique(arr).size >= 2, name
            if o.kind == "rgb":
                assert arr.std() > 1.0, f"{name} is blank"
        for o in world.outputs(self.spec):
            if not o.per_sample:
                assert np.asarray(o.value).shape == o.shape

    def test_deterministic_across_calls_and_batches(self, world, batch, rendered):
        again = world.render(batch)
        assert self._same(world, rendered.outputs, again.outputs) == []
        alone = world.render(batch.take(slice(self.n - 1, self.n)))
        assert self._same(world, {k: v[-1:] for k, v in rendered.outputs.items()}, alone.outputs) == []

    def test_deterministic_across_processes(self, world, rendered):
        code = textwrap.dedent(f"""
            import hashlib, json, sys
            import numpy as np
            from crlgen.schemas import DatasetSpec
            from crlgen.scenes import build_world
            from crlgen.scenes.testing import _batch, _digest
            spec = DatasetSpec.from_dict(json.loads(sys.stdin.read()))
            with build_world(spec, threads=1) as w:
                print(json.dumps(_digest(w.render(_batch(spec, 0, {self.n}, w)).outputs)))
        """)
        r = subprocess.run([sys.executable, "-c", code], input=json.dumps(self.spec.to_dict()), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        theirs = json.loads(r.stdout.strip().splitlines()[-1])
        if self.exact:
            assert theirs == _digest(rendered.outputs)
        else:
            assert set(theirs) == set(rendered.outputs)

    def test_render_does_not_mutate_inputs(self, world, batch):
        before = ({k: v.copy() for k, v in batch.latents.items()}, batch.seeds.copy(), batch.index.copy(),
                  [(e.frame.copy(), e.end_frame.copy(), e.value.copy()) for e in batch.edits])
        world.render(batch)
        assert all(np.array_equal(before[0][k], batch.latents[k]) for k in batch.latents)
        assert np.array_equal(before[1], batch.seeds) and np.array_equal(before[2], batch.index)
        assert all(np.array_equal(a, e.frame) and np.array_equal(b, e.end_frame) and np.array_equal(c, e.value, equal_nan=True)
                   for (a, b, c), e in zip(before[3], batch.edits))  # (a value is NaN where its edit is not applied)

    def test_render_ignores_global_random_state(self, world, batch, rendered):
        one = batch.take(slice(0, 1))
        np.random.seed(12345)
        random.seed(12345)
        a = world.render(one).outputs
        np.random.seed(999)
        random.seed(999)
        state = np.random.get_state()[1].copy()
        b = world.render(one).outputs
        assert np.array_equal(state, np.random.get_state()[1]), "render drew from numpy's global generator"
        assert self._same(world, a, b) == []
        assert self._same(world, {k: v[:1] for k, v in rendered.outputs.items()}, a) == []

    def test_feasible_answers_one_bool_per_sample(self, world, batch):
        """``feasible`` gives (n,) bool, the same for a sample alone as within its batch, without mutating
        the batch; a world that does not override it accepts everything; the contract's samples (drawn
        as a run draws them) are all feasible."""
        before = {k: v.copy() for k, v in batch.latents.items()}
        ok = np.asarray(world.feasible(batch))
        assert ok.shape == (len(batch),) and ok.dtype == np.bool_
        assert all(np.array_equal(before[k], batch.latents[k]) for k in before)
        assert ok.all(), "the contract's batch went through the run's redraws, yet the world refuses some of it"
        alone = np.asarray(world.feasible(batch.take(slice(len(batch) - 1, len(batch)))))
        assert alone.tolist() == ok[-1:].tolist()
        if not type(world).checks_feasibility():
            assert type(world).explain_infeasible is World.explain_infeasible
        else:
            assert len(world.explain_infeasible(batch)) in (0, len(batch))

    # ----- latents -------------------------------------------------------------------------------
    def test_every_latent_the_world_reads_changes_the_pixels(self, world, batch):
        """Each latent the spec gives the world, and each optional one it does not (added at 70 % of the
        world's range), moved towards the other end of its range, changes some pixel."""
        info = type(world).info
        graph = self.spec.graph
        one = self._one(batch)
        base = {k: v.copy() for k, v in one.latents.items()}
        added = [n for n in self.spec.expand_all(type(world).optional_latents_for(self.spec)) if n not in base]
        for name in added:
            lo, hi = info.ranges[_template(name, info)]
            base[name] = np.array([lo + 0.7 * (hi - lo)])
        ref = world.render(WorldBatch(one.index, base, one.seeds, ())).outputs
        rgb = self._rgb(world)
        read = [n for n in graph.names if any(_matches(n, t) for t in info.latents + info.optional_latents)] + added
        assert read
        unchanged, seen = [], []
        for name in read:
            wlo, whi = info.ranges[_template(name, info)]
            if name in added:
                var, (lo, hi) = None, (wlo, whi)
            else:
                var = graph.node(name).variable
                vlo, vhi = var.bounds()
                lo, hi = max(vlo, wlo), min(vhi, whi)
            value = float(base[name][0])
            lat = {k: v.copy() for k, v in base.items()}
            lat[name] = np.array([_other_value(var, value, lo, hi)])
            out = world.render(WorldBatch(one.index, lat, one.seeds, ())).outputs
            same = all(np.array_equal(out[k], ref[k]) for k in rgb)
            if same and name not in self.invisible:
                unchanged.append(f"{name} {value:g} -> {lat[name][0]:g}")
            if not same and name in self.invisible:
                seen.append(name)
        assert unchanged == [], f"these latents left every pixel unchanged: {unchanged}"
        assert seen == [], f"declared invisible, but they change the pixels: {seen}"

    def test_out_of_range_latents_are_refused_not_clamped(self, world, batch):
        info = type(world).info
        one = self._one(batch)
        name = next(n for n in one.latents if _template(n, info) in info.ranges and info.ranges[_template(n, info)][1] < 1e6)
        lat = {k: v.copy() for k, v in one.latents.items()}
        lat[name] = np.array([info.ranges[_template(name, info)][1] + 1.0])
        with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
            world.render(WorldBatch(one.index, lat, one.seeds, ()))

    # ----- dynamics --------------------------------------------------------------------------------
    def test_temporal_edits_take_effect_at_their_frame(self, world, batch):
        info = type(world).info
        if not info.edit_targets:
            assert not self.spec.temporal_edits
            return
        assert batch.edits, "a world with edit targets needs a contract spec with a temporal edit"
        from .base import BatchEdit

        e = batch.edits[0]
        t = max(1, self.spec.video.n_frames // 2)
        one = self._one(batch)
        edited = world.render(WorldBatch(one.index, one.latents, one.seeds, (
            BatchEdit(e.target, e.op, np.array([t]), np.array([-1]), np.array([float(e.value[0]) if np.isfinite(e.value[0]) and e.value[0] != 0 else 1.0])),))).outputs
        plain = world.render(one).outputs
        timed = [o.name for o in world.outputs(self.spec) if o.per_sample and o.dims[:1] == ("time",)]
        assert timed
        for name in timed:
            assert np.array_equal(edited[name][0, :t], plain[name][0, :t], equal_nan=_floats(plain[name])), \
                f"{name} changed before the edit's frame"
        assert any(not np.array_equal(edited[k][0, t:], plain[k][0, t:]) for k in self._rgb(world))

    def test_simulation_equals_what_render_films(self, world, batch, rendered):
        if not world.can_simulate():
            assert type(world).info.kind == "image"
            return
        sim = world.simulate(batch)
        assert np.array_equal(sim.states, rendered.simulation.states, equal_nan=True)
        if "states" in rendered.outputs:
            names = next(o for o in world.outputs(self.spec) if o.name == "states").coords["state"][1]
            cols = [sim.state_names.index(s) for s in names]
            assert np.array_equal(sim.states[:, :, cols], rendered.outputs["states"], equal_nan=True)
        for check in type(world).checks:
            assert check.run(world, batch, sim) == [], check.name

    # ----- cameras ---------------------------------------------------------------------------------
    def test_camera_geometry_agrees_with_the_pixels(self):
        """At ``geometry_size`` pixels, so that objects span pixels around their centres."""
        spec = self.spec.replace(samples=2, render={**self.spec.render.model_dump(mode="json"), "size": self.geometry_size})
        with build_world(spec, threads=1) as w:
            problems = _geometry_problems(w, spec, w.render(_batch(spec, 0, 2, w)))
        assert problems == [], "\n".join(problems[:10])

    def test_every_camera_kind_renders(self, world):
        info = type(world).info
        size = self.geometry_size
        views = []
        for kind in info.camera_kinds:
            if kind == "orbit":
                views.append({"kind": "orbit", "name": "orbit", "azimuth": 30, "elevation": 25})
            elif kind == "fixed" and self.fixed_view is not None:
                views.append({"kind": "fixed", "name": "fixed", **self.fixed_view})
            elif kind == "fixed":  # where the first static perspective camera stands, looking the same way
                pose = next(c.pose for c in world.rig.cameras if c.pose is not None and not c.orthographic)
                eye, ahead = pose[:3, 3], pose[:3, 3] + pose[:3, 2]
                views.append({"kind": "fixed", "name": "fixed", "position": [float(x) for x in eye],
                              "look_at": [float(x) for x in ahead]})
            elif kind == "topdown":
                views.append({"kind": "topdown", "name": "top", "extent": self.topdown_extent, "size": [size + 8, size]})
            elif kind == "mounted":
                mount = self.spec.expand_all(info.mounts)[0]
                views.append({"kind": "mounted", "name": "ride", "mount": mount, "position": [0.0, -1.0, 0.5],
                              "look_at": [0.0, 0.0, 0.0], "follow": "position"})
        spec = self.spec.replace(samples=2, render={**self.spec.render.model_dump(mode="json"), "size": size, "views": views})
        assert check_world(spec) == []
        with build_world(spec, threads=1) as w:
            r = w.render(_batch(spec, 0, 2, w))
        assert {o.name for o in w.outputs(spec) if o.per_sample} == set(r.outputs)
        problems = _geometry_problems(w, spec, r)
        assert problems == [], "\n".join(problems[:10])

    # ----- lifetime ---------------------------------------------------------------------------------
    def test_close_is_idempotent(self):
        w = build_world(self.spec, threads=1)
        w.close()
        w.close()

    def test_memory_stays_flat(self, world):
        """Resident memory over ``memory_samples`` samples, measured in two halves: a leak grows in both, a
        one-off allocation (an allocator arena, an engine's lazily sized buffer) in one only. The smaller
        half's growth is held to ``memory_mb_per_1000`` per sample plus 1 MB: a steady leak fails that exactly
        when it fails the whole run's bound (``memory_mb_per_1000`` per sample plus 2 MB), and a one-off jump
        (3.7 MB once in the buttons world's 24 samples, passing in every other run) does not."""
        total = self.memory_samples
        step = max(1, total // 6)
        warm = _batch(self.spec, 0, min(step, self.spec.samples), world)
        for _ in range(2):  # engines allocate some buffers on first use (TinyRenderer's shadow maps, caches)
            world.render(warm)
        marks, done = [], 0
        for half in (total // 2, total - total // 2):
            gc.collect()
            marks.append((_rss_mb(), done))
            goal = done + half
            while done < goal:
                b = _batch(self.spec, 0, min(step, self.spec.samples, goal - done), world)
                world.render(b)
                done += len(b)
        gc.collect()
        marks.append((_rss_mb(), done))
        halves = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
        growth, n = min(halves)
        assert growth <= self.memory_mb_per_1000 * n / 1000 + 1.0, (
            f"resident memory grew in both halves: {halves[0][0]:.1f} MB over samples 0-{halves[0][1]}, "
            f"{halves[1][0]:.1f} MB over the next {halves[1][1]}")


def _template(name: str, info) -> str:
    for t in info.latents + info.optional_latents:
        if _matches(name, t):
            return t
    raise KeyError(name)


def _matches(name: str, template: str) -> bool:
    import re

    return re.fullmatch(re.escape(template).replace(r"\[i\]", r"\[\d+\]"), name) is not None


def _geometry_problems(world: World, spec, r: Rendered) -> list[str]:
    """Every landmark (a known object centre) whose object spans at least a pixel around it projects,
    with the stored K and camera_to_world, into its object's mask, or behind something nearer; where it
    is visible, the depth there is within the object's bounding radius of the centre's depth."""
    if r.landmarks is None or r.landmark_radius is None:
        return ["render returned no landmarks to check the camera geometry with"]
    out = []
    outputs = {o.name: o for o in world.outputs(spec)}
    by_name = {c.name: c for c in world.rig.cameras}
    n, T = r.landmarks.shape[:2]
    for g in world.rig.groups:
        seg_name, depth_name = f"segmentation{g.suffix}", f"depth{g.suffix}"
        if seg_name not in r.outputs or depth_name not in r.outputs:
            continue
        K = outputs[f"intrinsics{g.suffix}"].value
        names = outputs[f"intrinsics{g.suffix}"].coords[f"view{g.suffix}"][1]
        poses, seg, depth = r.outputs[f"camera_to_world{g.suffix}"], r.outputs[seg_name], r.outputs[depth_name]
        if spec.video is None:  # no time axis: add one
            poses, seg, depth = poses[:, None], seg[:, None], depth[:, None]
        checked = 0
        for i in range(n):
            for t in range(T):
                for j, view in enumerate(names):
                    s, d = seg[i, t, j], depth[i, t, j]
                    ortho = by_name[view].orthographic
                    uv, z = project(r.landmarks[i, t], K[j], poses[i, t, j], ortho)
                    for k, oid in enumerate(r.landmark_ids):
                        u, v = (int(x) for x in np.rint(uv[k]))
                        if z[k] <= 0 or not (0 <= u < s.shape[1] and 0 <= v < s.shape[0]):
                            continue  # out of view
                        inner, outer = (float(x) for x in r.landmark_radius[i, k])
                        if K[j][1, 1] * inner / (1.0 if ortho else z[k]) < 1.0:
                            continue  # smaller than a pixel around its centre: the nearest pixel centre may miss it
                        checked += 1
                        where = f"{seg_name}: sample {i} frame {t} view {view}"
                        if s[v, u] == oid:
                            if not abs(d[v, u] - z[k]) <= outer + 1e-3 * z[k]:
                                out.append(f"{where}: depth {d[v, u]:.4f} m at the centre of id {oid} is not within "
                                           f"{outer:.3f} m of its centre's depth {z[k]:.4f} m")
                        elif not (0 < d[v, u] < z[k]):
                            out.append(f"{where}: id {oid}'s centre projects to ({u}, {v}), where id {s[v, u]} "
                                       f"lies behind it (depth {d[v, u]:.3f} m vs {z[k]:.3f} m)")
        if checked == 0:
            out.append(f"{seg_name}: no landmark was in view; the geometry was not checked")
    return out


__all__ = ["WorldContract", "ENGINE_MODULES"]


def _floats(a: np.ndarray) -> bool:
    """Whether ``a`` may hold NaN (``np.array_equal``'s ``equal_nan`` only accepts float arrays)."""
    return np.asarray(a).dtype.kind in "fc"
