"""Filming a simulated physics scene with PyBullet's TinyRenderer, frame by frame as it runs.

Cameras come from the world's :class:`~crlgen.scenes.cameras.CameraRig` (one source of
camera geometry for every engine); a mounted camera's pose is read from the frame's states.
"""

from __future__ import annotations

import numpy as np

from ..cameras import CameraRig, linear_depth, opengl_projection, opengl_view_matrix, pose_matrix
from ..engines import bullet as pb
from .scene import AMBIENT, DIFFUSE, LIGHT_DIRECTION, N_STATE, SPECULAR, Scene

#: Image shift (pixels, +u right, +v down) that makes TinyRenderer's pixels agree with the
#: stored intrinsics: it samples each pixel half a pixel off its centre, so without the shift
#: objects sat 0.5 px right and 0.5 px up of where K projects them and ground depth at pixel
#: centres was 3 % off (measured; now within 1e-6, see tests/scenes/test_camera_geometry.py).
TINY_PIXEL_OFFSET = (-0.5, 0.5)
#: TinyRenderer draws nothing through an orthographic projection, so a top-down camera is
#: filmed by a pinhole this far away (m) whose focal length keeps the scale on the ground
#: plane; heights of a few metres then shift points by < 0.01 px at 512 px.
ORTHO_DISTANCE = 1.0e4


def mount_poses(rig: CameraRig, state_row: np.ndarray) -> dict[str, np.ndarray]:
    """Poses (4x4, body to world) of the mounts the rig's cameras ride on, from one frame's states."""
    out = {}
    for cam in rig.cameras:
        if cam.mount is not None and cam.mount not in out:
            k = int(cam.mount[len("obj["):-1])
            row = state_row[k * N_STATE:(k + 1) * N_STATE]
            out[cam.mount] = pose_matrix(row[0:3], row[3:7])
    return out



def tiny_camera_matrices(rig: CameraRig) -> tuple[list, list, list]:
    """TinyRenderer's matrices for every camera of ``rig``: (projections, views, depth), one entry
    per camera. ``projections``: OpenGL projection matrices (16 floats, column-major); ``views``:
    OpenGL view matrices, None for a mounted camera (its view is built per frame from the mount's
    pose); ``depth``: (near, far, lift) in metres to linearise the depth buffer, ``lift`` the shift
    back to the camera plane of an orthographic camera, drawn as the stand-in pinhole
    ORTHO_DISTANCE away (0 for perspective cameras)."""
    projections, views, depth = [], [], []
    for c in rig.cameras:
        if c.orthographic:  # the stand-in pinhole (see ORTHO_DISTANCE), depth shifted back to the camera plane
            lift = ORTHO_DISTANCE - c.pose[2, 3]
            K = c.K.copy()
            K[0, 0] *= ORTHO_DISTANCE
            K[1, 1] *= ORTHO_DISTANCE
            pose = c.pose.copy()
            pose[2, 3] = ORTHO_DISTANCE
            near, far = ORTHO_DISTANCE - c.pose[2, 3] - 1.0, ORTHO_DISTANCE + 1.0
            projections.append(opengl_projection(K, c.width, c.height, near, far, False, TINY_PIXEL_OFFSET))
            views.append(opengl_view_matrix(pose))
            depth.append((near, far, lift))
        else:
            projections.append(opengl_projection(c.K, c.width, c.height, c.near, c.far, False, TINY_PIXEL_OFFSET))
            views.append(opengl_view_matrix(c.pose) if c.pose is not None else None)
            depth.append((c.near, c.far, 0.0))
    return projections, views, depth

class TinyView:
    """Renders each recorded frame with TinyRenderer into a sample's output arrays."""

    def __init__(self, client: pb.BulletScene, rig: CameraRig, *, rgb: str, depth: bool, segmentation: bool) -> None:
        self.client, self.rig, self.rgb = client, rig, rgb
        self.want_depth, self.want_seg = depth, segmentation
        self.projections, self._views, self._depth = tiny_camera_matrices(rig)
        self._fixed_poses = None if rig.moving else rig.poses()

    def callback(self, scene: Scene, out: dict[str, np.ndarray], i: int):
        """``on_frame`` for :meth:`~.simulation.Simulator.run`, writing sample ``i`` of ``out``."""
        c, rig = self.client, self.rig
        lut_box: list[np.ndarray] = []
        diffuse, specular = DIFFUSE * scene.light, SPECULAR * scene.light
        buffers = self.want_depth or self.want_seg

        def on_frame(t: int, static: list[int], bodies: list[int], row: np.ndarray) -> None:
            if not lut_box:
                ids = {b: pb.SCENERY_ID for b in static}
                ids.update({b: pb.FIRST_OBJECT_ID + k for k, b in enumerate(bodies)})
                lut_box.append(pb.segmentation_lut(ids))
            poses = rig.poses(mount_poses(rig, row)) if rig.moving else self._fixed_poses
            for g in rig.groups:
                for j, v in enumerate(g.indices):
                    cam = rig.cameras[v]
                    view = self._views[v] if cam.pose is not None else opengl_view_matrix(poses[v])
                    rgb, dbuf, sbuf = c.render(cam.width, cam.height, view, self.projections[v], light_direction=LIGHT_DIRECTION,
                                               ambient=AMBIENT, diffuse=diffuse, specular=specular, buffers=buffers)
                    out[f"{self.rgb}{g.suffix}"][i, t, j] = rgb
                    if self.want_depth:
                        near, far, lift = self._depth[v]
                        z = linear_depth(dbuf, near, far, False, sbuf < 0)
                        out[f"depth{g.suffix}"][i, t, j] = np.where(sbuf < 0, 0.0, z - lift) if lift else z
                    if self.want_seg:
                        out[f"segmentation{g.suffix}"][i, t, j] = pb.map_segmentation(sbuf, lut_box[0])
                out[f"camera_to_world{g.suffix}"][i, t] = poses[list(g.indices)]

        return on_frame
