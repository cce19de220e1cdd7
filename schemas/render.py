"""Render, camera and video settings."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import SpecModel

Annotation = Literal["depth", "segmentation"]

#: Named camera presets: azimuth and elevation in degrees around the scene centre.
CAMERA_PRESETS: dict[str, tuple[float, float]] = {
    "front": (0.0, 15.0),
    "right": (90.0, 15.0),
    "back": (180.0, 15.0),
    "left": (270.0, 15.0),
    "top": (0.0, 89.0),
    "front_high": (0.0, 45.0),
}


class Camera(SpecModel):
    """A pinhole camera on a sphere around the scene's centre, looking at it."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    azimuth: float = Field(0.0, description="degrees, 0 = front (-y), counter-clockwise seen from above")
    elevation: float = Field(15.0, ge=-89.9, le=89.9, description="degrees above the horizon")
    distance: float = Field(1.0, gt=0, le=100, description="multiple of the world's default camera distance")
    fov: float = Field(40.0, gt=1, lt=170, description="vertical field of view, degrees")

    def position(self, base_distance: float, target: tuple[float, float, float] = (0, 0, 0)) -> tuple[float, float, float]:
        """World-space position for a world whose default distance is ``base_distance``."""
        d = self.distance * base_distance
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        return (
            target[0] + d * math.cos(el) * math.sin(az),
            target[1] - d * math.cos(el) * math.cos(az),
            target[2] + d * math.sin(el),
        )


def ring_cameras(n: int, elevation: float = 20.0) -> tuple[Camera, ...]:
    """``n`` cameras evenly spaced in azimuth, the default for ``views: N``."""
    return tuple(Camera(name=f"view{i}", azimuth=360.0 * i / n, elevation=elevation) for i in range(n))


class RenderSettings(SpecModel):
    """How pixels are made: size, cameras, engine and annotations."""

    size: int | tuple[int, int] = Field(64, description="square side or (width, height) in pixels")
    views: int | tuple[str | Camera, ...] = Field(4, description="count of ring cameras, or named presets / cameras")
    engine: str | None = Field(None, description="engine of the world (cycles, workbench, tiny...); None = world default")
    samples: int = Field(16, ge=1, le=4096, description="path-tracing samples per pixel (Cycles)")
    device: Literal["cpu", "gpu", "auto"] = "auto"
    annotations: tuple[Annotation, ...] = ("depth", "segmentation")

    @field_validator("size")
    @classmethod
    def _size_ok(cls, v):
        w, h = (v, v) if isinstance(v, int) else v
        if not (8 <= w <= 4096 and 8 <= h <= 4096):
            raise ValueError(f"expected 8..4096 pixels per side, got {v}")
        return v

    @field_validator("views")
    @classmethod
    def _views_ok(cls, v):
        if isinstance(v, int):
            if not 1 <= v <= 32:
                raise ValueError(f"expected 1..32 views, got {v}")
            return v
        if not v:
            raise ValueError("expected at least one view")
        names = [c if isinstance(c, str) else c.name for c in v]
        for n in names:
            if isinstance(n, str) and n not in CAMERA_PRESETS and not any(
                isinstance(c, Camera) and c.name == n for c in v
            ):
                raise ValueError(f"unknown camera preset {n!r}; expected one of {sorted(CAMERA_PRESETS)} or a camera mapping")
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate view names {sorted(dup)}")
        return v

    @property
    def width(self) -> int:
        return self.size if isinstance(self.size, int) else self.size[0]

    @property
    def height(self) -> int:
        return self.size if isinstance(self.size, int) else self.size[1]

    def cameras(self) -> tuple[Camera, ...]:
        """Resolved cameras, one per view, in view order."""
        if isinstance(self.views, int):
            return ring_cameras(self.views)
        out = []
        for c in self.views:
            if isinstance(c, Camera):
                out.append(c)
            else:
                az, el = CAMERA_PRESETS[c]
                out.append(Camera(name=c, azimuth=az, elevation=el))
        return tuple(out)


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
