"""Filming a robotics scene with PyBullet's TinyRenderer: colour, depth and per-link segmentation.

Cameras come from the world's :class:`~crlgen.scenes.cameras.CameraRig`; a mounted camera (the
wrist camera on ``ee``) takes the TCP pose of the frame being filmed. Segmentation asks PyBullet
for object and link indices (``ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX``: body id plus
``(link + 1) << 24``) and maps each (body, link) to the world's instance id, so every arm link
has an id of its own.

Shadows: TinyRenderer casts them (``shadow=1``) from a shadow map rendered from a camera
``SHADOW_DISTANCE`` m from the origin along the light direction, with the filming camera's
projection, so a cube's and the arm's shadows on the table show where the light comes from
(the ``light.azimuth`` latent; without them, views symmetric about the light's plane look the
same at azimuths a and -a). The distance trades coverage against the map's resolution: at 10 m
the 64 px map leaves acne stripes over the table, at 2-3 m hardly any shadow falls; 4 m casts
the cubes' shadows cleanly in a view framed on the table. Shadows about double the render time.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..cameras import CameraRig, linear_depth, opengl_view_matrix
from ..physics.views import tiny_camera_matrices

#: TinyRenderer shading: ambient is fixed; diffuse scales with the light intensity latent.
AMBIENT, DIFFUSE, SPECULAR = 0.5, 0.55, 0.05
#: Distance (m) of TinyRenderer's shadow-map camera from the origin along the light direction (see the module docstring).
SHADOW_DISTANCE = 4.0
#: Links per body in the segmentation lookup (link index + 1 < this).
_LINK_SLOTS = 64


def segmentation_lut(ids: Mapping[tuple[int, int], int], whole: Mapping[int, int]) -> np.ndarray:
    """Lookup from ``(body + 1) * 64 + link + 1`` to instance id: ``ids`` per (body, link), ``whole`` per body (every link)."""
    bodies = [b for b, _ in ids] + list(whole)
    lut = np.zeros((max(bodies, default=0) + 2) * _LINK_SLOTS, dtype=np.uint8)
    for body, inst in whole.items():
        lut[(body + 1) * _LINK_SLOTS:(body + 2) * _LINK_SLOTS] = inst
    for (body, link), inst in ids.items():
        lut[(body + 1) * _LINK_SLOTS + link + 1] = inst
    return lut


def map_segmentation(seg: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """A PyBullet object-and-link segmentation buffer as uint8 instance ids (0 where unknown or background)."""
    s = np.asarray(seg, dtype=np.int64)
    body = s & ((1 << 24) - 1)
    link = (s >> 24) - 1
    key = np.where(s < 0, 0, (body + 1) * _LINK_SLOTS + link + 1)
    key = np.where((key < 0) | (key >= lut.shape[0]), 0, key)
    return np.where(s < 0, 0, lut[key]).astype(np.uint8)


class TinyFilm:
    """Renders one frame from every camera of ``rig`` into a sample's output arrays."""

    def __init__(self, bc, p, rig: CameraRig, *, rgb: str, depth: bool, segmentation: bool) -> None:
        self.bc, self.p, self.rig, self.rgb = bc, p, rig, rgb
        self.want_depth, self.want_seg = depth, segmentation
        self.projections, self.views, self.depth = tiny_camera_matrices(rig)
        self.fixed_poses = None if rig.moving else rig.poses()

    def frame(self, out: dict[str, np.ndarray], i: int, t: int, mount_poses: Mapping[str, np.ndarray], lut: np.ndarray,
              light_direction, diffuse: float) -> None:
        """Film frame ``t`` of sample ``i`` as the simulation stands now."""
        bc, p, rig = self.bc, self.p, self.rig
        poses = rig.poses(mount_poses) if rig.moving else self.fixed_poses
        buffers = self.want_depth or self.want_seg
        flags = p.ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX if buffers else p.ER_NO_SEGMENTATION_MASK
        for g in rig.groups:
            for j, v in enumerate(g.indices):
                cam = rig.cameras[v]
                view = self.views[v] if cam.pose is not None else opengl_view_matrix(poses[v])
                w, h, rgba, dbuf, sbuf = bc.getCameraImage(
                    cam.width, cam.height, viewMatrix=view, projectionMatrix=self.projections[v], renderer=p.ER_TINY_RENDERER,
                    flags=flags, shadow=1, lightDirection=[float(x) for x in light_direction], lightColor=[1.0, 1.0, 1.0],
                    lightDistance=SHADOW_DISTANCE,
                    lightAmbientCoeff=AMBIENT, lightDiffuseCoeff=float(diffuse), lightSpecularCoeff=SPECULAR)
                out[f"{self.rgb}{g.suffix}"][i, t, j] = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3]
                if buffers:
                    seg = np.asarray(sbuf, dtype=np.int64).reshape(h, w)
                    if self.want_depth:
                        near, far, lift = self.depth[v]
                        z = linear_depth(np.asarray(dbuf, dtype=np.float32).reshape(h, w), near, far, False, seg < 0)
                        out[f"depth{g.suffix}"][i, t, j] = np.where(seg < 0, 0.0, z - lift) if lift else z
                    if self.want_seg:
                        out[f"segmentation{g.suffix}"][i, t, j] = map_segmentation(seg, lut)
            out[f"camera_to_world{g.suffix}"][i, t] = poses[list(g.indices)]
