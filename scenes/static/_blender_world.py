"""The skeleton every still-image Blender world shares: its :class:`WorldInfo` defaults, cameras,
declared outputs, resources, the Blender scene's life cycle, and the per-sample render loop.

A world subclasses :class:`BlenderStillWorld`, sets ``info`` (from :func:`still_info`) and the class
attributes ``TARGET``, ``BASE_DISTANCE``, ``SCENE_RADIUS``, ``SEGMENTATION_IDS`` and
``LANDMARK_IDS``, builds its objects in ``_build`` and poses them for one sample in
``_pose_sample``. Importing this module never imports ``bpy``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Callable, ClassVar, Mapping

import numpy as np

from ..base import (Output, Rendered, Resources, Simulation, World, WorldBatch, WorldCheck, WorldInfo,
                    check_latent_values)
from ..cameras import CameraRig
from ..engines import blender as bl
from ..outputs import allocate, camera_outputs

if TYPE_CHECKING:
    from ...schemas import DatasetSpec


def still_info(name: str, description: str, latents: tuple[str, ...], ranges: Mapping[str, tuple[float, float]],
               optional_latents: tuple[str, ...] = (), discrete: tuple[str, ...] = ()) -> WorldInfo:
    """The :class:`WorldInfo` of a still-image Blender world named ``name`` (``static/...``).

    ``latents`` (and ``optional_latents``) are the names the world reads, ``ranges`` their valid
    ranges, ``discrete`` those it reads as a class or index. Every such world makes images (``kind="image"``) with Blender, renders with Cycles (the
    default) or Workbench (a preview engine), annotates depth and segmentation, offers orbit, fixed
    and top-down cameras, and needs ``bpy`` and ``OpenEXR``.
    """
    return WorldInfo(
        name=name,
        kind="image",
        engine="blender",
        engines=("cycles", "workbench"),
        preview_engines=("workbench",),
        description=description,
        latents=latents,
        optional_latents=optional_latents,
        ranges=ranges,
        discrete=discrete,
        annotations=("depth", "segmentation"),
        camera_kinds=("orbit", "fixed", "topdown"),
        requires=("bpy", "OpenEXR"),
    )


def derived_latent_check(latent: str, inputs: tuple[str, ...], law: Callable[..., np.ndarray], *, unit: str,
                         what: str, tolerance: float = 1e-6) -> WorldCheck:
    """A validation rule (:class:`WorldCheck` named ``latent``) for a latent the spec derives by a
    mechanism while the world does not draw it from that value: Cycles renders its cause (a
    refraction, a shadow), so the stored value must be the world's own ``law`` of the ``inputs``.

    ``law`` takes the inputs' (n,) float64 arrays, in ``inputs`` order, and returns (n,) values in
    ``unit``; ``what`` names the law in the problem lines. The check reports one line per sample whose
    stored value differs by more than ``tolerance`` (relative, and absolute in ``unit``), and nothing
    when the batch does not store the latent or one of its inputs.
    """

    def run(world: World | None, batch: WorldBatch, simulation: Simulation | None = None) -> list[str]:
        lat = batch.latents
        if latent not in lat or any(name not in lat for name in inputs):
            return []
        stored = np.asarray(lat[latent], dtype=np.float64)
        expected = np.asarray(law(*(np.asarray(lat[name], dtype=np.float64) for name in inputs)), dtype=np.float64)
        bad = ~np.isclose(stored, expected, rtol=tolerance, atol=tolerance)
        return [f"sample {int(batch.index[i])}: stored {latent} {stored[i]:.6g} {unit}, but {what} of "
                + ", ".join(f"{name} {float(lat[name][i]):.6g}" for name in inputs)
                + f" gives {expected[i]:.6g} {unit}: the spec's mechanism for {latent} is not what the world renders"
                for i in np.flatnonzero(bad)]

    return WorldCheck(latent, f"stored {latent} equals {what} of {', '.join(inputs)} (tolerance {tolerance:g})", run)


def intervention_targets(spec: DatasetSpec) -> set[str]:
    """Names of the latents any intervention option or the counterfactual intervention of ``spec`` sets
    (empty when it has neither)."""
    targets: set[str] = set()
    if spec.interventions is not None:
        for option in spec.interventions.options():
            targets |= set(option)
    if spec.counterfactuals is not None and spec.counterfactuals.intervention:
        targets |= set(spec.counterfactuals.intervention)
    return targets


class BlenderStillWorld(World):
    """Base of the still-image worlds rendered with Blender (Cycles, or Workbench for previews).

    Subclasses set ``info`` and these class attributes:

    - ``TARGET`` (m): the orbit cameras' aim point (x, y, z);
    - ``BASE_DISTANCE`` (m): the orbit distance of a camera at ``distance: 1``;
    - ``SCENE_RADIUS`` (m): the radius of the scene around ``TARGET``, bounding the clip planes;
    - ``SEGMENTATION_IDS``: instance id -> what it marks, for the segmentation output;
    - ``LANDMARK_IDS``: the segmentation ids of the K objects whose centres ``render`` reports.

    and implement ``_build`` (populate ``self.bs``'s scene; the cameras are added after it) and
    ``_pose_sample`` (pose the scene for one sample and say where its landmarks are). A world that
    checks more of a batch's latents extends ``_read_latents``; one with more checks of a spec
    overrides ``check``.

    After ``__init__`` the world holds ``rig`` (its :class:`CameraRig`), ``cameras`` (one Blender
    camera object per view), ``bs`` (the :class:`~crlgen.scenes.engines.blender.BlenderScene`,
    named after the part of ``info.name`` after its last ``/``), ``want_depth`` and ``want_seg``
    (the spec's annotations), and ``_state = None`` (the last pose, which subclasses may cache).
    """

    TARGET: ClassVar[tuple[float, float, float]]
    BASE_DISTANCE: ClassVar[float]
    SCENE_RADIUS: ClassVar[float]
    SEGMENTATION_IDS: ClassVar[Mapping[int, str]]
    LANDMARK_IDS: ClassVar[tuple[int, ...]]

    @classmethod
    def rig(cls, spec: DatasetSpec) -> CameraRig:
        """The spec's cameras framed on ``TARGET`` from ``BASE_DISTANCE``, clipped to ``SCENE_RADIUS``."""
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def outputs(cls, spec: DatasetSpec) -> tuple[Output, ...]:
        """Images (sRGB uint8), the spec's annotations (depth, segmentation) and camera geometry, per camera group."""
        return tuple(camera_outputs(spec, cls.rig(spec), rgb="images", segmentation_ids=cls.SEGMENTATION_IDS))

    @classmethod
    def resources(cls, spec: DatasetSpec) -> Resources:
        """One CPU per task, and one GPU when the spec asks Cycles for ``device: gpu``."""
        return Resources(cpus=1.0, gpus=1.0 if spec.render.device == "gpu" else 0.0)

    def __init__(self, spec: DatasetSpec, threads: int = 0) -> None:
        """Build the Blender scene once: the world's objects (``_build``), then one camera per view.

        ``threads`` caps Cycles' CPU threads (0 = Blender's default). Raises ValueError when the spec
        asks for an engine not in ``info.engines``.
        """
        super().__init__(spec, threads)
        rs = spec.render
        if rs.engine not in (None, *self.info.engines):
            raise ValueError(f"{self.info.name} renders with engines {list(self.info.engines)}, got {rs.engine!r}")
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self.want_depth = "depth" in rs.annotations
        self.want_seg = "segmentation" in rs.annotations
        self.bs = bl.BlenderScene.from_settings(self.info.name.rsplit("/", 1)[-1], rs, threads)
        with self.bs.building():
            self._build()
            self._add_cameras()
        self._state = None

    @abc.abstractmethod
    def _build(self) -> None:
        """Populate ``self.bs.scene`` with the world's lights and objects (owned by ``self.bs``)."""

    @abc.abstractmethod
    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose the scene for sample ``i`` of the latents ``lat`` (name -> (n,) float64); return the centres
        (K, 3) in metres of the objects ``LANDMARK_IDS`` names, and per object (K, 2) the radii (m) of a ball
        around its centre that lies inside it and of one that holds it."""

    def render(self, batch: WorldBatch) -> Rendered:
        """Images (and the spec's depth and segmentation, and the camera poses) of every sample of ``batch``.

        Landmarks: the centres (m) of the objects ``LANDMARK_IDS`` names, (n, 1, K, 3) float64, and their inner
        and outer radii (m), (n, K, 2). Raises KeyError for a missing latent and ValueError for one outside the
        world's valid ranges (see :meth:`_read_latents`).
        """
        n = len(batch)
        lat = self._read_latents(batch)
        out = allocate(self._outputs, n)
        poses = self.rig.poses()
        k = len(self.LANDMARK_IDS)
        marks, radius = np.zeros((n, 1, k, 3)), np.zeros((n, k, 2))
        with self.bs.persistent():
            for i in range(n):
                marks[i, 0], radius[i] = self._pose_sample(lat, i)
                self._render_views(i, out, poses)
        return Rendered(out, landmarks=marks, landmark_ids=np.array(self.LANDMARK_IDS), landmark_radius=radius)

    def _add_cameras(self) -> None:
        """One Blender camera per camera of ``self.rig``, in view order, into ``self.cameras``."""
        bs = self.bs
        self.cameras = []
        for model in self.rig.cameras:
            obj = bs.own(bl.add_camera(bs.scene, f"cam.{model.name}", model))
            bs.own(obj.data)
            self.cameras.append(obj)

    def _read_latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        """The batch's latents as float64 arrays (n,); raises KeyError when one of ``info.latents`` is
        missing and ValueError (:func:`~crlgen.scenes.base.check_latent_values`) when one is out of range."""
        lat = {key: np.asarray(val, dtype=np.float64) for key, val in batch.latents.items()}
        missing = [name for name in self.info.latents if name not in lat]
        if missing:
            raise KeyError(f"{self.info.name} needs latents {list(self.info.latents)}; missing {missing}")
        check_latent_values(self.info, lat)
        return lat

    def _render_views(self, i: int, out: dict[str, np.ndarray], poses: np.ndarray) -> None:
        """Render sample ``i`` (the scene already posed) from every camera into ``out`` (from
        :func:`~crlgen.scenes.outputs.allocate`), camera group by camera group: images, depth and
        segmentation where the spec asks for them, and the group's camera_to_world from ``poses``
        ((V, 4, 4), :meth:`CameraRig.poses`)."""
        for g in self.rig.groups:
            for j, v in enumerate(g.indices):
                rgb, z, ids = self.bs.render(self.cameras[v], g.width, g.height)
                out[f"images{g.suffix}"][i, j] = rgb
                if self.want_depth:
                    out[f"depth{g.suffix}"][i, j] = z
                if self.want_seg:
                    out[f"segmentation{g.suffix}"][i, j] = ids
            out[f"camera_to_world{g.suffix}"][i] = poses[list(g.indices)]

    def close(self) -> None:
        """Free the Blender scene and everything it owns; calling it again does nothing."""
        bs = getattr(self, "bs", None)
        if bs is not None:
            bs.close()
            self.bs = None
