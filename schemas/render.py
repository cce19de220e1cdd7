"""Render, camera and video settings.

Cameras are a choice (a discriminated union on ``kind``; a mapping without ``kind`` is an
orbit camera, and a preset name such as ``front`` is an orbit camera too):

- ``orbit``: on a sphere around the world's aim point, looking at it (today's default);
- ``fixed``: a position and a point it looks at, in world coordinates (m);
- ``mounted``: carried by a body or link the world declares (``mount: obj[0]``), with an
  offset pose in that body's frame; it moves every frame, like a wrist camera or a dashcam;
- ``topdown``: orthographic, looking straight down (-z), ``extent`` metres across the image.

Every camera may set its own ``size``; the render settings' ``size`` is the default.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import SpecModel, TaggedModel

Annotation = Literal["depth", "segmentation"]

#: Named orbit presets: azimuth and elevation in degrees around the scene centre.
CAMERA_PRESETS: dict[str, tuple[float, float]] = {
    "front": (0.0, 15.0),
    "right": (90.0, 15.0),
    "back": (180.0, 15.0),
    "left": (270.0, 15.0),
    "top": (0.0, 89.0),
    "front_high": (0.0, 45.0),
}

Vec3 = tuple[float, float, float]
Size = Union[int, tuple[int, int]]


def _check_size(v: Size | None) -> Size | None:
    if v is None:
        return v
    w, h = (v, v) if isinstance(v, int) else v
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise ValueError(f"expected 8..4096 pixels per side, got {v}")
    return v


def _up_problem(position: Vec3, look_at: Vec3, up: Vec3) -> str | None:
    """Why a camera at ``position`` looking at ``look_at`` cannot keep ``up`` up, or None."""
    d = [b - a for a, b in zip(position, look_at)]
    if not any(d):
        return "position and look_at must differ"
    cross = (d[1] * up[2] - d[2] * up[1], d[2] * up[0] - d[0] * up[2], d[0] * up[1] - d[1] * up[0])
    norm = math.sqrt(sum(x * x for x in d)) * math.sqrt(sum(x * x for x in up))
    if norm == 0 or math.sqrt(sum(x * x for x in cross)) < 1e-6 * norm:
        return (f"the camera looks along its up direction {list(up)}, so nothing says which way is up in the image; "
                "give another `up` (e.g. [0, 1, 0] for a camera looking straight down)")
    return None


def _finite(v: Vec3) -> Vec3:
    if not all(math.isfinite(x) for x in v):
        raise ValueError(f"expected finite coordinates, got {list(v)}")
    return v


class _Camera(TaggedModel):
    """Fields every camera has: a name and an optional size of its own."""

    tag_field = "kind"
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    size: Size | None = Field(None, description="side or (width, height) in pixels; default: render.size")

    _s = field_validator("size")(classmethod(lambda cls, v: _check_size(v)))


class _Perspective(_Camera):
    fov: float = Field(40.0, gt=1, lt=170, description="vertical field of view, degrees")


class _Aimed(_Perspective):
    """A perspective camera placed by ``position`` and ``look_at`` with an ``up`` direction (each
    subclass gives their frame and defaults): finite, and not looking along ``up``."""

    _f = field_validator("position", "look_at", "up", check_fields=False)(classmethod(lambda cls, v: _finite(v)))

    @model_validator(mode="after")
    def _distinct(self):
        problem = _up_problem(self.position, self.look_at, self.up)
        if problem:
            raise ValueError(problem)
        return self


class OrbitCamera(_Perspective):
    """A pinhole camera on a sphere around the world's aim point, looking at it."""

    kind: Literal["orbit"] = "orbit"
    azimuth: float = Field(0.0, description="degrees, 0 = front (-y), counter-clockwise seen from above")
    elevation: float = Field(15.0, ge=-89.9, le=89.9, description="degrees above the horizon")
    distance: float = Field(1.0, gt=0, le=100, description="multiple of the world's default camera distance")

    def position(self, base_distance: float, target: tuple[float, float, float] = (0, 0, 0)) -> tuple[float, float, float]:
        """World-space position (m) for a world whose default distance is ``base_distance`` (m)."""
        d = self.distance * base_distance
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        return (
            target[0] + d * math.cos(el) * math.sin(az),
            target[1] - d * math.cos(el) * math.cos(az),
            target[2] + d * math.sin(el),
        )


class FixedCamera(_Aimed):
    """A pinhole camera at ``position`` looking at ``look_at`` (world coordinates, m)."""

    kind: Literal["fixed"] = "fixed"
    position: Vec3
    look_at: Vec3 = (0.0, 0.0, 0.0)
    up: Vec3 = Field((0.0, 0.0, 1.0), description="world direction that appears up in the image")


