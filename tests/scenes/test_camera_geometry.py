"""Camera geometry: the pure math of crlgen.scenes.cameras, and every engine agreeing with the stored
intrinsics and camera_to_world to within 0.1 px and depth within 0.1 %.

Each engine renders the issue's spec (physics/falling_simple, 48x32, front and right, 3 samples, 6
frames) plus a fixed, a mounted and a top-down camera. Ground pixels: the ray through each pixel
centre (from the stored K and pose) meets the plane z = 0 at exactly the depth the engine wrote.
Objects: the centroid of each object's mask sits where its centre projects, on average, within
0.1 px (a sphere's silhouette centroid is the projected centre up to perspective terms of order
(r / d)^2, far below that).
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.cameras import (look_at, opengl_projection, opengl_view_matrix, orbit_pose, perspective_intrinsics,
                                   pixel_rays, project, to_opengl, topdown_pose)
from crlgen.scenes.testing import _batch

VIEWS = ["front", "right",
         {"kind": "fixed", "name": "fixed", "position": [1.6, -1.8, 1.3], "look_at": [0.0, 0.0, 0.4]},
         {"kind": "mounted", "name": "ride", "mount": "obj[0]", "position": [0.0, -1.5, 0.4], "look_at": [0.0, 0.0, 0.0],
          "follow": "position"},
         {"kind": "topdown", "name": "top", "extent": 1.6}]


# ----- the math ---------------------------------------------------------------------------------
def test_look_at_is_a_right_handed_opencv_pose():
    m = look_at((1.0, -2.0, 0.5), (0.0, 0.0, 0.3))
    R = m[:3, :3]
    assert np.allclose(R.T @ R, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
    forward = np.array([0.0, 0.0, 0.3]) - [1.0, -2.0, 0.5]
    assert np.allclose(R[:, 2], forward / np.linalg.norm(forward))  # z looks at the target
    assert R[:, 1] @ [0, 0, 1] < 0  # y points down (world z up appears up in the image)
    with pytest.raises(ValueError):
        look_at((0, 0, 1), (0, 0, 0), up=(0, 0, 1))


def test_orbit_and_topdown_poses():
    m = orbit_pose(0.0, 0.0, 2.0, (0, 0, 0.5))
    assert np.allclose(m[:3, 3], [0, -2.0, 0.5]) and np.allclose(m[:3, 2], [0, 1, 0])
    top = orbit_pose(30.0, 89.999, 1.0, (0, 0, 0))  # well defined right above the target
    assert np.isfinite(top).all()
    td = topdown_pose((0.5, -0.2), 10.0)
    assert np.allclose(td[:3, 2], [0, 0, -1]) and np.allclose(td[:3, 3], [0.5, -0.2, 10.0])


def test_projection_and_pixel_rays_invert_each_other():
    K = perspective_intrinsics(48, 32, 40.0)
    assert K[0, 2] == 23.5 and K[1, 2] == 15.5  # integer (u, v) at pixel centres
    pose = look_at((1.0, -2.0, 1.0), (0.0, 0.0, 0.2))
    o, d = pixel_rays(K, pose, 48, 32)
    pts = o + 3.0 * d  # depth 3 m along every ray
    uv, z = project(pts.reshape(-1, 3), K, pose)
    u, v = np.meshgrid(np.arange(48), np.arange(32))
    assert np.allclose(uv[:, 0], u.ravel()) and np.allclose(uv[:, 1], v.ravel()) and np.allclose(z, 3.0)


def test_opengl_matrices_map_points_like_K():
    K = perspective_intrinsics(40, 30, 50.0)
    pose = look_at((0.5, -1.5, 0.8), (0.0, 0.1, 0.2))
    view = np.array(opengl_view_matrix(pose)).reshape(4, 4).T
    proj = np.array(opengl_projection(K, 40, 30, 0.05, 20.0)).reshape(4, 4).T
    pts = np.array([[0.1, 0.2, 0.3], [-0.2, 0.0, 0.1], [0.0, 0.4, 0.5]])
    clip = (proj @ view @ np.c_[pts, np.ones(3)].T).T
    ndc = clip[:, :2] / clip[:, 3:4]
    u = (ndc[:, 0] + 1) / 2 * 40 - 0.5
    v = (1 - ndc[:, 1]) / 2 * 30 - 0.5
    uv, _ = project(pts, K, pose)
    assert np.allclose(np.c_[u, v], uv)
    assert np.allclose(to_opengl(pose)[:3, 2], -pose[:3, 2])  # OpenGL looks down -z


# ----- the engines --------------------------------------------------------------------------------
def _render(engine: str):
    spec = load_spec("physics/falling_simple").replace(
        samples=3, temporal_edits=[], counterfactuals=None, video={"fps": 30, "frames": 6},
        render={"size": [48, 32], "views": VIEWS, "engine": engine, "samples": 16, "device": "cpu"})
    with build_world(spec, threads=1) as w:
        return w.rig, w.render(_batch(spec, 0, 3))


@pytest.fixture(scope="module", params=["tiny", "cycles"])
def rendered(request):
    return request.param, *_render(request.param)


def test_ground_depth_matches_the_stored_camera_model(rendered):
    engine, rig, r = rendered
    out = r.outputs
    errors = {}
    for j, cam in enumerate(rig.cameras):
        rel = []
        for i in range(3):
            for t in range(6):
                o, d = pixel_rays(cam.K, out["camera_to_world"][i, t, j], cam.width, cam.height, cam.orthographic)
                s = -o[..., 2] / d[..., 2]  # ray parameter = camera z (unit-z directions) where z = 0 is met
                expect = s if not cam.orthographic else s  # orthographic: origins on the camera plane
                ground = (out["segmentation"][i, t, j] == 1) & (s > 0)
                rel.append(out["depth"][i, t, j][ground] / expect[ground] - 1.0)
        errors[cam.name] = float(np.median(np.abs(np.concatenate(rel))))
    assert all(e < 1e-3 for e in errors.values()), (engine, errors)


def test_objects_sit_where_their_centres_project(rendered):
    engine, rig, r = rendered
    out = r.outputs
    offsets = []
    for j, cam in enumerate(rig.cameras):
        for i in range(3):
            for t in range(6):
                mask = out["segmentation"][i, t, j] == 2
                if mask.sum() < 12 or mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
                    continue  # too small or cut by the border: the centroid would be off for that reason
                v, u = np.nonzero(mask)
                uv, _ = project(r.landmarks[i, t], cam.K, out["camera_to_world"][i, t, j], cam.orthographic)
                offsets.append((u.mean() - uv[0, 0], v.mean() - uv[0, 1]))
    offsets = np.array(offsets)
    assert len(offsets) >= 20
    bias = offsets.mean(axis=0)
    assert np.all(np.abs(bias) < 0.1), (engine, bias)
