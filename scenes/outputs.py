"""Building blocks for the outputs worlds declare: camera images and geometry, states, inputs.

A world composes its :meth:`~crlgen.scenes.base.World.outputs` from these, so every world
names, chunks and describes the same things the same way:

- per camera group (cameras of one size, see :class:`~crlgen.scenes.cameras.CameraRig`):
  ``images``/``frames`` (uint8 RGB), ``depth`` (float32 metres, 0 = no surface),
  ``segmentation`` (uint8 ids with their key), ``intrinsics`` (constant, 3x3) and
  ``camera_to_world`` (per sample and frame, 4x4), names suffixed for every group but the first;
- ``states``: the per-frame states a spec declares ``time_varying`` (in the world's order);
- ``inputs``: per-frame inputs the world decides inside its simulation.

Video outputs carry a ``time`` coordinate in seconds and ``fps`` in their attributes.
"""

from __future__ import annotations

import re

from typing import Mapping, Sequence

import numpy as np

from .base import EXACT, Compare, Output
from .cameras import CONVENTION, CameraRig

#: A missing segmentation chunk reads as this id, which no world assigns (ids are 0..254).
SEGMENTATION_FILL = 255


def time_coords(frames: int, fps: float) -> dict[str, tuple[str, tuple]]:
    """The ``time`` coordinate: frame t at t / fps seconds."""
    return {"time": ("time", tuple(float(t) / float(fps) for t in range(frames)))}


def camera_outputs(spec, rig: CameraRig, *, rgb: str, segmentation_ids: Mapping[int, str],
                   compare: Compare = EXACT, depth_compare: Compare | None = None) -> list[Output]:
    """Images, depth, segmentation and camera geometry of every camera group of ``spec``.

    ``rgb`` is ``"images"`` (still worlds) or ``"frames"`` (video worlds, which get a
    leading ``time`` dim); ``segmentation_ids`` maps each id to what it marks; ``compare``
    is how re-rendered pixels are compared (``depth_compare`` for depth, default the same).
    """
    video = spec.video is not None
    T = spec.video.n_frames if video else 1
    lead, ldims = ((T,), ("time",)) if video else ((), ())
    extra: dict[str, object] = {"fps": spec.video.fps} if video else {}
    tcoords = time_coords(T, spec.video.fps) if video else {}
    ann = set(spec.render.annotations)
    key = {str(k): v for k, v in sorted(segmentation_ids.items())}
    out: list[Output] = []
    for g in rig.groups:
        V, H, W = len(g.indices), g.height, g.width
        view, y, x = g.dims("view", "y", "x")
        names = tuple(rig.cameras[i].name for i in g.indices)
        coords = {view: (view, names), f"projection{g.suffix}": (view, tuple(
            "orthographic" if rig.cameras[i].orthographic else "perspective" for i in g.indices)), **tcoords}
        one = (1,) * len(lead)
        out.append(Output(f"{rgb}{g.suffix}", (*ldims, view, y, x, "channel"), (*lead, V, H, W, 3), "uint8", kind="rgb",
                          description="colour, sRGB-encoded, top row first", compare=compare, chunk=(*one, V, H, W, 3),
                          attrs={**extra}, coords=coords))
        if "depth" in ann:
            out.append(Output(f"depth{g.suffix}", (*ldims, view, y, x), (*lead, V, H, W), "float32", kind="depth", units="m",
                              description="z of the visible surface in camera coordinates (m); 0 where no surface",
                              compare=depth_compare or compare, chunk=(*one, V, H, W), fill=float("nan"),
                              attrs={"background": 0.0, **extra}, coords=coords))
        if "segmentation" in ann:
            out.append(Output(f"segmentation{g.suffix}", (*ldims, view, y, x), (*lead, V, H, W), "uint8", kind="segmentation",
                              description="instance id of the visible surface (see ids)", compare=compare,
                              chunk=(*one, V, H, W), fill=SEGMENTATION_FILL, attrs={"ids": key, "background": 0, **extra},
                              coords=coords))
        out.append(Output(f"intrinsics{g.suffix}", (view, "k_row", "k_col"), (V, 3, 3), "float64", kind="camera",
                          units="px", description="K per view (perspective: pixels; orthographic: pixels per metre)",
                          per_sample=False, value=rig.intrinsics(g), attrs={"convention": CONVENTION},
                          coords={view: (view, names)}))
        out.append(Output(f"camera_to_world{g.suffix}", (*ldims, view, "pose_row", "pose_col"), (*lead, V, 4, 4), "float64",
                          kind="camera", units="m", description="4x4 camera-to-world pose per view (and frame)",
                          fill=float("nan"), attrs={"convention": CONVENTION, **extra}, coords=coords))
    return out


def declared_states(spec, world_states: Sequence[str]) -> tuple[str, ...]:
    """The states a spec stores: those it declares ``time_varying`` that the world simulates, in the
    spec graph's order (object-major), so the store's ``state`` coordinate equals the graph's states."""
    simulated = set(spec.expand_all(world_states))
    return tuple(s for s in spec.graph.states if s in simulated)


def _declared_units(spec) -> dict[str, str]:
    """Units the spec gives its time-varying variables, by expanded name."""
    out = {}
    for template, var in spec.variables.items():
        if var.time_varying and var.unit:
            out.update(dict.fromkeys(spec.expand_names(template), var.unit))
    return out


def state_output(spec, names: Sequence[str], units: Mapping[str, str | None],
                 levels: Mapping[str, int] | None = None) -> Output:
    """``states`` (time, state) float64 for the declared state names; units per name in ``state_unit``
    (the spec's unit where it declares one, else the world's ``units``). ``levels``: the categorical
    states (a light's red/amber/green, a flag) and how many classes each has, by template
    (``light[i].state``: 3) or name, stored as the array's ``state_levels`` attribute ``{name: K}``
    (values 0..K-1; a value outside, -1 or NaN, means no value in that frame)."""
    units = {**dict(units), **_declared_units(spec)}
    T = spec.video.n_frames
    attrs: dict = {"fps": spec.video.fps}
    if levels:
        found = {n: int(levels.get(n, levels.get(re.sub(r"\[\d+\]", "[i]", n), 0))) for n in names}
        if any(found.values()):
            attrs["state_levels"] = {n: k for n, k in found.items() if k}
    return Output("states", ("time", "state"), (T, len(names)), "float64", kind="states",
                  description="simulated state of each declared time-varying variable per frame (units: state_unit)",
                  fill=float("nan"), attrs=attrs,
                  coords={"state": ("state", tuple(names)), "state_unit": ("state", tuple(units.get(n) or "" for n in names)),
                          **time_coords(T, spec.video.fps)})


def input_output(spec, names: Sequence[str], units: Mapping[str, str | None]) -> Output:
    """``inputs`` (time, input) float64: what the world decided inside its simulation each frame."""
    T = spec.video.n_frames
    return Output("inputs", ("time", "input"), (T, len(names)), "float64", kind="inputs",
                  description="per-frame inputs decided inside the simulation (controller actions, signal phases; units: input_unit)",
                  fill=float("nan"), attrs={"fps": spec.video.fps},
                  coords={"input": ("input", tuple(names)), "input_unit": ("input", tuple(units.get(n) or "" for n in names)),
                          **time_coords(T, spec.video.fps)})


def allocate(outputs: Sequence[Output], n: int) -> dict[str, np.ndarray]:
    """Zeroed per-sample arrays (leading axis n) for every per-sample output."""
    return {o.name: np.zeros((n, *o.shape), dtype=o.dtype) for o in outputs if o.per_sample}