class MountedCamera(_Aimed):
    """A pinhole camera carried by a body or link the world declares (``mount``); moves every frame.

    ``position`` and ``look_at`` are in the mount's frame (m). With ``follow: pose`` the camera
    turns with the body (a wrist camera, a dashcam); with ``follow: position`` it only moves
    with it and keeps world axes (a chase camera that does not tumble with a rolling ball).
    """

    kind: Literal["mounted"] = "mounted"
    mount: str = Field(min_length=1, description="a mount point the world declares, e.g. obj[0]")
    position: Vec3 = (0.0, 0.0, 0.0)
    look_at: Vec3 = (1.0, 0.0, 0.0)
    up: Vec3 = (0.0, 0.0, 1.0)
    follow: Literal["pose", "position"] = "pose"


class TopDownCamera(_Camera):
    """An orthographic camera looking straight down (-z) at ``center``, ``extent`` metres across the image width."""

    kind: Literal["topdown"] = "topdown"
    center: tuple[float, float] = (0.0, 0.0)
    extent: float = Field(gt=0, le=100_000, description="metres the image width covers")
    altitude: float = Field(50.0, gt=0, le=100_000, description="height (m) of the camera plane; depth is measured from it")


def _default_kind(v: Any) -> Any:
    if isinstance(v, dict) and "kind" not in v:
        return {"kind": "orbit", **v}
    return v


Camera = Annotated[
    Annotated[Union[OrbitCamera, FixedCamera, MountedCamera, TopDownCamera], Field(discriminator="kind")],
    BeforeValidator(_default_kind),
]
AnyCamera = Union[OrbitCamera, FixedCamera, MountedCamera, TopDownCamera]


def ring_cameras(n: int, elevation: float = 20.0) -> tuple[OrbitCamera, ...]:
    """``n`` orbit cameras evenly spaced in azimuth, the default for ``views: N``."""
    return tuple(OrbitCamera(name=f"view{i}", azimuth=360.0 * i / n, elevation=elevation) for i in range(n))


class RenderSettings(SpecModel):
    """How pixels are made: size, cameras, engine and annotations."""

    size: Size = Field(64, description="square side or (width, height) in pixels; a camera may set its own")
    views: int | tuple[str | Camera, ...] = Field(4, description="count of ring cameras, or named presets / cameras")
    engine: str | None = Field(None, description="engine of the world (cycles, tiny...); None = the world's default")
    samples: int = Field(16, ge=1, le=4096, description="path-tracing samples per pixel (Cycles)")
    denoise: bool = Field(False, description="Cycles: run OpenImageDenoise (CPU) on each image; off keeps raw path-traced noise")
    device: Literal["cpu", "gpu", "auto"] = "auto"
    annotations: tuple[Annotation, ...] = ("depth", "segmentation")

    _s = field_validator("size")(classmethod(lambda cls, v: _check_size(v)))

    @field_validator("views")
    @classmethod
    def _views_ok(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= 32:
                raise ValueError(f"expected 1..32 views, got {v}")
            return v
        if not v:
            raise ValueError("expected at least one view")
        if len(v) > 32:
            raise ValueError(f"expected at most 32 views, got {len(v)}")
        for c in v:
            if isinstance(c, str) and c not in CAMERA_PRESETS:
                raise ValueError(f"unknown camera preset {c!r}; expected one of {sorted(CAMERA_PRESETS)} or a camera mapping")
        names = [c if isinstance(c, str) else c.name for c in v]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate view names {sorted(dup)}")
        return v

    @property
    def width(self) -> int:
        """Default image width in pixels."""
        return self.size if isinstance(self.size, int) else self.size[0]

    @property
    def height(self) -> int:
        """Default image height in pixels."""
        return self.size if isinstance(self.size, int) else self.size[1]

    def cameras(self) -> tuple[AnyCamera, ...]:
        """Resolved cameras, one per view, in view order (presets and counts become orbit cameras)."""
        if isinstance(self.views, int):
            return ring_cameras(self.views)
        out = []
        for c in self.views:
            if isinstance(c, str):
                az, el = CAMERA_PRESETS[c]
                out.append(OrbitCamera(name=c, azimuth=az, elevation=el))
            else:
                out.append(c)
        return tuple(out)

    def camera_size(self, camera: AnyCamera) -> tuple[int, int]:
        """(width, height) in pixels of one camera."""
        s = camera.size if camera.size is not None else self.size
        return (s, s) if isinstance(s, int) else (int(s[0]), int(s[1]))


class VideoSettings(SpecModel):
    """Frame rate and length of video scenes."""

    fps: int = Field(30, ge=1, le=240)
    frames: int | None = Field(None, ge=1, le=100_000)
    duration: float | None = Field(None, gt=0, description="seconds; alternative to frames")
    substeps: int = Field(8, ge=1, le=100, description="physics steps per frame")

    @model_validator(mode="after")
    def _length(self):
        if self.frames is None and self.duration is None:
            object.__setattr__(self, "frames", 60)
        elif self.frames is not None and self.duration is not None:
            if self.frames != round(self.duration * self.fps):
                raise ValueError(f"frames={self.frames} disagrees with duration*fps={self.duration * self.fps:g}; give one")
        elif self.frames is None:
            object.__setattr__(self, "frames", max(1, round(self.duration * self.fps)))
        return self

    @property
    def n_frames(self) -> int:
        return int(self.frames)  # resolved by the validator
